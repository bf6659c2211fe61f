"""Calling a route: retries before the first token, failover by priority, a breaker per provider.

Before the first event, a retryable error is retried on the same provider with exponential
backoff and jitter (honouring Retry-After), then the next provider by priority is tried. After
the first event nothing is retried: the error reaches the caller, which keeps the partial output.
Errors about the request itself (bad request, context too long, content filtered) would fail on
every provider alike, so they are raised at once.

The whole wait for the first event (every attempt, backoff and failover) has one budget
(`RetryPolicy.first_token_budget`). Each attempt may use at most its fair share of what is left,
split among the providers not yet tried (this one included), and never more than the endpoint's
own first-token timeout: a provider that stalls leaves the next one the rest of the budget. A
first-token timeout is never retried on the provider that stalled: it fails over at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import random
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings

from providers.adapters import adapter_for
from providers.breaker import BreakerPass, BreakerPolicy, breaker_check, breaker_record_failure, breaker_record_success
from providers.contract import ChatRequest, Endpoint, ErrorCode, Event, ProviderError
from providers.routing import Candidate, Route

T = TypeVar("T")

# Errors that say nothing about the other providers: try the next one.
FAILOVER_CODES = {
    ErrorCode.RATE_LIMITED,
    ErrorCode.PROVIDER_UNAVAILABLE,
    ErrorCode.PROVIDER_DISCONNECTED,
    ErrorCode.TIMEOUT,
    ErrorCode.AUTHENTICATION,
    ErrorCode.PERMISSION,
    ErrorCode.MODEL_NOT_FOUND,
}
# Errors that count against a provider's health (not the key's or the request's fault).
BREAKER_CODES = {ErrorCode.PROVIDER_UNAVAILABLE, ErrorCode.PROVIDER_DISCONNECTED, ErrorCode.TIMEOUT}
# Retryable errors not retried on the same provider: one that stalled is likely to stall again,
# and the first-token budget is better spent on the next provider.
FAILOVER_AT_ONCE = {ErrorCode.TIMEOUT}
MAX_BACKOFF_SECONDS = 8.0
# A Retry-After longer than this is not waited for: the next provider is tried instead.
MAX_RETRY_AFTER_SECONDS = 10.0


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int
    base_delay: float
    # Seconds from the start of a call to its first event, over every attempt and provider.
    first_token_budget: float = math.inf

    @classmethod
    def from_settings(cls) -> RetryPolicy:
        return cls(
            max_retries=settings.PROVIDER_MAX_RETRIES,
            base_delay=settings.PROVIDER_RETRY_BASE_DELAY,
            first_token_budget=settings.FIRST_TOKEN_BUDGET_SECONDS,
        )

    def delay(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to wait before retry `attempt` (0-based), or None: do not retry here."""
        if retry_after is not None:
            return retry_after if retry_after <= MAX_RETRY_AFTER_SECONDS else None
        backoff = min(MAX_BACKOFF_SECONDS, self.base_delay * 2**attempt)
        return backoff * random.uniform(0.5, 1.5)  # jitter, not security


async def route_release(route: Route) -> None:
    """Close the HTTP clients the route brought (a user's endpoint's SSRF-guarded client)."""
    for candidate in route.candidates:
        if candidate.endpoint.http_client is not None:
            await candidate.endpoint.http_client.aclose()


class RoutedStream:
    """The events of one generation from the first provider that answers.

    `served_by` names that provider once the first event arrived; `attempts` lists
    (provider, error code) of every failed try, for logs and usage records."""

    def __init__(
        self,
        route: Route,
        request: ChatRequest,
        *,
        retry: RetryPolicy | None = None,
        breaker: BreakerPolicy | None = None,
        sleep: Callable[[float], object] = asyncio.sleep,
        release_route: bool = True,
    ) -> None:
        self.route = route
        # False when the caller streams from the route again (a tool loop) and releases it itself.
        self.release_route = release_route
        self.request = request
        self.retry = retry or RetryPolicy.from_settings()
        self.breaker = breaker or BreakerPolicy.from_settings()
        self.served_by: Candidate | None = None
        self.attempts: list[tuple[str, ErrorCode]] = []
        self._sleep = sleep
        self._budget_ends = math.inf  # the loop time the first event is due by
        self._untried = len(route.candidates)  # providers not yet tried, the current one included

    def __aiter__(self) -> AsyncGenerator[Event, None]:
        # A generator, so a caller that stops reading early can close it (and the HTTP response).
        return self._events()

    async def _events(self) -> AsyncGenerator[Event, None]:
        try:
            async for event in self._first_answering():
                yield event
        finally:
            if self.release_route:
                await route_release(self.route)

    async def _first_answering(self) -> AsyncIterator[Event]:
        last_error: ProviderError | None = None
        self._budget_ends = asyncio.get_running_loop().time() + self.retry.first_token_budget
        for position, candidate in enumerate(self.route.candidates):
            self._untried = len(self.route.candidates) - position
            passed = await breaker_check(candidate.provider, self.breaker)
            if not passed:
                self.attempts.append((candidate.provider, ErrorCode.PROVIDER_UNAVAILABLE))
                last_error = last_error or ProviderError(ErrorCode.PROVIDER_UNAVAILABLE)
                continue
            if self._budget_left() <= 0:
                break  # the budget went on backoff and failures: no provider gets a try now
            try:
                async for event in self._from(candidate, passed):
                    yield event
                return
            except ProviderError as error:
                if self.served_by is not None or error.code not in FAILOVER_CODES:
                    raise
                last_error = error
        raise last_error or ProviderError(ErrorCode.TIMEOUT)

    def _budget_left(self) -> float:
        return self._budget_ends - asyncio.get_running_loop().time()

    def _endpoint(self, candidate: Candidate) -> Endpoint:
        """The candidate's endpoint with its first-token timeout cut to this attempt's share of
        the budget (no endless budget changes nothing)."""
        share = self._budget_left() / self._untried
        timeouts = candidate.endpoint.timeouts
        if share >= timeouts.first_token:
            return candidate.endpoint
        return dataclasses.replace(candidate.endpoint, timeouts=dataclasses.replace(timeouts, first_token=share))

    async def _from(self, candidate: Candidate, passed: BreakerPass) -> AsyncIterator[Event]:
        request = dataclasses.replace(self.request, model=candidate.provider_model_id)
        attempt = 0
        while True:
            adapter = adapter_for(candidate.protocol, self._endpoint(candidate))
            try:
                async for event in self._attempt(adapter, request, candidate):
                    if self.served_by is None:
                        self.served_by = candidate
                    yield event
            except ProviderError as error:
                self.attempts.append((candidate.provider, error.code))
                if error.code in BREAKER_CODES:
                    breaker_record_failure(candidate.provider, self.breaker)
                if (
                    self.served_by is not None
                    or not error.retryable
                    or error.code in FAILOVER_AT_ONCE
                    or attempt >= self.retry.max_retries
                ):
                    raise
                wait = self.retry.delay(attempt, error.retry_after)
                if wait is None or wait >= self._budget_left():
                    raise
                attempt += 1
                await self._sleep(wait)
                continue
            if passed is not BreakerPass.CLEAN or attempt:
                breaker_record_success(candidate.provider)
            return

    def _attempt(self, adapter: Any, request: ChatRequest, candidate: Candidate) -> AsyncIterator[Any]:
        """One try on one provider: its events."""
        return adapter.stream(request)


class _RoutedCall(RoutedStream):
    """A call answered at once (an image), tried as a stream of one event: the same retries,
    failover and breaker as a generation."""

    def __init__(self, route: Route, call: Callable[[Any, Candidate], Awaitable[Any]], **options: Any) -> None:
        super().__init__(route, ChatRequest(model="", messages=()), release_route=False, **options)
        self.call = call

    async def _attempt(self, adapter: Any, request: ChatRequest, candidate: Candidate) -> AsyncIterator[Any]:
        yield await self.call(adapter, candidate)


async def routed_call(
    route: Route, call: Callable[[Any, Candidate], Awaitable[T]], **options: Any
) -> tuple[T, Candidate]:
    """`call(adapter, candidate)` on the route's providers in order until one answers, with
    retries, failover and the breaker as for a stream; its answer and the provider that gave it.
    Raises the last provider's error (PROVIDER_UNAVAILABLE when none could be tried). The route
    is not released: it belongs to the caller."""
    routed = _RoutedCall(route, call, **options)
    answers = [answer async for answer in routed]  # read to the end: the success is recorded there
    if not answers or routed.served_by is None:
        raise ProviderError(ErrorCode.PROVIDER_UNAVAILABLE)
    return answers[0], routed.served_by
