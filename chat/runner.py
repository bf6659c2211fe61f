"""Generations: one asyncio task per reply in the ASGI process, not tied to any socket.

A generation streams from the provider (through `RoutedStream`: retries, failover, breaker),
coalesces deltas (~30 ms) into the message's Redis stream (`chat.streambuffer`), which every
tab of any process can follow, and hands each stored frame to this process's own followers
directly (`chat.fanout`). It saves the message when it ends: complete, stopped (the partial
text kept) or error (the partial text kept, with a user-safe code). Closing a tab does not stop it.

Tools: a model whose route supports tool calls is offered every registered tool
(`chat.tools`). When a model call ends with tool calls, each is run, its result is stored in
the reply and streamed as a `tool_result` frame, and the model is called again with the
results, for at most `MAX_MODEL_CALLS` calls per reply.

Stop works from any process: the local task is cancelled; another process hears of it on a
Redis channel, and a flag behind it covers a process that was not listening at that moment.
A heartbeat key per generation lets start-up recovery tell a generation that is still running
elsewhere from one whose process died.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import User
from chat.fanout import Fanout, fanout
from chat.looplag import loop_lag
from chat.models import Chat, Message, Status
from chat.reply import Reply
from chat.selectors import TREE_FIELDS, message_tree_entry_of_row
from chat.streambuffer import BufferExpired, Coalescer, StreamBuffer, WireFrame, frame_encode, stream_buffer
from chat.tools import ToolContext, tool_call_run, tools_registered
from providers.contract import ChatRequest, ErrorCode, ProviderError, TextDelta, Usage

logger = logging.getLogger(__name__)

# Generations' and sockets' database work runs in a thread pool of its own, not Channels' single
# thread-sensitive thread nor the loop's default pool (2 cores: 6 threads). It stays below the
# connection pool's size (DATABASE_POOL_MAX), so a thread never waits for a connection.
_db_executor = ThreadPoolExecutor(max_workers=settings.DATABASE_THREADS, thread_name_prefix="arbor-db")
sync_db = functools.partial(database_sync_to_async, thread_sensitive=False, executor=_db_executor)

RUNNING: dict[str, asyncio.Task[None]] = {}
STOP_PREFIX = "arbor:stop:"
STOP_CHANNEL = "arbor:stops"
HEARTBEAT_PREFIX = "arbor:gen:"
HEARTBEAT_SECONDS = 30
HEARTBEAT_EVERY = 5.0
STOP_CHECK_EVERY = 1.0  # the flag is the fallback: the channel stops a generation at once
MAX_MODEL_CALLS = 6
INTERRUPTED = "The server restarted while this reply was being written."
INTERRUPTED_CODE = "interrupted"


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
    _watchers_ensure(buffer)
    fanout().open(key)
    task = asyncio.get_running_loop().create_task(_generate(key, route, prepared), name=f"generation {key}")
    RUNNING[key] = task
    task.add_done_callback(lambda finished: RUNNING.pop(key, None) if RUNNING.get(key) is finished else None)
    return task


async def generation_stop(message_id: UUID | str) -> None:
    """Stop a generation wherever it runs: cancel it here, tell every other process."""
    key = str(message_id)
    buffer = stream_buffer()
    await buffer.client.set(STOP_PREFIX + key, "1", ex=600)
    task = RUNNING.get(key)
    if task is not None:
        task.cancel()
    else:
        await buffer.client.publish(STOP_CHANNEL, key)


# --- The process's watch over its generations: stops from elsewhere, heartbeats -----------------
_watchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[asyncio.Task[None], ...]] = (
    weakref.WeakKeyDictionary()
)


def _watchers_ensure(buffer: StreamBuffer) -> None:
    """Start this loop's two watcher tasks (once): the stop listener and the flag-and-heartbeat
    round. They cover a generation whatever it is doing (streaming, or running a tool)."""
    loop = asyncio.get_running_loop()
    running = _watchers.get(loop)
    if running is None or any(task.done() for task in running):
        for task in running or ():
            task.cancel()
        _watchers[loop] = (
            loop.create_task(_listen_for_stops(buffer), name="generation stops"),
            loop.create_task(_watch_running(buffer), name="generation flags and heartbeats"),
        )


async def _watch_running(buffer: StreamBuffer) -> None:
    """Every STOP_CHECK_EVERY seconds, one pipeline for all generations running here: cancel
    those whose stop flag is set, and (every HEARTBEAT_EVERY) refresh their heartbeats."""
    last_beat = time.monotonic()
    while True:
        await asyncio.sleep(STOP_CHECK_EVERY)
        running = list(RUNNING)
        if not running:
            continue
        beat = time.monotonic() - last_beat >= HEARTBEAT_EVERY
        try:
            async with buffer.client.pipeline(transaction=False) as pipe:
                for message_id in running:
                    pipe.exists(STOP_PREFIX + message_id)
                if beat:
                    for message_id in running:
                        pipe.set(HEARTBEAT_PREFIX + message_id, "1", ex=HEARTBEAT_SECONDS)
                answers = await pipe.execute()
        except Exception:
            logger.warning("generations: checking stop flags failed; retrying", exc_info=True)
            continue
        if beat:
            last_beat = time.monotonic()
        for message_id, flagged in zip(running, answers, strict=False):
            task = RUNNING.get(message_id)
            if flagged and task is not None:
                task.cancel()


async def _listen_for_stops(buffer: StreamBuffer) -> None:
    """Cancel the generations running here that another process was asked to stop. A stop
    sent while this is reconnecting is caught by the flag round (`_watch_running`)."""
    while True:
        try:
            async with buffer.client.pubsub(ignore_subscribe_messages=True) as pubsub:
                await pubsub.subscribe(STOP_CHANNEL)
                while True:
                    message = await pubsub.get_message(timeout=HEARTBEAT_SECONDS / 2)
                    task = RUNNING.get(str(message["data"])) if message else None
                    if task is not None:
                        task.cancel()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning("generation stops: listening failed; retrying", exc_info=True)
            await asyncio.sleep(1.0)


# --- One generation -----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Prepared:
    """What a generation needs before its first model call."""

    route: Any
    request: ChatRequest
    user_id: int
    chat_id: str
    model_id: str


def generation_prepare(message_id: str, route: Any = None) -> Prepared:
    """The request for a reply's first model call (context, system prompt, tools), the reply
    read from the database (a generation started without its turn at hand)."""
    message = Message.objects.select_related("chat__owner__tier", "parent").get(pk=message_id)
    return generation_prepare_for(
        reply=message, chat=message.chat, user=message.chat.owner, parent=message.parent, route=route
    )


def generation_prepare_for(*, reply: Message, chat: Any, user: Any, parent: Message | None, route: Any) -> Prepared:
    """The request for a reply's first model call, from the turn's own objects. Sync: a socket
    builds it in the same thread call that saved the turn, so the generation goes straight to
    the model instead of queueing for the database again behind other turns."""
    from chat.prompts import context_messages, system_prompt_for
    from chat.selectors import ancestor_rows
    from providers.routing import route_for

    if route is None or route.model_id != reply.model_id:
        route = route_for(user=user, model_id=reply.model_id)
    rows = ancestor_rows(parent) if parent is not None else []
    tools = tuple(tool.spec for tool in tools_registered()) if route.supports_tools else ()
    request = ChatRequest(
        model=route.candidates[0].provider_model_id,
        messages=tuple(
            context_messages(
                rows=rows,
                max_input_tokens=route.context_window,
                reserve_output=min(route.max_output_tokens, 8192),
                images="image" in route.input_modalities,
                owner_id=user.pk,
            )
        ),
        system=system_prompt_for(chat=chat, user=user),
        tools=tools,
        max_tokens=route.max_output_tokens,
    )
    return Prepared(route, request, user.pk, str(chat.pk), reply.model_id)


_prepare = sync_db(generation_prepare)


@dataclasses.dataclass(frozen=True)
class _Turn:
    """What settling a reply needs of its turn, as its save read it."""

    message_id: str
    chat_id: str
    owner_id: int
    tier_id: int | None
    model_id: str
    provider: str
    reservation: dict[str, Any]


_TREE_COLUMNS = ", ".join(f"m.{name}" for name in TREE_FIELDS)
# One statement saves the reply and reads back what settling and the `done` frame need: the
# turn's reservation as it was (`old`: the same row before this update), the owner and tier,
# whether the chat has a title, and the saved row's tree fields.
_SAVE_SQL = f"""
UPDATE {Message._meta.db_table} AS m SET
    content = %(content)s::jsonb, text = %(text)s, status = %(status)s, reservation = '{{}}'::jsonb,
    usage = %(usage)s::jsonb, finish_reason = %(finish_reason)s, time_to_first_token_ms = %(ttft)s,
    total_time_ms = %(total)s, error_code = %(error_code)s, error_message = %(error_message)s,
    provider = CASE WHEN %(provider)s = '' THEN m.provider ELSE %(provider)s END
FROM {Message._meta.db_table} AS old
JOIN {Chat._meta.db_table} AS c ON c.id = old.chat_id
JOIN {User._meta.db_table} AS u ON u.id = c.owner_id
WHERE m.id = %(id)s AND old.id = m.id
RETURNING old.reservation, m.chat_id, c.owner_id, u.tier_id, c.title, m.provider, {_TREE_COLUMNS}
"""


@sync_db
def _save(message_id: str, reply: Reply, status: str, *, started: float, error: ProviderError | None) -> dict[str, Any]:
    """Save the reply, then settle what its turn reserved and record its usage, all or nothing.
    Returns the saved message as the chat's tree holds it (for the `done` frame)."""
    ttft = None if reply.first_token_at is None else int((reply.first_token_at - started) * 1000)
    total = int((time.monotonic() - started) * 1000)
    usage = reply.usage
    params = {
        "id": message_id,
        "content": json.dumps(reply.parts()),
        "text": reply.text,
        "status": status,
        "usage": json.dumps(_usage_dict(usage)),
        "finish_reason": reply.finish_reason,
        "ttft": ttft,
        "total": total,
        "error_code": str(error.code) if error else "",
        "error_message": error.message if error else "",
        "provider": reply.provider,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_SAVE_SQL, params)
        reservation, chat_id, owner_id, tier_id, title, provider, *tree = cursor.fetchone()
        row = dict(zip(TREE_FIELDS, tree, strict=True))
        turn = _Turn(message_id, str(chat_id), owner_id, tier_id, row["model_id"], provider, _json(reservation))
        _settle(turn, reply, status=status, error=error, ttft_ms=ttft, total_ms=total)
    if status == Status.COMPLETE and not title and settings.CHAT_TITLES_AUTO:
        from chat.tasks import title_chat_after_commit

        title_chat_after_commit(turn.chat_id)
    return message_tree_entry_of_row({**row, "content": _json(row["content"]), "usage": _json(row["usage"])})


def _json(value: Any) -> Any:
    """A jsonb column from a raw cursor (JSON text on Django's connections)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def _usage_dict(usage: Usage) -> dict[str, int]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
    }


def _settle(
    turn: _Turn,
    reply: Reply,
    *,
    status: str,
    error: ProviderError | None,
    ttft_ms: int | None,
    total_ms: int,
    outcome: str = "",
) -> None:
    """Charge the turn for what the provider reported or, when it reported nothing (stopped or
    failed early), for an estimate of what was sent and written; release the rest of what it
    reserved (tokens and money); and write the reply's usage row."""
    from accounts.limits import TOKENS, limit_charge, limit_refund
    from providers.routing import BYOK_PREFIX
    from usage.services import usage_record

    reservation = turn.reservation
    usage = reply.usage
    if not (usage.input_tokens or usage.output_tokens):
        usage = Usage(input_tokens=reservation.get("estimated_input_tokens", 0), output_tokens=len(reply.text) // 4)
    reserved = reservation.get("reserved_tokens", 0)
    used = usage.input_tokens + usage.output_tokens
    owner = User(pk=turn.owner_id)  # the limits need only its id
    if used > reserved:
        limit_charge(user=owner, kind=TOKENS, amount=used - reserved)
    elif used < reserved:
        limit_refund(user=owner, kind=TOKENS, amount=reserved - used)
    usage_record(
        user_id=turn.owner_id,
        kind="chat",
        model_id=turn.model_id,
        provider=reply.provider or turn.provider,
        usage=usage,
        chat_id=turn.chat_id,
        message_id=turn.message_id,
        ttft_ms=ttft_ms,
        total_ms=total_ms,
        outcome=outcome or (str(error.code) if error else ("stopped" if status == Status.STOPPED else "complete")),
        byok=turn.model_id.startswith(BYOK_PREFIX),
        reservation=reservation,
        tier_id=turn.tier_id,
    )


def _done_frame(
    reply: Reply, status: str, error: ProviderError | None, message: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`message` is the saved reply as the tree holds it: a tab patches its tree with it instead
    of reading the whole chat again (a long chat's tree is megabytes)."""
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
    if message is not None:
        frame["message"] = message
    if error is not None:
        frame["error"] = {"code": str(error.code), "message": error.message}
    return frame


class _Writer:
    """Stores a generation's frames in its Redis stream, then hands each, numbered, to this
    process's followers. The coalescer calls it one frame at a time, in order."""

    def __init__(self, buffer: StreamBuffer, hub: Fanout, message_id: str) -> None:
        self.buffer, self.hub, self.message_id = buffer, hub, message_id

    async def __call__(self, frame: dict[str, Any]) -> int:
        # Encoded once: the same text is stored and sent to every follower here.
        payload = frame_encode(frame)
        seq = await self.buffer.append_encoded(self.message_id, payload)
        self.hub.publish(self.message_id, WireFrame(payload, frame, self.message_id, seq))
        return seq


async def _model_call(prepared: Prepared, request: ChatRequest, reply: Reply, coalescer: Coalescer) -> None:
    """Stream one model call into the reply."""
    from providers.resilience import RoutedStream

    stream = RoutedStream(prepared.route, request, release_route=False)
    async for event in stream:
        if reply.first_token_at is None:
            # Nothing is awaited before the first token goes out; the provider is saved at the end.
            reply.first_token_at = time.monotonic()
            reply.provider = stream.served_by.provider if stream.served_by is not None else ""
        frame = reply.frame_for(event)
        if frame is not None:
            await coalescer.add(frame)


async def _tool_loop(message_id: str, prepared: Prepared, reply: Reply, coalescer: Coalescer) -> None:
    """Call the model; while it asks for tools (and calls are left), run them and call it again."""
    context = ToolContext(
        user_id=prepared.user_id,
        chat_id=prepared.chat_id,
        message_id=message_id,
        model_id=prepared.model_id,
        emit=coalescer.add,
    )
    request = prepared.request
    for call_number in range(1, MAX_MODEL_CALLS + 1):
        await _model_call(prepared, request, reply, coalescer)
        calls = reply.step_calls()
        if not calls or call_number == MAX_MODEL_CALLS:
            return  # calls left unanswered at the limit are dropped from later prompts
        for call in calls:
            result = await tool_call_run(call, context)
            await coalescer.add(reply.result_add(call, text=result.content, error=result.error, data=result.data))
        request = dataclasses.replace(request, messages=request.messages + tuple(reply.step_messages()))
        reply.step_begin()


async def _generate(message_id: str, route: Any = None, prepared: Prepared | None = None) -> None:
    from providers.resilience import route_release
    from providers.routing import RouteError

    buffer = stream_buffer()
    hub = fanout()
    started = time.monotonic()
    reply = Reply()
    lag = loop_lag()
    coalescer = Coalescer(_Writer(buffer, hub, message_id), lag=lambda: lag.seconds)
    status, error = Status.COMPLETE, None
    try:
        # The first heartbeat; the process's watcher refreshes it while the generation runs.
        await buffer.client.set(HEARTBEAT_PREFIX + message_id, "1", ex=HEARTBEAT_SECONDS)
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
        logger.exception("generation %s failed", message_id)
        status, error = Status.ERROR, ProviderError(ErrorCode.BAD_REQUEST, "Something went wrong writing this reply.")
    # Saving must finish even when this task is cancelled (again) meanwhile: a stop both
    # cancels the task and sets the flag, so a second cancellation can land here. Wait it out.
    saving = asyncio.ensure_future(
        _finish(buffer, hub, coalescer, message_id, reply=reply, status=status, started=started, error=error)
    )
    while not saving.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(saving)
    if route is not None:
        with contextlib.suppress(Exception):
            await route_release(route)
    saving.result()


async def _finish(
    buffer: StreamBuffer,
    hub: Fanout,
    coalescer: Coalescer,
    message_id: str,
    *,
    reply: Reply,
    status: str,
    started: float,
    error: ProviderError | None,
) -> None:
    try:
        with contextlib.suppress(Exception):
            await coalescer.aclose()
        saved = await _save(message_id, reply, status, started=started, error=error)
        # The reply is saved; a Redis failure now only costs followers the live `done` (a resume
        # answers from the saved message).
        try:
            frame = _done_frame(reply, status, error, saved)
            seq = await buffer.finish(message_id, frame)
            hub.publish(message_id, {**frame, "message_id": message_id, "seq": seq})
            await buffer.client.delete(HEARTBEAT_PREFIX + message_id, STOP_PREFIX + message_id)
        except Exception:  # noqa: BLE001 - logged; the saved message is the truth
            logger.warning("generation %s: could not close its stream buffer", message_id)
    finally:
        hub.close(message_id)


# --- Recovery -----------------------------------------------------------------------------------
async def _recover(message: Message) -> bool:
    """Fail one orphaned reply; False when it is in fact still running in a live process."""
    from chat.selectors import message_tree_entry_read

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
    await sync_db(_fail_orphan)(message, parts, "".join(text))
    frame: dict[str, Any] = {
        "type": "done",
        "status": Status.ERROR,
        "error": {"code": "interrupted", "message": INTERRUPTED},
    }
    with contextlib.suppress(Exception):  # gone meanwhile (its chat deleted): a done without it
        frame["message"] = await sync_db(message_tree_entry_read)(message.pk)
    with contextlib.suppress(Exception):
        await buffer.finish(message.pk, frame)
    return True


def _fail_orphan(message: Message, parts: list[dict[str, Any]], text: str) -> None:
    """Save what an orphan had written as an `interrupted` error and settle its turn like a
    reply that failed without reported usage: charged an estimate, the rest of what it
    reserved given back, a usage row written."""
    with transaction.atomic():
        orphan = (
            Message.objects.select_for_update(of=("self",))
            .select_related("chat__owner")
            .filter(pk=message.pk, status=Status.STREAMING)
            .first()
        )
        if orphan is None:
            return  # saved meanwhile by its own generation
        reservation = orphan.reservation
        Message.objects.filter(pk=message.pk).update(
            content=parts,
            text=text,
            status=Status.ERROR,
            reservation={},
            usage={"input_tokens": 0, "output_tokens": 0, "reasoning_tokens": 0},
            error_code=INTERRUPTED_CODE,
            error_message=INTERRUPTED,
        )
        reply = Reply()
        reply.frame_for(TextDelta(text))
        failure = ProviderError(ErrorCode.PROVIDER_UNAVAILABLE, INTERRUPTED)
        owner = orphan.chat.owner
        turn = _Turn(
            str(orphan.pk), str(orphan.chat_id), owner.pk, owner.tier_id, orphan.model_id, orphan.provider, reservation
        )
        _settle(
            turn,
            reply,
            status=Status.ERROR,
            error=failure,
            ttft_ms=None,
            total_ms=0,
            outcome=INTERRUPTED_CODE,
        )


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
