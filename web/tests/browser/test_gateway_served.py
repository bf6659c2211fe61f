"""The OpenAI-compatible API as `make run` serves it (daphne, ASGI): a token made in settings
drives the official openai SDK, streamed and not, against the fake vendor."""

from __future__ import annotations

from typing import Any

import openai

from web.tests.browser.test_pages import token_made_in_settings


def test_the_sdk_lists_models_and_streams_a_completion_from_the_served_product(page: Any, arbor: str) -> None:
    client = openai.OpenAI(
        base_url=f"{arbor}/v1", api_key=token_made_in_settings(page, name="sdk", scope="chat"), max_retries=0
    )
    models = [model.id for model in client.models.list()]
    model = next(model for model in models if model.startswith("openai:"))

    answer = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hello"}])
    assert answer.choices[0].message.content.startswith("Reply ")

    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "[slow] Count for me"}], stream=True
    )
    pieces = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
    assert len([piece for piece in pieces if piece]) > 5  # the text came in many chunks
    assert "".join(pieces).strip()
