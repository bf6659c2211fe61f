"""`Adapter.stream`: the first-token and idle limits, and the last-resort error mapping, around a
scripted adapter (no server). The limits are short; no test reads the clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from providers.adapters.base import Adapter, merged_deltas
from providers.contract import (
    ChatMessage,
    ChatRequest,
    Endpoint,
    ErrorCode,
    Event,
    Finish,
    FinishReason,
    ProviderError,
    ReasoningDelta,
    TextDelta,
    Timeouts,
    ToolCallStart,
)

REQUEST = ChatRequest(model="m", messages=(ChatMessage.text("user", "Hi"),))


class Pause(float):
    """A script step: the adapter waits this many seconds for its vendor."""


class Scripted(Adapter):
    """Yields its script's events, waits its pauses, raises its exceptions; notes when closed."""

    protocol = "scripted"

    def __init__(self, *script: Event | Pause | BaseException, first_token: float = 5.0, idle: float = 5.0) -> None:
        super().__init__(Endpoint(timeouts=Timeouts(first_token=first_token, idle=idle), provider="scripted"))
        self.script = script
        self.closed = False

    async def _stream(self, request: ChatRequest) -> AsyncIterator[Event]:
        try:
            for step in self.script:
                if isinstance(step, Pause):
                    await asyncio.sleep(step)
                elif isinstance(step, BaseException):
                    raise step
                else:
                    yield step
        finally:
            self.closed = True

    async def list_models(self) -> list[str]:
        return []


async def error_of(adapter: Adapter, seen: list[Event]) -> ProviderError:
    with pytest.raises(ProviderError) as raised:
        async for event in adapter.stream(REQUEST):
            seen.append(event)
    return raised.value


A, B, C = TextDelta("a"), TextDelta("b"), TextDelta("c")


async def test_events_pass_through_in_order_and_the_adapter_is_closed() -> None:
    adapter = Scripted(A, B, C)
    assert [event async for event in adapter.stream(REQUEST)] == [A, B, C]
    assert adapter.closed


async def test_no_first_event_within_the_first_token_limit_is_a_timeout() -> None:
    adapter = Scripted(Pause(30), A, first_token=0.05)
    seen: list[Event] = []
    error = await error_of(adapter, seen)
    assert (seen, error.code, error.provider) == ([], ErrorCode.TIMEOUT, "scripted")
    assert adapter.closed
    assert asyncio.current_task().cancelling() == 0  # the limit's own cancellation was taken back


async def test_a_gap_longer_than_the_idle_limit_is_a_timeout_after_the_events_before_it() -> None:
    adapter = Scripted(A, B, Pause(30), C, idle=0.05)
    seen: list[Event] = []
    error = await error_of(adapter, seen)
    assert (seen, error.code) == ([A, B], ErrorCode.TIMEOUT)
    assert asyncio.current_task().cancelling() == 0


async def test_the_idle_limit_applies_from_the_first_event_even_when_the_first_token_limit_is_longer() -> None:
    # With the first token's limit kept after the first event, the pause would end and C come.
    adapter = Scripted(A, Pause(3), C, first_token=60, idle=0.05)
    seen: list[Event] = []
    error = await error_of(adapter, seen)
    assert (seen, error.code) == ([A], ErrorCode.TIMEOUT)


async def test_a_gap_after_events_that_moved_the_limit_on_still_times_out() -> None:
    # The limit set at the start (0.5 s) passes during the long pause, but B moved it on: it must
    # be set again for then, not forgotten (the pause would end and C come).
    adapter = Scripted(A, Pause(0.2), B, Pause(5), C, first_token=0.5, idle=0.5)
    seen: list[Event] = []
    error = await error_of(adapter, seen)
    assert (seen, error.code) == ([A, B], ErrorCode.TIMEOUT)


async def test_each_wait_has_its_own_limit_however_long_the_whole_stream() -> None:
    # Ten waits of 0.05 s last longer than either limit together, none alone.
    steps = [step for event in [A] * 10 for step in (Pause(0.05), event)]
    adapter = Scripted(*steps, first_token=0.3, idle=0.3)
    assert len([event async for event in adapter.stream(REQUEST)]) == 10


async def test_the_consumers_own_time_between_events_is_not_counted() -> None:
    adapter = Scripted(A, B, C, first_token=0.05, idle=0.05)
    seen = []
    async for event in adapter.stream(REQUEST):
        seen.append(event)
        await asyncio.sleep(0.2)  # the consumer is slow (a database write, a full socket)
    assert seen == [A, B, C]


async def test_a_cancellation_from_elsewhere_is_passed_on_as_a_cancellation() -> None:
    adapter = Scripted(A, Pause(30), B, first_token=60, idle=60)
    seen: list[Event] = []
    started = asyncio.Event()

    async def consume() -> None:
        async for event in adapter.stream(REQUEST):
            seen.append(event)
            started.set()

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == [A]
    assert adapter.closed


async def test_a_callers_own_timeout_around_the_stream_stays_the_callers() -> None:
    adapter = Scripted(A, Pause(30), B, first_token=60, idle=60)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            async for _ in adapter.stream(REQUEST):
                pass
    assert adapter.closed


@pytest.mark.parametrize(
    ("raised", "code"),
    [
        (ProviderError(ErrorCode.RATE_LIMITED, retry_after=3), ErrorCode.RATE_LIMITED),
        (TimeoutError(), ErrorCode.TIMEOUT),
        (KeyError("choices"), ErrorCode.PROVIDER_UNAVAILABLE),
    ],
)
async def test_what_an_adapter_raises_becomes_a_provider_error(raised: Exception, code: ErrorCode) -> None:
    seen: list[Event] = []
    error = await error_of(Scripted(A, raised), seen)
    assert (seen, error.code) == ([A], code)
    if isinstance(raised, ProviderError):
        assert error is raised


async def test_a_consumer_that_stops_early_closes_the_adapter() -> None:
    adapter = Scripted(A, B, C)
    stream = adapter.stream(REQUEST)
    assert await anext(stream) == A
    await stream.aclose()
    assert adapter.closed


# --- One read's deltas as runs ----------------------------------------------------------------
def test_a_reads_consecutive_deltas_of_one_kind_become_one_and_order_is_kept() -> None:
    read = [
        ReasoningDelta("Think"),
        ReasoningDelta("ing."),
        TextDelta("Hel"),
        TextDelta("lo"),
        ToolCallStart(0, "call_1", "lookup"),
        TextDelta("!"),
        Finish(FinishReason.STOP),
    ]
    assert list(merged_deltas(read)) == [
        ReasoningDelta("Thinking."),
        TextDelta("Hello"),
        ToolCallStart(0, "call_1", "lookup"),
        TextDelta("!"),
        Finish(FinishReason.STOP),
    ]


def test_a_lone_delta_is_passed_on_as_it_is() -> None:
    delta = TextDelta("one")
    (passed,) = merged_deltas([delta])
    assert passed is delta


def test_an_error_in_a_read_comes_after_the_text_before_it() -> None:
    def read() -> Iterator[Event]:
        yield TextDelta("kept ")
        yield TextDelta("text")
        raise ProviderError(ErrorCode.PROVIDER_UNAVAILABLE)

    seen: list[Event] = []
    with pytest.raises(ProviderError):
        for event in merged_deltas(read()):
            seen.append(event)
    assert seen == [TextDelta("kept text")]
