"""Generations: one asyncio task per reply in the ASGI process, not tied to any socket.

A generation streams from the provider (through `RoutedStream`: retries, failover, breaker),
coalesces deltas (~30 ms) into the message's Redis stream (`chat.streambuffer`), which every
tab of any process follows, and saves the message when it ends: complete, stopped (the partial
text kept) or error (the partial text kept, with a user-safe code). Closing a tab does not stop
it. Stop works from any process: the local task is cancelled, and a Redis flag reaches a task
running in another process. A heartbeat key per generation lets start-up recovery tell a
generation that is still running elsewhere from one whose process died.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from channels.db import database_sync_to_async
from django.utils import timezone

from chat.models import Message, Status
from chat.streambuffer import BufferExpired, Coalescer, stream_buffer
from providers.contract import (
    ChatRequest,
    ErrorCode,
    Finish,
    ProviderError,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)

logger = logging.getLogger(__name__)

# Generations' database work runs in the thread pool, not Channels' single thread-sensitive
# thread: hundreds of concurrent replies must not queue behind one another's saves.
sync_db = functools.partial(database_sync_to_async, thread_sensitive=False)

RUNNING: dict[str, asyncio.Task[None]] = {}
STOP_PREFIX = "arbor:stop:"
HEARTBEAT_PREFIX = "arbor:gen:"
HEARTBEAT_SECONDS = 30
HEARTBEAT_EVERY = 5.0
STOP_CHECK_EVERY = 0.1
INTERRUPTED = "The server restarted while this reply was being written."


@dataclass
class Reply:
    """What a generation has written so far (kept when it stops or fails)."""

    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    tool_calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    finish_reason: str = ""
    first_token_at: float | None = None

    def parts(self) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = []
        if self.reasoning:
            parts.append({"type": "reasoning", "text": "".join(self.reasoning)})
        if self.text:
            parts.append({"type": "text", "text": "".join(self.text)})
        for index, call in sorted(self.tool_calls.items()):
            parts.append({"type": "tool_call", "index": index, **call})
        return parts

    def frame_for(self, event: object) -> dict[str, Any] | None:
        """Record `event`; return the frame that tells the browser about it."""
        match event:
            case TextDelta(text=text):
                self.text.append(text)
                return {"type": "delta", "text": text}
            case ReasoningDelta(text=text):
                self.reasoning.append(text)
                return {"type": "delta", "reasoning": text}
            case ToolCallStart(index=index, id=call_id, name=name):
                self.tool_calls[index] = {"id": call_id, "name": name, "arguments": ""}
                return {"type": "tool_call", "index": index, "id": call_id, "name": name}
            case ToolCallDelta(index=index, arguments=arguments):
                self.tool_calls.setdefault(index, {"id": "", "name": "", "arguments": ""})["arguments"] += arguments
                return {"type": "tool_call_delta", "index": index, "arguments": arguments}
            case ToolCallEnd(index=index):
                return {"type": "tool_call_end", "index": index}
            case Usage():
                self.usage = event
            case Finish(reason=reason):
                self.finish_reason = str(reason)
        return None


async def generation_start(message_id: UUID | str, *, route: Any = None) -> asyncio.Task[None]:
    """Start generating into an assistant placeholder and return its task at once. The buffer
    is open when this returns, so a tab told about the reply can follow it straight away."""
    key = str(message_id)
    running = RUNNING.get(key)
    if running is not None and not running.done():
        return running
    await stream_buffer().open(key)
    task = asyncio.get_running_loop().create_task(_generate(key, route), name=f"generation {key}")
    RUNNING[key] = task
    task.add_done_callback(lambda finished: RUNNING.pop(key, None) if RUNNING.get(key) is finished else None)
    return task


async def generation_stop(message_id: UUID | str) -> None:
    """Stop a generation wherever it runs: cancel it here, flag it for any other process."""
    key = str(message_id)
    buffer = stream_buffer()
    await buffer.client.set(STOP_PREFIX + key, "1", ex=600)
    task = RUNNING.get(key)
    if task is not None:
        task.cancel()


@sync_db
def _prepare(message_id: str, route: Any) -> tuple[Any, ChatRequest]:
    from chat.prompts import context_messages, system_prompt_for
    from chat.selectors import ancestor_rows
    from providers.routing import route_for

    message = Message.objects.select_related("chat__owner__tier", "parent").get(pk=message_id)
    user = message.chat.owner
    if route is None or route.model_id != message.model_id:
        route = route_for(user=user, model_id=message.model_id)
    rows = ancestor_rows(message.parent) if message.parent is not None else []
    request = ChatRequest(
        model=route.candidates[0].provider_model_id,
        messages=tuple(
            context_messages(
                rows=rows, max_input_tokens=route.context_window, reserve_output=min(route.max_output_tokens, 8192)
            )
        ),
        system=system_prompt_for(chat=message.chat, user=user),
        max_tokens=route.max_output_tokens,
    )
    return route, request


@sync_db
def _save(message_id: str, reply: Reply, status: str, *, started: float, error: ProviderError | None) -> None:
    from accounts.limits import TOKENS, limit_charge, limit_refund

    message = Message.objects.select_related("chat__owner").get(pk=message_id)
    reservation = message.usage or {}  # what the turn reserved (chat.services.turns)
    now = time.monotonic()
    ttft = None if reply.first_token_at is None else int((reply.first_token_at - started) * 1000)
    Message.objects.filter(pk=message_id).update(
        content=reply.parts(),
        text="".join(reply.text),
        status=status,
        usage={
            "input_tokens": reply.usage.input_tokens,
            "output_tokens": reply.usage.output_tokens,
            "reasoning_tokens": reply.usage.reasoning_tokens,
        },
        finish_reason=reply.finish_reason,
        time_to_first_token_ms=ttft,
        total_time_ms=int((now - started) * 1000),
        error_code=str(error.code) if error else "",
        error_message=error.message if error else "",
    )
    # Settle the turn's reservation against what the provider reported, or, when it reported
    # nothing (stopped or failed early), against an estimate of what was sent and written.
    reserved = reservation.get("reserved_tokens", 0)
    used = reply.usage.input_tokens + reply.usage.output_tokens
    if not used:
        used = reservation.get("estimated_input_tokens", 0) + len("".join(reply.text)) // 4
    if used > reserved:
        limit_charge(user=message.chat.owner, kind=TOKENS, amount=used - reserved)
    elif used < reserved:
        limit_refund(user=message.chat.owner, kind=TOKENS, amount=reserved - used)
    if status == Status.COMPLETE and not message.chat.title:
        from chat.tasks import title_chat_after_commit

        title_chat_after_commit(str(message.chat_id))


@sync_db
def _mark_provider(message_id: str, provider: str) -> None:
    Message.objects.filter(pk=message_id).update(provider=provider)


def _done_frame(reply: Reply, status: str, error: ProviderError | None) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": "done",
        "status": status,
        "finish_reason": reply.finish_reason,
        "usage": {
            "input_tokens": reply.usage.input_tokens,
            "output_tokens": reply.usage.output_tokens,
            "reasoning_tokens": reply.usage.reasoning_tokens,
        },
    }
    if error is not None:
        frame["error"] = {"code": str(error.code), "message": error.message}
    return frame


async def _generate(message_id: str, route: Any = None) -> None:
    from providers.resilience import RoutedStream
    from providers.routing import RouteError

    buffer = stream_buffer()
    started = time.monotonic()
    reply = Reply()
    coalescer = Coalescer(lambda frame: buffer.append(message_id, frame))
    status, error = Status.COMPLETE, None
    try:
        await buffer.client.set(HEARTBEAT_PREFIX + message_id, "1", ex=HEARTBEAT_SECONDS)
        route, request = await _prepare(message_id, route)
        stream = RoutedStream(route, request)
        last_check = last_beat = time.monotonic()
        async for event in stream:
            if reply.first_token_at is None:
                reply.first_token_at = time.monotonic()
                if stream.served_by is not None:
                    await _mark_provider(message_id, stream.served_by.provider)
            frame = reply.frame_for(event)
            if frame is not None:
                await coalescer.add(frame)
            now = time.monotonic()
            if now - last_check >= STOP_CHECK_EVERY:
                last_check = now
                if await buffer.client.exists(STOP_PREFIX + message_id):
                    raise asyncio.CancelledError
            if now - last_beat >= HEARTBEAT_EVERY:
                last_beat = now
                await buffer.client.set(HEARTBEAT_PREFIX + message_id, "1", ex=HEARTBEAT_SECONDS)
    except asyncio.CancelledError:
        status = Status.STOPPED
    except ProviderError as failure:
        status, error = Status.ERROR, failure
    except RouteError as refusal:
        status, error = Status.ERROR, ProviderError(ErrorCode.BAD_REQUEST, refusal.message)
    except Exception:
        logger.exception("generation %s failed", message_id)
        status, error = Status.ERROR, ProviderError(ErrorCode.BAD_REQUEST, "Something went wrong writing this reply.")
    # Saving must finish even when this task is cancelled (again) meanwhile: a stop both
    # cancels the task and sets the flag, so a second cancellation can land here. Wait it out.
    saving = asyncio.ensure_future(
        _finish(buffer, coalescer, message_id, reply=reply, status=status, started=started, error=error)
    )
    while not saving.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(saving)
    saving.result()


async def _finish(
    buffer: Any,
    coalescer: Coalescer,
    message_id: str,
    *,
    reply: Reply,
    status: str,
    started: float,
    error: ProviderError | None,
) -> None:
    with contextlib.suppress(Exception):
        await coalescer.aclose()
    await _save(message_id, reply, status, started=started, error=error)
    # The reply is saved; a Redis failure now only costs followers the live `done` (a resume
    # answers from the saved message).
    try:
        await buffer.finish(message_id, _done_frame(reply, status, error))
        await buffer.client.delete(HEARTBEAT_PREFIX + message_id, STOP_PREFIX + message_id)
    except Exception:  # noqa: BLE001 - logged; the saved message is the truth
        logger.warning("generation %s: could not close its stream buffer", message_id)


# --- Recovery -----------------------------------------------------------------------------------
async def _recover(message: Message) -> bool:
    """Fail one orphaned reply; False when it is in fact still running in a live process."""
    buffer = stream_buffer()
    if await buffer.client.exists(HEARTBEAT_PREFIX + str(message.pk)):
        return False
    text: list[str] = []
    reasoning: list[str] = []
    with contextlib.suppress(BufferExpired):
        for frame in await buffer.replay(message.pk):
            if frame.get("type") == "delta":
                text.append(frame.get("text", ""))
                reasoning.append(frame.get("reasoning", ""))
    parts = []
    if "".join(reasoning):
        parts.append({"type": "reasoning", "text": "".join(reasoning)})
    if "".join(text):
        parts.append({"type": "text", "text": "".join(text)})
    await database_sync_to_async(Message.objects.filter(pk=message.pk, status=Status.STREAMING).update)(
        content=parts,
        text="".join(text),
        status=Status.ERROR,
        error_code="interrupted",
        error_message=INTERRUPTED,
    )
    with contextlib.suppress(Exception):
        frame = {"type": "done", "status": Status.ERROR, "error": {"code": "interrupted", "message": INTERRUPTED}}
        await buffer.finish(message.pk, frame)
    return True


async def generations_recover_orphans() -> int:
    """Mark replies left `streaming` by a dead process as failed, keeping the text they had."""
    orphans = await database_sync_to_async(list)(
        Message.objects.filter(status=Status.STREAMING, created_at__lt=timezone.now()).only("id")
    )
    recovered = 0
    for message in orphans:
        if str(message.pk) not in RUNNING:
            recovered += int(await _recover(message))
    return recovered
