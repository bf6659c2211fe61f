"""The stream buffer: one Redis stream per assistant message, so a generation can be resumed.

The runner appends server→client frames (`delta`, tool and artifact frames, a final `done`);
the buffer numbers them `seq` = 1, 2, 3, … per message, with no gaps, and every reader gets
them back with `message_id` and `seq` filled in. Any web process can `replay` the frames after a
client's last `seq` or `follow` them live, because the state lives in Redis, not in a process.

Keys (both under `arbor:stream:`, both with the same TTL, refreshed by every append):
    arbor:stream:<message id>       the stream; an entry's id is `<seq>-0` and its one field
                                    `f` holds the frame's JSON, so XRANGE/XREAD by seq are exact
    arbor:stream:<message id>:seq   the last seq handed out (INCR); `open` creates it at 0 so
                                    followers can attach before the first frame exists

Contracts:
- `append` is one Lua script (INCR, XADD, EXPIRE on both keys): atomic, O(1) per frame, never re-reads.
  Appends made in the same event-loop iteration (hundreds of replies streaming at once) go to
  Redis together in one write: one round trip for the batch, each caller still awaiting its
  own frame's seq. They go on the loop's `RedisLine` (`common.redisline`: a tenth of redis-py's CPU per command),
  or, for a TLS URL it does not serve, in one redis-py pipeline.
- `replay` and `follow` never skip or repeat a seq: each frame read must be the previous seq
  plus one, otherwise (the stream was trimmed by `maxlen` past the reader) `BufferExpired` is
  raised rather than a gap delivered.
- Once the keys have expired, `replay` and `follow` raise `BufferExpired`: the caller answers
  from the saved message instead. `exists` asks without raising.
- Nothing is appended after `finish`; `follow` stops after yielding the `done` frame.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from uuid import UUID

import orjson
import redis.asyncio as redis
from django.conf import settings
from redis.exceptions import NoScriptError

from chat.frames import reasoning_delta, text_delta
from common.redisline import RedisLine, loop_line

KEY_PREFIX = "arbor:stream:"
SOCKET_TIMEOUT_SECONDS = 30.0
MAX_CONNECTIONS = 5_000  # per process; Redis accepts 10,000 clients by default
READ_BATCH = 500  # entries per XREAD in `follow`

# KEYS: stream, counter. ARGV: frame JSON, ttl seconds, maxlen (0: unbounded). Returns the seq.
_APPEND_SCRIPT = """
local seq = redis.call('INCR', KEYS[2])
local id = seq .. '-0'
if tonumber(ARGV[3]) > 0 then
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], id, 'f', ARGV[1])
else
  redis.call('XADD', KEYS[1], id, 'f', ARGV[1])
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return seq
"""

Frame = dict[str, Any]
MessageId = str | UUID


class WireFrame(dict[str, Any]):
    """A numbered frame and its JSON text, encoded once: every socket following the reply sends
    `text` as it is, instead of encoding the same frame once per socket."""

    __slots__ = ("text",)

    def __init__(self, body_json: str, body: Frame, message_id: str, seq: int) -> None:
        super().__init__(body, message_id=message_id, seq=seq)
        # The stored body is a JSON object: the two fields join it before its closing brace.
        self.text = f'{body_json[:-1]},"message_id":"{message_id}","seq":{seq}}}'


def frame_encode(frame: Frame) -> str:
    """A frame's body as stored and sent (without `message_id` and `seq`, which readers add):
    compact UTF-8 JSON, by orjson (a fifth of json's CPU, once per frame)."""
    return orjson.dumps(frame).decode()


class BufferExpired(Exception):
    """The buffer is gone (expired) or no longer holds every frame after the asked seq."""


class StreamBuffer:
    """Frames of generations in Redis streams. Create one per event loop (see `stream_buffer`):
    the redis.asyncio pool belongs to the loop it was first used on."""

    def __init__(self, redis_url: str, *, ttl_seconds: int = 3600, maxlen: int | None = None) -> None:
        self.redis_url = redis_url
        self.ttl_seconds = ttl_seconds
        self.maxlen = maxlen
        # Reads may block for `poll_seconds` (XREAD BLOCK): the socket timeout must outlast them.
        # Every follower holds a connection for its blocking read: the pool must hold as many.
        self._redis: redis.Redis = redis.Redis.from_url(
            redis_url,
            decode_responses=True,
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
            max_connections=MAX_CONNECTIONS,
            driver_info=None,  # no package metadata read, no CLIENT SETINFO per new connection
        )
        self._append = self._redis.register_script(_APPEND_SCRIPT)
        self._pending: list[tuple[list[str], list[Any], asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None

    @property
    def client(self) -> redis.Redis:
        """The Redis client (this loop's), for small keys beside the streams (stop flags, heartbeats)."""
        return self._redis

    @property
    def line(self) -> RedisLine | None:
        """The running loop's pipelined connection for per-turn and per-frame commands (None
        for a TLS URL, which redis-py serves). Call it on the loop."""
        return loop_line(self.redis_url)

    async def aclose(self) -> None:
        await self._redis.aclose()

    @staticmethod
    def stream_key(message_id: MessageId) -> str:
        return f"{KEY_PREFIX}{message_id}"

    @staticmethod
    def seq_key(message_id: MessageId) -> str:
        return f"{KEY_PREFIX}{message_id}:seq"

    # --- Writing --------------------------------------------------------------------------
    async def open(self, message_id: MessageId) -> None:
        """Mark a generation as started (when its placeholder is saved), before its first frame:
        from then on `exists` is true and `follow` waits for frames instead of raising."""
        if (line := self.line) is not None:
            await line.execute(b"SET", self.seq_key(message_id), b"0", b"EX", self.ttl_seconds, b"NX")
        else:
            await self._redis.set(self.seq_key(message_id), 0, ex=self.ttl_seconds, nx=True)

    async def append(self, message_id: MessageId, frame: Frame) -> int:
        """Store one frame; returns its seq. `message_id`/`seq` keys in `frame` are ignored."""
        if not isinstance(frame.get("type"), str):
            raise ValueError("a frame needs a string `type`")
        body = {key: value for key, value in frame.items() if key not in ("message_id", "seq")}
        return await self.append_encoded(message_id, frame_encode(body))

    async def append_encoded(self, message_id: MessageId, payload: str) -> int:
        """Store one frame already encoded by `frame_encode` (no `message_id`, no `seq`)."""
        if (line := self.line) is not None:
            keys = (self.stream_key(message_id), self.seq_key(message_id))
            return int(await line.run_script(_APPEND_SCRIPT, keys, (payload, self.ttl_seconds, self.maxlen or 0)))
        keys = [self.stream_key(message_id), self.seq_key(message_id)]
        stored: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((keys, [payload, self.ttl_seconds, self.maxlen or 0], stored))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._store_pending())
        return int(await stored)

    async def _store_pending(self) -> None:
        while self._pending:
            await asyncio.sleep(0)  # appends made in this loop iteration join the batch
            batch, self._pending = self._pending, []
            try:
                results = await self._store(batch)
            except Exception as error:  # noqa: BLE001 - every waiter gets it
                results = [error] * len(batch)
            for (_, _, stored), result in zip(batch, results, strict=True):
                if stored.done():  # its caller was cancelled; the frame is stored all the same
                    continue
                if isinstance(result, BaseException):
                    stored.set_exception(result)
                else:
                    stored.set_result(result)

    async def _store(self, batch: list[tuple[list[str], list[Any], asyncio.Future[Any]]]) -> list[Any]:
        """Run the append script for every frame in one pipeline. By its hash: the script is
        loaded once, and again only for the frames Redis refused because it forgot the script
        (a restart; a refused frame was not written, so it is sent once more)."""
        results: list[Any] = [None] * len(batch)
        todo = list(range(len(batch)))
        for attempt in range(2):
            async with self._redis.pipeline(transaction=False) as pipe:
                for index in todo:
                    keys, args, _ = batch[index]
                    pipe.evalsha(self._append.sha, len(keys), *keys, *args)
                answers = await pipe.execute(raise_on_error=False)
            if len(answers) != len(todo):
                raise RuntimeError(f"the pipeline answered {len(answers)} of {len(todo)} appends")
            for index, answer in zip(todo, answers, strict=True):
                results[index] = answer
            todo = [index for index, answer in zip(todo, answers, strict=True) if isinstance(answer, NoScriptError)]
            if not todo or attempt:
                break
            self._append.sha = await self._redis.script_load(_APPEND_SCRIPT)
        return results

    async def finish(self, message_id: MessageId, frame: Frame) -> int:
        """Append the terminal `done` frame (`status`, `usage`, `error`); returns its seq."""
        if frame.get("type") != "done":
            raise ValueError("finish takes the `done` frame")
        return await self.append(message_id, frame)

    # --- Reading --------------------------------------------------------------------------
    async def exists(self, message_id: MessageId) -> bool:
        return bool(await self._redis.exists(self.stream_key(message_id), self.seq_key(message_id)))

    async def is_finished(self, message_id: MessageId) -> bool:
        """True once the last frame is `done` (false for an expired buffer: ask the database)."""
        last = await self._redis.xrevrange(self.stream_key(message_id), count=1)
        return bool(last) and orjson.loads(last[0][1]["f"]).get("type") == "done"

    async def replay(self, message_id: MessageId, after_seq: int = 0) -> list[Frame]:
        """Every stored frame with seq > after_seq, in order. Raises `BufferExpired` when the
        buffer is gone, trimmed past `after_seq`, or behind it (a newer buffer than the client's)."""
        if (line := self.line) is not None:
            # On the line (a socket's every turn replays once): the same MULTI, sent in one write.
            *_, (last_seq, entries) = await line.execute_in_order(
                (b"MULTI",),
                (b"GET", self.seq_key(message_id)),
                (b"XRANGE", self.stream_key(message_id), f"{after_seq + 1}-0", b"+"),
                (b"EXEC",),
            )
            last_seq = last_seq.decode() if last_seq is not None else None
            entries = [(entry_id.decode(), _fields(flat)) for entry_id, flat in entries]
        else:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.get(self.seq_key(message_id))
                pipe.xrange(self.stream_key(message_id), min=f"{after_seq + 1}-0")
                last_seq, entries = await pipe.execute()
        self._check_position(message_id, last_seq, after_seq)
        return self._decode(message_id, entries, after_seq)

    async def follow(
        self, message_id: MessageId, after_seq: int = 0, *, poll_seconds: float = 5.0
    ) -> AsyncIterator[Frame]:
        """The frames after `after_seq`, stored ones first, then live ones as they are appended,
        up to and including `done`. Reads always continue from the last id seen (XREAD is
        exclusive of it), so a frame appended between two reads is neither lost nor repeated.

        Raises `BufferExpired` when `replay` would, or when the buffer vanishes while waiting
        (checked every `poll_seconds` without frames). Returns at once if `after_seq` is at or
        past `done`. Each waiting follower holds one pooled Redis connection. Cancelling the
        consuming task is safe: redis-py drops the connection of an interrupted blocking read."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(self.seq_key(message_id))
            pipe.xrevrange(self.stream_key(message_id), count=1)
            last_seq, last = await pipe.execute()
        if last and orjson.loads(last[0][1]["f"]).get("type") == "done" and _seq(last[0][0]) <= after_seq:
            return
        self._check_position(message_id, last_seq, after_seq)
        key = self.stream_key(message_id)
        block_ms = max(1, int(poll_seconds * 1000))
        seq = after_seq
        while True:
            reply = await self._redis.xread({key: f"{seq}-0"}, count=READ_BATCH, block=block_ms)
            if not reply:
                if not await self.exists(message_id):
                    raise BufferExpired(str(message_id))
                continue
            for frame in self._decode(message_id, reply[0][1], seq):
                seq = frame["seq"]
                yield frame
                if frame["type"] == "done":
                    return

    @staticmethod
    def _check_position(message_id: MessageId, last_seq: str | None, after_seq: int) -> None:
        if last_seq is None:
            raise BufferExpired(f"{message_id}: no buffer")
        if int(last_seq) < after_seq:
            raise BufferExpired(f"{message_id}: seq {after_seq} is past the buffer's {last_seq}")

    @staticmethod
    def _decode(message_id: MessageId, entries: list[Any], after_seq: int) -> list[Frame]:
        frames = []
        expected = after_seq + 1
        for entry_id, fields in entries:
            seq = _seq(entry_id)
            if seq != expected:
                raise BufferExpired(f"{message_id}: seq {expected} was trimmed")
            frames.append(WireFrame(fields["f"], orjson.loads(fields["f"]), str(message_id), seq))
            expected += 1
        return frames


def _fields(flat: list[bytes]) -> dict[str, str]:
    """A stream entry's fields as redis-py decodes them: name, value, name, value, … as a dict."""
    return {flat[index].decode(): flat[index + 1].decode() for index in range(0, len(flat), 2)}


def _seq(entry_id: str) -> int:
    return int(entry_id.split("-", 1)[0])


_buffers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, StreamBuffer] = weakref.WeakKeyDictionary()


def stream_buffer() -> StreamBuffer:
    """The buffer for the running event loop, from settings (REDIS_URL, STREAM_BUFFER_TTL).
    It lives as long as the loop: do not close it. Outside a loop a new buffer is returned,
    which the caller closes."""
    url = settings.REDIS_URL
    ttl = int(getattr(settings, "STREAM_BUFFER_TTL", 3600))
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return StreamBuffer(url, ttl_seconds=ttl)
    buffer = _buffers.get(loop)
    if buffer is None or buffer.redis_url != url or buffer.ttl_seconds != ttl:
        buffer = _buffers[loop] = StreamBuffer(url, ttl_seconds=ttl)
    return buffer


# 20 frames a second at most: smooth to read, and at a vendor's usual 30-60 tokens a second two
# or more tokens share a frame (a frame's cost, Redis, fan-out and the socket, is most of a
# streamed token's CPU; at 30 ms every token of a 30-per-second stream was a frame of its own).
DEFAULT_INTERVAL = 0.05


class Coalescer:
    """Merges consecutive text (or reasoning) deltas into one frame per `interval` seconds.

    Order is kept across kinds: only consecutive deltas of the same kind merge; a delta of the
    other kind, or any other frame (tool, artifact, done), first flushes what is pending, then
    goes to the sink at once. Chunks are kept in a list and joined once per flush: O(n) in all.

    Timing: a delta that comes at least `interval` after the last flush goes out at once (so a
    reply's first token, and every token of a stream slower than one per interval, is never
    held); otherwise it joins the pending batch, which a background timer flushes `interval`
    after the last flush (`add` also flushes inline once the batch is due, for producers that
    never yield). So a delta waits at most `interval` plus event-loop latency. All sink calls run
    under one lock, in order. A sink error in the timer task is raised by the next call.
    Call `aclose()` (or add the `done` frame) at the end; one producer per coalescer.

    `hold`, if given, is told after each delta frame how long nothing more can go out: a producer
    that reads a socket (`providers.adapters.transport.ReadPacer`) leaves it unread that long, so
    what comes meanwhile arrives in one read, due at once, instead of a read per token and a timer.

    Under load the window widens, up to `MAX_INTERVAL`, and the first token still goes at once:
    - with `lag` (the event loop's lateness in seconds, see `chat.looplag`), a batch may gather
      for `LAG_FACTOR` times the lag: a loop that runs late sends fewer, larger frames;
    - with `streaming` (how many replies this process is streaming), the window is wide enough
      for the process's replies together to send about `FRAMES_PER_SECOND` delta frames a
      second: a frame's fixed cost (its Redis append, the socket write, the wakeups) is most of a
      streamed token's CPU, so fifty replies at once send a frame each a tenth of a second,
      not twenty.
    """

    LAG_FACTOR = 2.0
    MAX_INTERVAL = 0.15
    # 300 cost about a sixth less CPU per streamed token than 500, but the 150 ms window it
    # gives 50 replies added ~200 ms to the token lag's p99 at 100 streams (the issue allows 150).
    FRAMES_PER_SECOND = 500
    # A hold lasts this much longer than the interval: the event loop's timers have a resolution
    # of a millisecond, and a read that came a moment before its batch was due would wait for the
    # timer instead of going out at once.
    HOLD_MARGIN = 0.002

    def __init__(
        self,
        sink: Callable[[Frame], Awaitable[int]],
        interval: float = DEFAULT_INTERVAL,
        lag: Callable[[], float] | None = None,
        streaming: Callable[[], int] | None = None,
        hold: Callable[[float], None] | None = None,
    ) -> None:
        self._sink = sink
        self._hold = hold
        self.base_interval = interval
        self._lag = lag
        self._streaming = streaming
        self._kind: str | None = None
        self._chunks: list[str] = []
        self._next_due = float("-inf")  # when a batch may go out: a frame per interval
        self._lock = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None

    @property
    def interval(self) -> float:
        wanted = self.LAG_FACTOR * self._lag() if self._lag is not None else 0.0
        if self._streaming is not None:
            wanted = max(wanted, self._streaming() / self.FRAMES_PER_SECOND)
        return max(self.base_interval, min(self.MAX_INTERVAL, wanted))

    async def add(self, frame: Frame) -> None:
        self._raise_timer_error()
        kind = _delta_kind(frame)
        if kind is None:
            async with self._lock:
                await self._flush_locked()
                await self._sink(frame)
            return
        if self._chunks and kind != self._kind:
            await self.flush()
        if not self._chunks:
            self._kind = kind
        self._chunks.append(frame[kind])
        if time.monotonic() >= self._next_due:
            await self.flush()
        elif self._timer is None or self._timer.done():
            self._timer = asyncio.create_task(self._flush_when_due())

    async def flush(self) -> None:
        """Send what is pending now."""
        self._raise_timer_error()
        async with self._lock:
            await self._flush_locked()

    async def aclose(self) -> None:
        """Flush and stop the timer."""
        if self._timer is not None and not self._timer.done():
            self._timer.cancel()
            await asyncio.gather(self._timer, return_exceptions=True)
        await self.flush()

    async def _flush_locked(self) -> None:
        if not self._chunks:
            return
        joined = "".join(self._chunks)
        frame = text_delta(joined) if self._kind == "text" else reasoning_delta(joined)
        self._chunks = []  # taken before the await: chunks added meanwhile form the next batch
        interval = self.interval
        self._next_due = time.monotonic() + interval
        if self._hold is not None:
            self._hold(interval + self.HOLD_MARGIN)
        await self._sink(frame)

    async def _flush_when_due(self) -> None:
        # Runs while anything is pending; a batch is due `interval` after the last flush.
        while self._chunks:
            delay = self._next_due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
                continue  # the batch may have been flushed inline and another begun meanwhile
            async with self._lock:
                await self._flush_locked()

    def _raise_timer_error(self) -> None:
        timer = self._timer
        if timer is None or not timer.done() or timer.cancelled():
            return
        error = timer.exception()
        if error is not None:
            self._timer = None
            raise error


def _delta_kind(frame: Frame) -> str | None:
    """'text' or 'reasoning' for a plain delta frame that may merge; None for anything else."""
    if frame.get("type") != "delta" or len(frame) != 2:
        return None
    for kind in ("text", "reasoning"):
        if isinstance(frame.get(kind), str):
            return kind
    return None
