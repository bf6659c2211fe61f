"""The stream buffer against the real test Redis, and the coalescer in front of it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio as redis
from django.conf import settings

from chat import streambuffer
from chat.streambuffer import BufferExpired, Coalescer, StreamBuffer, stream_buffer

Frame = dict[str, Any]
# The coalescer's times are binary fractions of a second, so sums of them are exact and no
# flush hinges on rounding.
TICK = 2**-10  # about a millisecond
INTERVAL = 2**-5  # 31.25 ms


@pytest.fixture(params=["line", "redis-py"])
async def buffer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[StreamBuffer]:
    """The buffer on the loop's Redis line, and as it runs where the line does not serve (a TLS
    URL): on redis-py's pool and pipelines. Both must keep every contract."""
    if request.param == "redis-py":
        monkeypatch.setattr(streambuffer, "loop_line", lambda url: None)
    buffer = StreamBuffer(settings.REDIS_URL)
    yield buffer
    await buffer.aclose()


def new_id() -> str:
    return str(uuid.uuid4())


def done(status: str = "complete") -> Frame:
    return {"type": "done", "status": status, "usage": {"output_tokens": 3}, "error": None}


async def collect(frames: AsyncIterator[Frame]) -> list[Frame]:
    return [frame async for frame in frames]


class ListSink:
    """A coalescer sink that records frames and, given a clock, when they arrived."""

    def __init__(self, clock: VirtualClock | None = None) -> None:
        self.clock = clock
        self.frames: list[Frame] = []
        self.times: list[float] = []

    async def __call__(self, frame: Frame) -> int:
        self.frames.append(frame)
        if self.clock is not None:
            self.times.append(self.clock.now)
        return len(self.frames)


@dataclass
class _Sleeper:
    until: float
    task: asyncio.Task[Any] | None
    woken: asyncio.Future[None]


class VirtualClock:
    """Time that passes only when the test says so, for the coalescer's clock (`monotonic`) and
    its timer (`sleep`): what a frame waited is then exact, on any machine and under any load."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleepers: list[_Sleeper] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        if delay <= 0:
            await asyncio.sleep(0)
            return
        woken = asyncio.get_running_loop().create_future()
        self.sleepers.append(_Sleeper(self.now + delay, asyncio.current_task(), woken))
        await woken

    async def advance(self, seconds: float) -> None:
        """Move time on, and run every sleeper now due until it sleeps again or ends (its
        flush may wait on Redis meanwhile)."""
        await asyncio.sleep(0)  # a timer task created just now first starts, and sleeps
        self.now += seconds
        while due := [sleeper for sleeper in self.sleepers if sleeper.until <= self.now]:
            for sleeper in due:
                self.sleepers.remove(sleeper)
                sleeper.woken.set_result(None)
            while any(self._running(sleeper.task) for sleeper in due):
                await asyncio.sleep(0)

    def _running(self, task: asyncio.Task[Any] | None) -> bool:
        asleep = {sleeper.task for sleeper in self.sleepers}
        return task is not None and not task.done() and task not in asleep


class _AsyncioOnTheClock:
    """asyncio as the stream buffer module sees it, with `sleep` on the virtual clock."""

    def __init__(self, clock: VirtualClock) -> None:
        self.sleep = clock.sleep

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> VirtualClock:
    """The coalescer on virtual time (see VirtualClock)."""
    clock = VirtualClock()
    monkeypatch.setattr(streambuffer, "time", clock)
    monkeypatch.setattr(streambuffer, "asyncio", _AsyncioOnTheClock(clock))
    return clock


# --- Appending and replaying -------------------------------------------------------------------
async def test_seq_starts_at_one_and_increases_without_gaps(buffer: StreamBuffer) -> None:
    message_id = new_id()
    seqs = [await buffer.append(message_id, {"type": "delta", "text": str(n)}) for n in range(20)]
    assert seqs == list(range(1, 21))
    assert await buffer.finish(message_id, done()) == 21


async def test_each_message_has_its_own_sequence(buffer: StreamBuffer) -> None:
    first, second = new_id(), new_id()
    assert await buffer.append(first, {"type": "delta", "text": "a"}) == 1
    assert await buffer.append(first, {"type": "delta", "text": "b"}) == 2
    assert await buffer.append(second, {"type": "delta", "text": "c"}) == 1


async def test_replayed_frames_carry_message_id_and_seq(buffer: StreamBuffer) -> None:
    message_id = uuid.uuid4()
    await buffer.append(message_id, {"type": "delta", "reasoning": "hm", "seq": 99, "message_id": "forged"})
    assert await buffer.replay(message_id) == [
        {"type": "delta", "reasoning": "hm", "message_id": str(message_id), "seq": 1}
    ]


async def test_replay_after_n_returns_exactly_the_later_frames(buffer: StreamBuffer) -> None:
    message_id = new_id()
    for n in range(1, 11):
        await buffer.append(message_id, {"type": "delta", "text": f"t{n}"})
    await buffer.finish(message_id, done())

    later = await buffer.replay(message_id, 7)

    assert [frame["seq"] for frame in later] == [8, 9, 10, 11]
    assert [frame.get("text") for frame in later] == ["t8", "t9", "t10", None]
    assert later[-1]["type"] == "done"
    assert await buffer.replay(message_id, 11) == []
    assert len(await buffer.replay(message_id)) == 11


async def test_finish_appends_done_and_marks_the_buffer_finished(buffer: StreamBuffer) -> None:
    message_id = new_id()
    await buffer.append(message_id, {"type": "delta", "text": "hi"})
    assert not await buffer.is_finished(message_id)

    await buffer.finish(message_id, done("stopped"))

    assert await buffer.is_finished(message_id)
    assert (await buffer.replay(message_id, 1))[0]["status"] == "stopped"


async def test_finish_refuses_a_frame_that_is_not_done(buffer: StreamBuffer) -> None:
    with pytest.raises(ValueError, match="done"):
        await buffer.finish(new_id(), {"type": "delta", "text": "x"})


async def test_keys_live_under_the_arbor_stream_prefix_with_a_ttl(buffer: StreamBuffer) -> None:
    message_id = new_id()
    await buffer.append(message_id, {"type": "delta", "text": "x"})
    client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    try:
        keys = sorted([key async for key in client.scan_iter(match=f"*{message_id}*")])
        assert keys == [f"arbor:stream:{message_id}", f"arbor:stream:{message_id}:seq"]
        for key in keys:
            assert 0 < await client.ttl(key) <= 3600
    finally:
        await client.aclose()


# --- Following -------------------------------------------------------------------------------
async def test_two_followers_get_exactly_the_frames_after_their_seq_while_frames_arrive(
    buffer: StreamBuffer,
) -> None:
    message_id = new_id()
    await buffer.open(message_id)
    appended = asyncio.Event()

    async def produce() -> None:
        for n in range(1, 201):
            await buffer.append(message_id, {"type": "delta", "text": f"<{n}>"})
            if n == 60:
                appended.set()
            await asyncio.sleep(0.001 if n % 3 else 0)
        await buffer.finish(message_id, done())

    from_start = asyncio.create_task(collect(buffer.follow(message_id, 0)))
    producer = asyncio.create_task(produce())
    await appended.wait()
    from_fifty = asyncio.create_task(collect(buffer.follow(message_id, 50)))
    await producer
    first, second = await asyncio.wait_for(asyncio.gather(from_start, from_fifty), timeout=10)

    assert [frame["seq"] for frame in first] == list(range(1, 202))
    assert [frame["seq"] for frame in second] == list(range(51, 202))
    assert [frame.get("text") for frame in second[:-1]] == [f"<{n}>" for n in range(51, 201)]
    assert first[-1]["type"] == second[-1]["type"] == "done"


async def test_a_follower_of_a_finished_buffer_gets_the_replay_then_stops(buffer: StreamBuffer) -> None:
    message_id = new_id()
    for n in range(5):
        await buffer.append(message_id, {"type": "delta", "text": str(n)})
    await buffer.finish(message_id, done())

    frames = await asyncio.wait_for(collect(buffer.follow(message_id, 2)), timeout=2)

    assert [frame["seq"] for frame in frames] == [3, 4, 5, 6]
    assert frames[-1]["type"] == "done"


async def test_a_follower_that_already_saw_done_stops_at_once(buffer: StreamBuffer) -> None:
    message_id = new_id()
    await buffer.append(message_id, {"type": "delta", "text": "x"})
    await buffer.finish(message_id, done())

    assert await asyncio.wait_for(collect(buffer.follow(message_id, 2)), timeout=2) == []


async def test_a_follower_of_an_opened_buffer_waits_for_its_first_frame(buffer: StreamBuffer) -> None:
    message_id = new_id()
    await buffer.open(message_id)
    assert await buffer.exists(message_id)
    follower = asyncio.create_task(collect(buffer.follow(message_id, 0, poll_seconds=0.05)))
    await asyncio.sleep(0.2)
    assert not follower.done()

    await buffer.append(message_id, {"type": "delta", "text": "late"})
    await buffer.finish(message_id, done())

    frames = await asyncio.wait_for(follower, timeout=2)
    assert [frame["seq"] for frame in frames] == [1, 2]


async def test_cancelling_a_follower_is_clean(buffer: StreamBuffer) -> None:
    message_id = new_id()
    await buffer.append(message_id, {"type": "delta", "text": "a"})
    seen: list[Frame] = []

    async def follow() -> None:
        async for frame in buffer.follow(message_id, 0):
            seen.append(frame)

    follower = asyncio.create_task(follow())
    # Cancelled once it has the first frame, blocked in XREAD for the next (not after a fixed
    # sleep: a slow moment of a shared machine once left it short of the first frame).
    for _ in range(500):
        if seen:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    follower.cancel()
    with pytest.raises(asyncio.CancelledError):
        await follower

    assert [frame["seq"] for frame in seen] == [1]
    assert await buffer.append(message_id, {"type": "delta", "text": "b"}) == 2
    assert [frame["seq"] for frame in await buffer.replay(message_id)] == [1, 2]


async def test_a_client_ahead_of_the_buffer_is_told_it_expired(buffer: StreamBuffer) -> None:
    message_id = new_id()
    await buffer.append(message_id, {"type": "delta", "text": "x"})
    with pytest.raises(BufferExpired, match="past"):
        await buffer.replay(message_id, 5)
    with pytest.raises(BufferExpired, match="past"):
        await collect(buffer.follow(message_id, 5))


# --- Expiry and trimming -------------------------------------------------------------------------
async def test_an_expired_buffer_is_gone_and_refuses_replay_and_follow() -> None:
    buffer = StreamBuffer(settings.REDIS_URL, ttl_seconds=1)
    try:
        message_id = new_id()
        await buffer.append(message_id, {"type": "delta", "text": "x"})
        assert await buffer.exists(message_id)

        await asyncio.sleep(1.2)

        assert not await buffer.exists(message_id)
        assert not await buffer.is_finished(message_id)
        with pytest.raises(BufferExpired):
            await buffer.replay(message_id, 0)
        with pytest.raises(BufferExpired):
            await collect(buffer.follow(message_id, 0))
    finally:
        await buffer.aclose()


async def test_a_follower_waiting_when_the_buffer_expires_raises_buffer_expired() -> None:
    buffer = StreamBuffer(settings.REDIS_URL, ttl_seconds=1)
    try:
        message_id = new_id()
        await buffer.append(message_id, {"type": "delta", "text": "x"})
        seen: list[Frame] = []
        with pytest.raises(BufferExpired):
            async with asyncio.timeout(3):
                async for frame in buffer.follow(message_id, 0, poll_seconds=0.1):
                    seen.append(frame)
        assert [frame["seq"] for frame in seen] == [1]
    finally:
        await buffer.aclose()


async def test_each_append_refreshes_the_expiry() -> None:
    buffer = StreamBuffer(settings.REDIS_URL, ttl_seconds=1)
    try:
        message_id = new_id()
        for _ in range(4):
            await buffer.append(message_id, {"type": "delta", "text": "x"})
            await asyncio.sleep(0.4)
        assert await buffer.exists(message_id)
        assert len(await buffer.replay(message_id)) == 4
    finally:
        await buffer.aclose()


async def test_a_trimmed_buffer_refuses_to_skip_frames() -> None:
    buffer = StreamBuffer(settings.REDIS_URL, maxlen=10)
    try:
        message_id = new_id()
        for n in range(500):
            await buffer.append(message_id, {"type": "delta", "text": str(n)})
        with pytest.raises(BufferExpired, match="trimmed"):
            await buffer.replay(message_id, 0)
        with pytest.raises(BufferExpired, match="trimmed"):
            await collect(buffer.follow(message_id, 0))
        assert [frame["seq"] for frame in await buffer.replay(message_id, 495)] == [496, 497, 498, 499, 500]
    finally:
        await buffer.aclose()


# --- The factory ------------------------------------------------------------------------------
async def test_stream_buffer_reads_settings_and_is_shared_within_an_event_loop(
    settings: Any,
) -> None:
    settings.STREAM_BUFFER_TTL = 120
    shared = stream_buffer()
    assert shared is stream_buffer()
    assert shared.redis_url == settings.REDIS_URL
    assert shared.ttl_seconds == 120
    message_id = new_id()
    assert await shared.append(message_id, {"type": "delta", "text": "x"}) == 1
    await shared.aclose()


# --- The coalescer ------------------------------------------------------------------------------
async def test_coalescer_merges_quick_text_deltas_into_a_frame_per_interval(clock: VirtualClock) -> None:
    sink = ListSink()
    coalescer = Coalescer(sink, interval=INTERVAL)
    chunks = [f"w{n} " for n in range(100)]
    for chunk in chunks:
        await coalescer.add({"type": "delta", "text": chunk})
        await clock.advance(TICK)
    await coalescer.aclose()

    # One frame per interval (the first chunk's at once, and what is left at the end): chunks
    # are never held longer, nor sent more often.
    intervals = clock.now / INTERVAL
    assert intervals <= len(sink.frames) <= intervals + 2
    assert all(frame["type"] == "delta" and set(frame) == {"type", "text"} for frame in sink.frames)
    assert "".join(frame["text"] for frame in sink.frames) == "".join(chunks)


async def test_coalescer_flushes_due_batches_even_when_the_producer_never_yields(clock: VirtualClock) -> None:
    sink = ListSink()
    coalescer = Coalescer(sink, interval=INTERVAL / 4)
    for _ in range(100):
        clock.now += TICK  # time passes, but the timer never gets to run: no await suspends
        await coalescer.add({"type": "delta", "text": "x"})
    await coalescer.aclose()

    assert len(sink.frames) >= clock.now / (INTERVAL / 4)  # every due batch went out inline


async def test_coalescer_keeps_reasoning_and_text_in_order() -> None:
    sink = ListSink()
    coalescer = Coalescer(sink, interval=10)
    for frame in [
        {"type": "delta", "reasoning": "think "},
        {"type": "delta", "reasoning": "more"},
        {"type": "delta", "text": "Hello "},
        {"type": "delta", "text": "there"},
        {"type": "delta", "reasoning": "again"},
    ]:
        await coalescer.add(frame)
    await coalescer.aclose()

    # The first delta goes out at once (nothing was sent for an interval); the rest merge.
    assert sink.frames == [
        {"type": "delta", "reasoning": "think "},
        {"type": "delta", "reasoning": "more"},
        {"type": "delta", "text": "Hello there"},
        {"type": "delta", "reasoning": "again"},
    ]


async def test_coalescer_sends_tool_and_done_frames_at_once_after_pending_deltas() -> None:
    sink = ListSink()
    coalescer = Coalescer(sink, interval=10)
    tool = {"type": "tool_call", "id": "call_1", "name": "create_document", "arguments": "{}"}
    await coalescer.add({"type": "delta", "text": "Let me "})
    await coalescer.add({"type": "delta", "text": "write "})
    await coalescer.add({"type": "delta", "text": "that."})
    await coalescer.add(tool)
    assert sink.frames == [{"type": "delta", "text": "Let me "}, {"type": "delta", "text": "write that."}, tool]

    await coalescer.add({"type": "delta", "text": "Done."})
    await coalescer.add(done())
    assert sink.frames[3:] == [{"type": "delta", "text": "Done."}, done()]


async def test_coalescer_sends_a_delta_after_a_quiet_interval_at_once_and_a_trailing_one_within_it(
    clock: VirtualClock,
) -> None:
    sink = ListSink(clock)
    coalescer = Coalescer(sink, interval=INTERVAL)
    first, tail = {"type": "delta", "text": "first"}, {"type": "delta", "text": "tail"}
    await coalescer.add(first)
    await coalescer.add(tail)
    assert sink.frames == [first]  # the first token is never held

    await clock.advance(INTERVAL - TICK)
    assert sink.frames == [first]
    await clock.advance(TICK)
    assert sink.frames == [first, tail]
    assert sink.times == [0, INTERVAL]  # the trailing one waited exactly the interval
    await coalescer.aclose()
    assert len(sink.frames) == 2


async def test_coalescer_tells_its_producer_to_hold_its_input_for_an_interval_after_each_frame(
    clock: VirtualClock,
) -> None:
    sink, holds = ListSink(clock), []
    coalescer = Coalescer(sink, interval=INTERVAL, hold=holds.append)
    await coalescer.add({"type": "delta", "text": "first"})
    assert holds == [INTERVAL + Coalescer.HOLD_MARGIN]  # the first token went out; the rest may wait
    await coalescer.add({"type": "delta", "text": "early"})
    assert len(holds) == 1  # nothing went out, so nothing new to hold

    await clock.advance(INTERVAL)  # the timer sends "early"
    assert len(holds) == 2
    await clock.advance(INTERVAL)
    # What a held producer brings once the hold is over is due: it goes out at once, no timer.
    await coalescer.add({"type": "delta", "text": "held"})
    assert [frame["text"] for frame in sink.frames] == ["first", "early", "held"]
    assert len(holds) == 3
    await coalescer.aclose()


async def test_coalescer_raises_a_sink_error_from_its_timer_on_the_next_call(clock: VirtualClock) -> None:
    calls = []

    async def breaks_after_one(frame: Frame) -> int:
        calls.append(frame)
        if len(calls) > 1:
            raise ConnectionError("redis is down")
        return 1

    coalescer = Coalescer(breaks_after_one, interval=INTERVAL)
    await coalescer.add({"type": "delta", "text": "x"})  # sent at once
    await coalescer.add({"type": "delta", "text": "pending"})
    await clock.advance(INTERVAL)  # the timer's flush fails
    assert len(calls) == 2
    with pytest.raises(ConnectionError):
        await coalescer.add({"type": "delta", "text": "y"})


async def test_stored_bytes_grow_linearly_with_the_reply_length(buffer: StreamBuffer, clock: VirtualClock) -> None:
    async def stored(reply_length: int) -> tuple[int, int, int]:
        message_id = new_id()
        coalescer = Coalescer(lambda frame: buffer.append(message_id, frame), interval=INTERVAL / 8)
        for n in range(reply_length):
            await coalescer.add({"type": "delta", "text": "abcdefghij"[n % 10]})
            if n % 20 == 0:
                await clock.advance(TICK)
        await coalescer.add(done())
        frames = await buffer.replay(message_id)
        text = "".join(frame.get("text", "") for frame in frames)
        assert text == "".join("abcdefghij"[n % 10] for n in range(reply_length))
        client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
        try:
            entries = await client.xrange(buffer.stream_key(message_id))
        finally:
            await client.aclose()
        return len(text), len(entries), sum(len(fields["f"].encode()) for _, fields in entries)

    for length in (1000, 4000):
        text_length, frame_count, stored_bytes = await stored(length)
        # Every character is stored once; each frame adds only its small JSON envelope.
        assert text_length == length
        assert frame_count < length / 5
        assert stored_bytes <= text_length + 40 * frame_count


async def test_appends_made_together_are_numbered_in_order_and_survive_a_flushed_script_cache() -> None:
    buffer = StreamBuffer(settings.REDIS_URL)
    await buffer.open("batched")
    await buffer.client.script_flush()
    seqs = await asyncio.gather(*[buffer.append("batched", {"type": "delta", "text": str(n)}) for n in range(50)])
    assert sorted(seqs) == list(range(1, 51))
    frames = await buffer.replay("batched")
    assert [frame["text"] for frame in frames] == [str(n) for n in range(50)]
    await buffer.aclose()


# --- The window widens when the loop lags -------------------------------------------------------
class _Wide(Coalescer):
    MAX_INTERVAL = 1_000.0  # no cap: the widening alone decides


async def _frames_after_spaced_deltas(coalescer: Coalescer, sink: ListSink) -> int:
    for index in range(6):
        await coalescer.add({"type": "delta", "text": f"t{index} "})
        await asyncio.sleep(INTERVAL * 2)  # each delta comes after the base window
    await coalescer.aclose()
    assert "".join(frame["text"] for frame in sink.frames) == "t0 t1 t2 t3 t4 t5 "
    return len(sink.frames)


async def test_with_no_lag_every_delta_after_the_window_is_its_own_frame() -> None:
    sink = ListSink()
    assert await _frames_after_spaced_deltas(_Wide(sink, interval=INTERVAL, lag=lambda: 0.0), sink) == 6


async def test_a_lagging_loop_merges_what_would_have_been_separate_frames() -> None:
    sink = ListSink()
    # A lag of 100 s widens the window past the test: the first delta at once, the rest as one.
    assert await _frames_after_spaced_deltas(_Wide(sink, interval=INTERVAL, lag=lambda: 100.0), sink) == 2


def test_the_widened_window_is_capped() -> None:
    coalescer = Coalescer(ListSink(), interval=INTERVAL, lag=lambda: 100.0)
    assert coalescer.interval == Coalescer.MAX_INTERVAL
    busy = Coalescer(ListSink(), interval=INTERVAL, streaming=lambda: 10_000)
    assert busy.interval == Coalescer.MAX_INTERVAL


def test_the_window_widens_with_the_replies_the_process_streams() -> None:
    def window(streaming: int) -> float:
        return Coalescer(ListSink(), interval=0.05, streaming=lambda: streaming).interval

    # Up to 25 replies at once each keep the base window (500 frames a second between them).
    assert window(1) == window(25) == 0.05
    assert window(50) == pytest.approx(0.1)
    assert window(60) == pytest.approx(0.12)
    assert window(1000) == 0.15  # and never wider than MAX_INTERVAL


async def test_many_replies_streaming_merge_what_would_have_been_separate_frames() -> None:
    sink = ListSink()
    crowded = _Wide(sink, interval=INTERVAL, streaming=lambda: 10**9)
    assert await _frames_after_spaced_deltas(crowded, sink) == 2


# --- Frames encoded once ------------------------------------------------------------------------
async def test_replayed_frames_carry_their_text_encoded_once(buffer: StreamBuffer) -> None:
    import json

    message_id = new_id()
    await buffer.open(message_id)
    await buffer.append(message_id, {"type": "delta", "text": 'Olá "quoted"'})
    (frame,) = await buffer.replay(message_id)
    expected = {"type": "delta", "text": 'Olá "quoted"', "message_id": message_id, "seq": 1}
    assert json.loads(frame.text) == expected
    assert dict(frame) == json.loads(frame.text)
