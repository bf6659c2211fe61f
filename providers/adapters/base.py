"""What every adapter shares: timeouts on the stream and the last-resort error mapping."""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Iterator

import httpx2

from providers.contract import (
    ChatRequest,
    ChatResult,
    Endpoint,
    ErrorCode,
    Event,
    ProviderError,
    ReasoningDelta,
    TextDelta,
    Timeouts,
    collect,
)

logger = logging.getLogger(__name__)


def call_timeout(timeouts: Timeouts) -> httpx2.Timeout:
    """HTTP timeouts for a call answered at once (models, an image): the read timeout is the
    whole wait for the answer, never shorter than the stream limits."""
    read = max(timeouts.first_token, timeouts.idle) + timeouts.connect
    return httpx2.Timeout(connect=timeouts.connect, read=read, write=read, pool=timeouts.connect)


def stream_timeout(timeouts: Timeouts) -> httpx2.Timeout:
    """HTTP timeouts for a streamed call, with no read timeout: the stream's first-token and idle
    timers (`Adapter.stream`) are its limits, and an HTTP read timeout would arm and cancel a
    timer around every read of the body (a twentieth of a streamed token's CPU)."""
    backstop = max(timeouts.first_token, timeouts.idle) + timeouts.connect
    return httpx2.Timeout(connect=timeouts.connect, read=None, write=backstop, pool=timeouts.connect)


def merged_deltas(events: Iterable[Event]) -> Iterator[Event]:
    """`events` (one read's) with each run of consecutive text deltas, or of reasoning deltas,
    as one delta: a read that brings several tokens then costs the reply's path one pass, not
    one per token. Order is kept; an error raised by `events` comes after the text before it."""
    run: list[TextDelta | ReasoningDelta] = []  # the deltas of one kind not yet passed on
    try:
        for event in events:
            if type(event) is TextDelta or type(event) is ReasoningDelta:
                if run and type(run[0]) is not type(event):
                    yield _joined(run)
                    run = []
                run.append(event)
                continue
            if run:
                yield _joined(run)
                run = []
            yield event
    except Exception:
        if run:
            yield _joined(run)
        raise
    if run:
        yield _joined(run)


def _joined(run: list[TextDelta | ReasoningDelta]) -> TextDelta | ReasoningDelta:
    return run[0] if len(run) == 1 else type(run[0])("".join(delta.text for delta in run))


class Adapter(ABC):
    """Subclasses implement `_stream` (vendor events → contract events, SDK errors →
    ProviderError) and `list_models`. `stream` adds what no vendor should have to: the
    first-token and idle timeouts, and a ProviderError for anything an adapter let through."""

    protocol: str

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    @abstractmethod
    def _stream(self, request: ChatRequest) -> AsyncIterator[Event]: ...

    @abstractmethod
    async def list_models(self) -> list[str]:
        """The provider-side ids of the models this endpoint serves."""

    async def stream(self, request: ChatRequest) -> AsyncIterator[Event]:
        events = self._stream(request)
        deadline = _Deadline(asyncio.get_running_loop())
        timeout = self.endpoint.timeouts.first_token
        try:
            while True:
                # Only the wait for the next event is timed, never the consumer's work between.
                deadline.start(timeout)
                try:
                    event = await anext(events)
                except StopAsyncIteration:
                    deadline.stop()
                    return
                except BaseException as error:
                    failure = self._failure(error, timed_out=deadline.stop())
                    if failure is error:
                        raise
                    raise failure from None
                deadline.stop()
                yield event
                timeout = self.endpoint.timeouts.idle
        finally:
            deadline.close()
            close = getattr(events, "aclose", None)
            if close is not None:
                await close()

    def _failure(self, error: BaseException, *, timed_out: bool) -> BaseException:
        """What a failed wait for the next event raises: a ProviderError, or a cancellation (or
        an interpreter exit) as it came."""
        if isinstance(error, ProviderError):
            return error
        if (timed_out and isinstance(error, asyncio.CancelledError)) or isinstance(error, TimeoutError):
            return ProviderError(ErrorCode.TIMEOUT, provider=self.endpoint.provider)
        if not isinstance(error, Exception):
            return error
        # The contract: adapters raise ProviderError only. Only the type is logged: an SDK's
        # message may quote the request.
        logger.warning("%s adapter let %s through", self.protocol, type(error).__name__)
        return ProviderError(ErrorCode.PROVIDER_UNAVAILABLE, provider=self.endpoint.provider)

    async def complete(self, request: ChatRequest) -> ChatResult:
        return await collect(self.stream(request))


class _Deadline:
    """The first-token and idle limits of one stream, kept by one timer that is moved lazily.

    `asyncio.timeout` around every wait scheduled and cancelled a timer per token, a fifth of a
    token's CPU through an adapter. Here a wait only notes when it is due; the timer, set once,
    checks when it fires whether a wait is still on and past due, and if the wait is not yet due
    (events came meanwhile) it sets itself again for the new due time. It cancels the task the
    way `asyncio.timeout` does, so a cancellation from elsewhere is told apart and passed on.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.due = 0.0
        self.task: asyncio.Task[object] | None = None  # the waiting task; None between waits
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = 0.0
        self.expired = False  # the timer cancelled the task
        self.cancelling = 0  # the task's cancellation requests before the timer's own

    def start(self, seconds: float) -> None:
        """A wait for an event begins; it may last `seconds`."""
        self.due = self.loop.time() + seconds
        self.task = asyncio.current_task()
        if self.timer is None or self.timer_at > self.due:  # the limit may shrink (first token → idle)
            self._set_timer()

    def stop(self) -> bool:
        """The wait ended: whether it was cut short by this limit (and by nothing else)."""
        task, self.task = self.task, None
        if not self.expired or task is None:
            return False
        self.expired = False
        return task.uncancel() <= self.cancelling

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.task = None

    def _set_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer_at = self.due
        self.timer = self.loop.call_at(self.due, self._fire)

    def _fire(self) -> None:
        self.timer = None
        task = self.task
        if task is None or task.done():
            return  # no wait is on: the next one sets the timer again
        if self.loop.time() < self.due:
            self._set_timer()
            return
        self.cancelling = task.cancelling()
        self.expired = True
        task.cancel()
