"""The one way Arbor calls a model for itself and bills the call.

Every generation goes through two steps, whoever asks for it (a reply, a chat's title, a
document written by a tool, a review's suggestions):

- **call**: the route's providers through `RoutedStream` (retries before the first token,
  failover by priority, the breaker). A reply streams events into its own `Reply` (tools,
  reasoning); the short jobs use `model_text`, which keeps the text and what it used, and ends
  with the error instead of raising it, so the partial text is never lost.
- **bill**: `model_call_bill` charges the user's token allowance (settling a turn's
  reservation when there is one) and writes the usage row with its cost to the spend ledger,
  in the caller's transaction. A call the provider reported no usage for is charged an
  estimate (what was sent, and a token per four characters written) when it was stopped or
  wrote something before failing; one that failed before writing anything (refused, never
  answered) is recorded at no cost, as vendors bill it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from django.db import connection
from django.utils import timezone

from providers.contract import (
    ChatRequest,
    ErrorCode,
    Finish,
    FinishReason,
    ProviderError,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolCallStart,
    Usage,
)
from providers.routing import Route
from usage.models import Kind
from usage.services.quotas import period_starts
from usage.services.records import TierUnknown

CHARS_PER_TOKEN = 4  # the estimate of output tokens when a provider reported none


@dataclasses.dataclass
class ModelCall:
    """What one call wrote and used, who served it and how long it took; `error` when it
    failed (its text is what came before the failure)."""

    text: str = ""
    usage: Usage = dataclasses.field(default_factory=Usage)
    provider: str = ""
    ttft_ms: int | None = None
    total_ms: int = 0
    error: ProviderError | None = None
    cut: bool = False  # ended by the caller's `max_chars`, not by the model
    finish: FinishReason = FinishReason.STOP  # as the model said it ended (length: its max tokens)
    tool_calls: list[ToolCall] = dataclasses.field(default_factory=list)  # asked for, in order
    sent_tokens: int = 0  # an estimate of the request's size, charged when no usage is reported

    @property
    def outcome(self) -> str:
        """ "complete" or the error's code, as usage rows spell it."""
        return "complete" if self.error is None else str(self.error.code)


async def model_text(
    route: Route,
    request: ChatRequest,
    *,
    on_text: Callable[[str], Awaitable[None]] | None = None,
    max_chars: int | None = None,
    timeout: float | None = None,
) -> ModelCall:
    """The text a model writes for `request` through `route`, streamed to `on_text` as it comes,
    and the tools it asks to call (for a caller that offered tools: the API gateway).

    Past `max_chars` the call is ended there (`cut`, the text kept to that point); past `timeout`
    seconds it ends with a `timeout` error. A provider's error ends it the same way. A
    cancellation (a stop) propagates: the caller bills what it has, if it wants to."""
    from providers.resilience import RoutedStream

    call = ModelCall(sent_tokens=estimated_tokens(request))
    stream = RoutedStream(route, request)
    started = time.monotonic()
    parts: list[str] = []
    calls: dict[int, tuple[str, str, list[str]]] = {}  # index → id, name, the arguments' pieces
    length = 0
    try:
        async with asyncio.timeout(timeout):
            async for event in stream:
                if isinstance(event, TextDelta) and event.text:
                    if call.ttft_ms is None:
                        call.ttft_ms = int((time.monotonic() - started) * 1000)
                    text = event.text
                    if max_chars is not None and length + len(text) > max_chars:
                        parts.append(text[: max_chars - length])
                        call.cut = True
                        break
                    parts.append(text)
                    length += len(text)
                    if on_text is not None:
                        await on_text(text)
                else:
                    _note(call, calls, event)
    except ProviderError as error:
        call.error = error
    except TimeoutError:
        call.error = ProviderError(ErrorCode.TIMEOUT, "The model took too long to answer.")
    finally:
        call.text = "".join(parts)
        call.tool_calls = [ToolCall(id, name, "".join(arguments)) for id, name, arguments in calls.values()]
        call.total_ms = int((time.monotonic() - started) * 1000)
        if stream.served_by is not None:
            call.provider = stream.served_by.provider
        elif stream.attempts:
            call.provider = stream.attempts[-1][0]
    return call


def _note(call: ModelCall, calls: dict[int, tuple[str, str, list[str]]], event: object) -> None:
    """What a call keeps of an event other than its text: usage, how it ended, tool calls."""
    if isinstance(event, Usage):
        call.usage = event
    elif isinstance(event, Finish):
        call.finish = event.reason
    elif isinstance(event, ToolCallStart):
        calls[event.index] = (event.id, event.name, [])
    elif isinstance(event, ToolCallDelta) and event.index in calls:
        calls[event.index][2].append(event.arguments)


def model_call_bill(
    call: ModelCall,
    *,
    user_id: int,
    kind: str,
    model_id: str,
    chat_id: UUID | str | None = None,
    message_id: UUID | str | None = None,
    reservation: dict[str, Any] | None = None,
    outcome: str = "",
    tier_id: int | type[TierUnknown] | None = TierUnknown,
) -> Usage:
    """Charge `call` to its user and record it; returns the usage charged (reported or
    estimated). With a turn's `reservation` the tokens it reserved are settled against the real
    figure (the excess charged, the rest given back) and its spend part released. BYOK models
    (their `byok:` ids) cost the platform nothing and are recorded at 0. One statement,
    `usage_call_bill` (migration usage 0004): a reply's save runs the same function in its own."""
    if kind not in Kind.values:
        raise ValueError(f"unknown usage kind {kind!r}")
    now = timezone.now()
    today, month = period_starts(now)
    known = tier_id is not TierUnknown
    with connection.cursor() as cursor:
        cursor.execute(
            _CALL_BILL,
            [
                user_id,
                tier_id if known else None,
                known,
                kind,
                chat_id,
                message_id,
                model_id,
                call.provider,
                call.usage.input_tokens,
                call.usage.output_tokens,
                call.usage.reasoning_tokens,
                len(call.text),
                call.error is not None,
                call.sent_tokens,
                call.ttft_ms,
                call.total_ms,
                outcome or call.outcome,
                json.dumps(reservation or {}),
                now,
                today,
                month,
            ],
        )
        input_tokens, output_tokens, reasoning_tokens = cursor.fetchone()
    return Usage(input_tokens=input_tokens, output_tokens=output_tokens, reasoning_tokens=reasoning_tokens)


_CALL_BILL = (
    "SELECT input_tokens, output_tokens, reasoning_tokens FROM usage_call_bill(%s::bigint, %s::bigint, %s::boolean,"
    " %s::text, %s::uuid, %s::uuid, %s::text, %s::text, %s::bigint, %s::bigint, %s::bigint, %s::integer, %s::boolean,"
    " %s::bigint, %s::integer, %s::integer, %s::text, %s::jsonb, %s::timestamptz, %s::date, %s::date)"
)


def estimated_tokens(request: ChatRequest) -> int:
    """What a request sends, roughly: a token per four characters of its text."""
    chars = len(request.system) + sum(
        len(part.text) for message in request.messages for part in message.parts if isinstance(part, TextPart)
    )
    return chars // CHARS_PER_TOKEN
