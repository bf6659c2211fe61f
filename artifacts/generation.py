"""Writing a document's content with the reply's own model, streamed into the reply.

A tool call runs inside the reply's generation (the runner awaits it), so the content is
streamed from the same model the user picked (`route_for` + `RoutedStream`, no tools offered)
and its text goes to the reply's stream buffer as `artifact_delta` frames through
`ToolContext.emit`. Emitted frames are not coalesced by the runner, so deltas are batched here:
the first piece at once, then at most one frame per `BATCH_SECONDS` (or `BATCH_CHARS`).

A stop of the reply reaches this loop too: the runner cancels the reply's task (which runs
this tool), whichever process the stop came from.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from accounts.models import User
from artifacts.kinds.base import MAX_CONTENT_CHARS, Kind, KindError
from chat.models import Message
from providers.contract import ChatMessage, ChatRequest
from providers.routing import Route, RouteError, route_for
from usage.services import ModelCall, model_call_bill, model_text

logger = logging.getLogger(__name__)

Frame = dict[str, Any]
BATCH_SECONDS = 0.03
BATCH_CHARS = 2_000
MAX_OUTPUT_TOKENS = 16_384
# Of the conversation sent along when creating a document (the model writes from it).
CONTEXT_TOKENS = 32_000

CREATE_SYSTEM = (
    "You write the content of a document the assistant is creating in the conversation below: "
    "the {kind} titled {title!r}. {instructions}\n"
    "Answer with the document's content only: no introduction, no comments about it, no closing remarks."
)
UPDATE_SYSTEM = (
    "You revise a document: the {kind} titled {title!r}. {instructions}\n"
    "Apply the requested change and keep everything else as it is. Answer with the whole revised "
    "document only: no introduction, no comments about the change."
)


class WriteFailed(Exception):
    """The content could not be written: `message` is safe to show (and is sent to the model)."""

    def __init__(self, message: str, code: str, *, written: ModelCall | None = None) -> None:
        super().__init__(message)
        self.message, self.code = message, code
        self.written = written  # the call that failed (what it wrote and used), when there was one


# --- The request --------------------------------------------------------------------------------
def _route(user: User, model_id: str) -> Route:
    try:
        return route_for(user=user, model_id=model_id)
    except RouteError as refusal:
        raise WriteFailed(refusal.message, str(refusal.code)) from None


def request_for_create(
    *, user_id: int, message_id: str, model_id: str, kind: Kind, title: str, language: str, description: str = ""
) -> tuple[Route, ChatRequest]:
    """The reply's model, asked to write the document from the conversation so far (the
    instruction rides in the system prompt, so the conversation still ends with the user)."""
    from chat.prompts import context_messages
    from chat.selectors import ancestor_rows

    user = User.objects.select_related("tier").get(pk=user_id)
    route = _route(user, model_id)
    message = Message.objects.select_related("parent").get(pk=message_id)
    max_tokens = min(route.max_output_tokens, MAX_OUTPUT_TOKENS)
    rows = ancestor_rows(message.parent) if message.parent is not None else []
    messages = context_messages(
        rows=rows,
        max_input_tokens=min(route.context_window, CONTEXT_TOKENS + max_tokens),
        reserve_output=max_tokens,
        images="image" in route.input_modalities,
        owner_id=user.pk,
    )
    if not messages:
        messages = [ChatMessage.text("user", f"Write {title}.")]
    system = CREATE_SYSTEM.format(kind=kind.name, title=title, instructions=kind.instructions(language=language))
    if description:
        system += f"\nWhat it should contain: {description}"
    return route, ChatRequest(model="", messages=tuple(messages), system=system, max_tokens=max_tokens)


def request_for_update(
    *, user_id: int, model_id: str, kind: Kind, title: str, language: str, current: str, description: str
) -> tuple[Route, ChatRequest]:
    user = User.objects.select_related("tier").get(pk=user_id)
    route = _route(user, model_id)
    prompt = f"The document now:\n\n{current}\n\nThe change to make: {description}"
    system = UPDATE_SYSTEM.format(kind=kind.name, title=title, instructions=kind.instructions(language=language))
    max_tokens = min(route.max_output_tokens, MAX_OUTPUT_TOKENS)
    return route, ChatRequest(
        model="", messages=(ChatMessage.text("user", prompt),), system=system, max_tokens=max_tokens
    )


# --- Streaming ----------------------------------------------------------------------------------
class DeltaBatcher:
    """`artifact_delta` frames of one document: the first piece at once, then batched."""

    def __init__(self, emit: Callable[[Frame], Awaitable[None]], document_id: str) -> None:
        self.emit = emit
        self.document_id = document_id
        self.pending: list[str] = []
        self.pending_chars = 0
        self.last_flush = 0.0

    async def add(self, text: str) -> None:
        self.pending.append(text)
        self.pending_chars += len(text)
        now = time.monotonic()
        if now - self.last_flush >= BATCH_SECONDS or self.pending_chars >= BATCH_CHARS:
            await self.flush(now)

    async def flush(self, now: float | None = None) -> None:
        if self.pending:
            text = "".join(self.pending)
            self.pending, self.pending_chars = [], 0
            # In pieces of at most BATCH_CHARS: one read of a fast vendor can bring far more.
            for start in range(0, len(text), BATCH_CHARS):
                piece = text[start : start + BATCH_CHARS]
                await self.emit({"type": "artifact_delta", "document_id": self.document_id, "text": piece})
        self.last_flush = time.monotonic() if now is None else now


async def text_write(
    *,
    route: Route,
    request: ChatRequest,
    emit: Callable[[Frame], Awaitable[None]],
    document_id: str,
) -> ModelCall:
    """Stream the model's text into `artifact_delta` frames; WriteFailed (carrying the call, to
    be billed) on a provider error or a text past MAX_CONTENT_CHARS (the call is ended there).
    Cancelled by a stop of the reply."""
    batcher = DeltaBatcher(emit, document_id)
    try:
        call = await model_text(route, request, on_text=batcher.add, max_chars=MAX_CONTENT_CHARS)
    finally:
        await batcher.flush()
    if call.cut:
        raise WriteFailed(
            f"The document grew past {MAX_CONTENT_CHARS:,} characters, the most a version holds.",
            "too_long",
            written=call,
        )
    if call.error is not None:
        raise WriteFailed(call.error.message, str(call.error.code), written=call)
    return call


# --- After a generation -------------------------------------------------------------------------
def generation_settle(
    *,
    user_id: int,
    model_id: str,
    written: ModelCall,
    kind: str,
    chat_id: Any = None,
    message_id: Any = None,
    outcome: str = "",
) -> None:
    """Bill a document or review generation (the one billing path): against the user's token
    allowance (the turn's reservation covered the reply only) and in the usage records."""
    model_call_bill(
        written, user_id=user_id, kind=kind, model_id=model_id, chat_id=chat_id, message_id=message_id, outcome=outcome
    )


__all__ = ["KindError", "WriteFailed", "generation_settle", "text_write"]
