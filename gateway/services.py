"""A chat completion for the OpenAI-compatible API: the same model path as a chat turn.

The model is resolved as a turn's is (`route_checked`: the tier's models, the user's own keys'
and endpoints'); the call is admitted as a turn is (`turn_admission`: a message and the tokens
from the rate limits, the estimated cost from the spend quota, in one transaction); it runs
through the route with its retries, failover and breaker (`model_text`); and it is billed and
recorded as every call is (`model_call_bill`, kind `api`), settling the reservation. No prompt
layer of Arbor's is added: the caller's messages are the whole prompt.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction

from accounts.models import User
from chat.generation import sync_db
from chat.services.turns import TurnRefused, route_checked, turn_admission
from chat.services.uploads import IMAGE_TOKENS
from common.errors import ArborError
from providers.contract import ChatMessage, ChatRequest, ImagePart, ProviderError, ToolCall, ToolSpec, Usage
from providers.resilience import route_release
from providers.routing import Route
from usage.models import Kind, Outcome
from usage.services import ModelCall, model_call_bill, model_text
from usage.services.modelcalls import estimated_tokens

# A turn's refusal codes, as HTTP answers.
REFUSAL_STATUS = {
    "rate_limited": 429,
    "quota_exceeded": 429,
    "account_disabled": 403,
    "endpoint_refused": 403,
    "unknown_model": 404,
    "model_disabled": 404,
    "not_in_tier": 404,  # as OpenAI answers a model the key may not use
    "no_model": 404,
    "no_credentials": 503,
    "no_base_url": 503,
}


class CompletionRefused(ArborError):
    status = 400
    code = "invalid_request"


@dataclass(frozen=True)
class Completion:
    model_id: str
    text: str
    finish_reason: str
    usage: Usage
    tool_calls: tuple[ToolCall, ...] = ()


def _refused(refusal: TurnRefused) -> CompletionRefused:
    headers = {"Retry-After": str(int(refusal.retry_after))} if refusal.retry_after is not None else None
    return CompletionRefused(
        refusal.message, code=refusal.code, status=REFUSAL_STATUS.get(refusal.code, 400), headers=headers
    )


@dataclass(frozen=True)
class Admitted:
    """A call admitted and not yet made: its route, request and the reservation to settle."""

    user_id: int
    route: Route
    request: ChatRequest
    reservation: dict[str, Any]


async def completion_admit(
    *,
    user: User,
    model_id: str,
    system: str,
    messages: tuple[ChatMessage, ...],
    max_tokens: int | None,
    temperature: float | None,
    tools: tuple[ToolSpec, ...] = (),
) -> Admitted:
    """Resolve the model and admit the call as a turn is (`route_checked`, `turn_admission`); a
    refusal (no such model, the rate limits, the spend quota) calls nothing. A stream is
    admitted before its first byte, so a refusal is an HTTP error, not a broken stream."""
    request = ChatRequest(
        model="", messages=messages, system=system, temperature=temperature, max_tokens=max_tokens, tools=tools
    )
    route = await _route(user, model_id, request)
    try:
        reservation = await _admission(user, route, request)
    except BaseException:
        await route_release(route)  # the clients a user's endpoint brought: no stream will close them
        raise
    return Admitted(user_id=user.pk, route=route, request=request, reservation=reservation)


async def completion_stream(admitted: Admitted) -> AsyncIterator[str | Completion]:
    """The text as the model writes it, piece by piece, then the billed `Completion`; a
    provider's failure is billed, then raised (`CompletionRefused`). Closed early (the client
    went away), the call is stopped and billed for what it wrote, as a stopped reply is."""
    pieces: asyncio.Queue[str | None] = asyncio.Queue()
    written: list[str] = []

    async def text(piece: str) -> None:
        written.append(piece)
        pieces.put_nowait(piece)

    async def call_model() -> ModelCall:
        try:
            return await model_text(admitted.route, admitted.request, on_text=text, timeout=settings.REPLY_MAX_SECONDS)
        finally:
            pieces.put_nowait(None)

    calling = asyncio.ensure_future(call_model())
    usage: Usage | None = None
    try:
        while (piece := await pieces.get()) is not None:
            yield piece
        call = await calling
        usage = await _bill(admitted, call)
    finally:
        if usage is None:  # closed early: bill it all the same, whether the model had finished or not
            outcome = ""
            if calling.done() and not calling.cancelled():
                call = calling.result()
            else:
                calling.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await calling
                call = ModelCall(text="".join(written), sent_tokens=estimated_tokens(admitted.request))
                outcome = Outcome.STOPPED
            await asyncio.shield(_bill(admitted, call, outcome=outcome))
    if call.error is not None:
        raise _provider_failed(call.error)
    yield _completion(admitted, call, usage)


def _completion(admitted: Admitted, call: ModelCall, usage: Usage) -> Completion:
    return Completion(
        model_id=admitted.route.model_id,
        text=call.text,
        finish_reason=str(call.finish),
        usage=usage,
        tool_calls=tuple(call.tool_calls),
    )


async def _bill(admitted: Admitted, call: ModelCall, outcome: str = "") -> Usage:
    return await sync_db(model_call_bill)(
        call,
        user_id=admitted.user_id,
        kind=Kind.API,
        model_id=admitted.route.model_id,
        reservation=admitted.reservation,
        outcome=outcome,
    )


async def completion_create(admitted: Admitted) -> Completion:
    """Make an admitted call and bill it. A provider's failure is billed for what it wrote, then
    raised with the provider's code (502). Async: the call waits on the event loop, its
    database steps on the generations' database threads (`sync_db`), so a long completion
    holds no thread."""
    call = await model_text(admitted.route, admitted.request, timeout=settings.REPLY_MAX_SECONDS)
    usage = await _bill(admitted, call)
    if call.error is not None:
        raise _provider_failed(call.error)
    return _completion(admitted, call, usage)


@sync_db
def _route(user: User, model_id: str, request: ChatRequest) -> Route:
    """The route to `model_id` as a turn's is, for a request the model can take."""
    try:
        route = route_checked(user, model_id)
    except TurnRefused as refusal:
        raise _refused(refusal) from None
    if request.tools and not route.supports_tools:
        message = f"{route.display_name} does not call tools: pick a model that does."
        raise CompletionRefused(message, code="tools_not_supported", fields={"tools": []})
    if _images(request) and "image" not in route.input_modalities:
        message = f"{route.display_name} does not take images: pick a model that does."
        raise CompletionRefused(message, code="images_not_supported", fields={"messages": []})
    return route


@sync_db
def _admission(user: User, route: Route, request: ChatRequest) -> dict[str, Any]:
    """The call admitted as a turn is: the reservation to settle when it is billed."""
    try:
        with transaction.atomic():
            return turn_admission(user, estimated_tokens(request) + _images(request) * IMAGE_TOKENS, route)
    except TurnRefused as refusal:
        raise _refused(refusal) from None


def _images(request: ChatRequest) -> int:
    return sum(isinstance(part, ImagePart) for message in request.messages for part in message.parts)


def _provider_failed(error: ProviderError) -> CompletionRefused:
    return CompletionRefused(error.message, code=str(error.code), status=502)
