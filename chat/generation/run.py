"""Run: one asyncio task per reply, the model's stream and its tool loop, written as it comes."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from typing import Any
from uuid import UUID

from django.conf import settings

from chat.fanout import fanout
from chat.generation.finish import reply_finish
from chat.generation.limits import CharBudget, reply_too_slow, tokens_left
from chat.generation.owner import generation_claim
from chat.generation.pool import sync_db
from chat.generation.prepare import Prepared, generation_prepare
from chat.generation.watch import RUNNING, watchers_ensure
from chat.generation.write import FrameWriter
from chat.looplag import loop_lag
from chat.models import Status
from chat.reply import Reply
from chat.streambuffer import Coalescer, stream_buffer
from chat.tools import ToolContext, tool_call_run
from providers.adapters.transport import ReadPacer, read_pacer
from providers.contract import ChatRequest, ErrorCode, Finish, FinishReason, ProviderError

logger = logging.getLogger(__name__)

MAX_MODEL_CALLS = 6
SERVER_FAULT = "Something went wrong on the server while writing this reply; try again."
_prepare = sync_db(generation_prepare)


async def generation_start(
    message_id: UUID | str, *, route: Any = None, prepared: Prepared | None = None
) -> asyncio.Task[None]:
    """Start generating into an assistant placeholder and return its task at once. The buffer
    is open when this returns, so a tab told about the reply can follow it straight away.
    `prepared` (from `generation_prepare`) skips preparing it again."""
    key = str(message_id)
    running = RUNNING.get(key)
    if running is not None and not running.done():
        return running
    buffer = stream_buffer()
    await buffer.open(key)
    watchers_ensure(buffer)
    fanout().open(key)
    task = asyncio.get_running_loop().create_task(_generate(key, route, prepared), name=f"generation {key}")
    RUNNING[key] = task
    task.add_done_callback(lambda finished: RUNNING.pop(key, None) if RUNNING.get(key) is finished else None)
    return task


async def _model_call(
    prepared: Prepared, request: ChatRequest, reply: Reply, coalescer: Coalescer, chars: CharBudget
) -> None:
    """Stream one model call into the reply. Past the reply's character budget the stream is
    closed (the provider's connection with it) and the call ends as one cut at its length limit."""
    from providers.resilience import RoutedStream

    stream = RoutedStream(prepared.route, request, release_route=False)
    async with contextlib.aclosing(aiter(stream)) as events:
        async for event in events:
            if reply.first_token_at is None:
                # Nothing is awaited before the first token goes out; the provider is saved at the end.
                reply.first_token_at = time.monotonic()
                reply.provider = stream.served_by.provider if stream.served_by is not None else ""
            kept = chars.take(event)
            frame = reply.frame_for(kept) if kept is not None else None
            if frame is not None:
                await coalescer.add(frame)
            if chars.spent:
                reply.frame_for(Finish(FinishReason.LENGTH))
                return


async def _tool_loop(message_id: str, prepared: Prepared, reply: Reply, coalescer: Coalescer) -> None:
    """The model calls and tools of one reply, cut at the reply's wall-time limit."""
    limit = settings.REPLY_MAX_SECONDS
    deadline = asyncio.timeout(limit)
    try:
        async with deadline:
            await _calls(message_id, prepared, reply, coalescer)
    except TimeoutError:
        if not deadline.expired():  # a TimeoutError of something inside, not this limit's
            raise
        raise reply_too_slow(limit) from None


async def _calls(message_id: str, prepared: Prepared, reply: Reply, coalescer: Coalescer) -> None:
    """Call the model; while it asks for tools (and calls, output tokens and characters are
    left), run them and call it again."""
    context = ToolContext(
        user_id=prepared.user_id,
        chat_id=prepared.chat_id,
        message_id=message_id,
        model_id=prepared.model_id,
        emit=coalescer.add,
    )
    request = prepared.request
    chars = CharBudget.for_reply(request.max_tokens)
    for call_number in range(1, MAX_MODEL_CALLS + 1):
        await _model_call(prepared, request, reply, coalescer, chars)
        calls = reply.step_calls()
        if chars.spent or not calls or call_number == MAX_MODEL_CALLS:
            # Calls left unanswered (at the limit, or cut off mid-arguments) are dropped from
            # later prompts.
            return
        for call in calls:
            result = await tool_call_run(call, context)
            await coalescer.add(reply.result_add(call, text=result.content, error=result.error, data=result.data))
        messages = request.messages + tuple(reply.step_messages())
        reply.step_begin()
        # The calls of one reply share the model's max output between them.
        left = tokens_left(prepared.request.max_tokens, reply.usage.output_tokens)
        if left is not None and left <= 0:
            reply.frame_for(Finish(FinishReason.LENGTH))
            return
        request = dataclasses.replace(request, messages=messages, max_tokens=left)


async def _generate(message_id: str, route: Any = None, prepared: Prepared | None = None) -> None:
    from providers.resilience import route_release
    from providers.routing import RouteError

    buffer = stream_buffer()
    hub = fanout()
    started = time.monotonic()
    reply = Reply()
    lag = loop_lag()
    # The vendor's socket is left unread while the coalescer could send nothing anyway: the
    # tokens of an interval then come in one read (see ReadPacer).
    pacer = ReadPacer()
    read_pacer.set(pacer)
    coalescer = Coalescer(
        FrameWriter(buffer, hub, message_id),
        lag=lambda: lag.seconds,
        streaming=lambda: len(RUNNING),
        hold=pacer.hold,
    )
    status, error = Status.COMPLETE, None
    try:
        # The first heartbeat, naming this process; its watcher refreshes both while it runs.
        await generation_claim(buffer.client, message_id, buffer.line)
        if prepared is None:
            prepared = await _prepare(message_id, route)
        route = prepared.route
        await _tool_loop(message_id, prepared, reply, coalescer)
    except asyncio.CancelledError:
        status = Status.STOPPED
    except ProviderError as failure:
        status, error = Status.ERROR, failure
    except RouteError as refusal:
        status, error = Status.ERROR, ProviderError(ErrorCode.BAD_REQUEST, refusal.message)
    except Exception:
        # Our own fault, not the provider's nor the user's: Redis or the database lost, a bug.
        logger.exception("generation %s failed", message_id)
        status, error = Status.ERROR, ProviderError(ErrorCode.INTERNAL, SERVER_FAULT)
    # Saving must finish even when this task is cancelled (again) meanwhile: a stop both
    # cancels the task and sets the flag, so a second cancellation can land here. Wait it out.
    saving = asyncio.ensure_future(
        reply_finish(buffer, hub, coalescer, message_id, reply=reply, status=status, started=started, error=error)
    )
    while not saving.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(saving)
    if route is not None:
        with contextlib.suppress(Exception):
            await route_release(route)
    saving.result()
