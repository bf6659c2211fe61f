"""A picture made from a description; the version's `content` keeps the description.

Only providers that generate images can draw one. Today that is OpenAI Images (gpt-image-1,
through `OpenAIAdapter.generate_image`) for a reply whose model OpenAI itself serves (a platform
key or the user's own OpenAI key); Google Imagen is not wired yet. Any other model is refused with
a message saying so, as the tool's error result; the chat goes on. The call goes through
`providers.resilience.routed_call`: retries, failover and the breaker, as every model call.
"""

from __future__ import annotations

import time
from typing import Any

from artifacts.kinds.base import Kind, KindError

MAX_PROMPT_CHARS = 4_000
# Provider slug → the image model drawn with (OpenAI-compatible servers such as OpenRouter or
# Ollama speak the chat protocol but have no images endpoint).
IMAGE_MODELS = {"openai": "gpt-image-1"}


class ImageKind(Kind):
    name = "image"
    summary = "image: a picture drawn from `description` (only models served by OpenAI can)"
    media_type = "image/png"
    extension = ".png"
    text_generated = False

    def instructions(self, *, language: str) -> str:
        return ""

    def validate(self, content: str) -> str:
        if not content.strip():
            raise KindError("Describe the picture to draw.")
        if len(content) > MAX_PROMPT_CHARS:
            raise KindError(f"A picture's description holds at most {MAX_PROMPT_CHARS:,} characters.")
        return content

    async def make_file(self, *, route: Any, prompt: str) -> tuple[bytes, Any]:
        """The PNG from the route's providers that draw (in priority order, with retries,
        failover and the breaker, as a reply's stream), and what it used (a `ModelCall`);
        KindError when none can, WriteFailed when every one that can failed."""
        import dataclasses

        from artifacts.generation import WriteFailed
        from providers.contract import ProviderError
        from providers.resilience import routed_call
        from usage.services import ModelCall

        drawing = tuple(candidate for candidate in route.candidates if _image_model(candidate) is not None)
        if not drawing:
            raise KindError(
                f"Pictures cannot be drawn with {route.display_name}: Arbor draws them only through OpenAI's "
                "image model, for models that OpenAI serves here (Google Imagen is not available yet). Describe "
                "the picture in words instead, or switch to an OpenAI model."
            )

        async def draw(adapter: Any, candidate: Any) -> tuple[bytes, Any]:
            return await adapter.generate_image(prompt, model=_image_model(candidate))

        started = time.monotonic()
        try:
            (image, usage), served_by = await routed_call(dataclasses.replace(route, candidates=drawing), draw)
        except ProviderError as error:
            raise WriteFailed(error.message, str(error.code)) from None
        total_ms = int((time.monotonic() - started) * 1000)
        return image, ModelCall(usage=usage, provider=served_by.provider, total_ms=total_ms)


def _image_model(candidate: Any) -> str | None:
    return IMAGE_MODELS.get(candidate.provider) if candidate.protocol == "openai" else None


HANDLER = ImageKind()
