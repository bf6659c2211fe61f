"""Retries, failover and the breaker, through the real OpenAI SDK against two fake servers."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from decimal import Decimal

import pytest

from providers.breaker import BreakerPolicy, BreakerState, breaker_state
from providers.contract import (
    ChatMessage,
    ChatRequest,
    Endpoint,
    ErrorCode,
    Event,
    ProviderError,
    TextDelta,
    Timeouts,
)
from providers.resilience import RetryPolicy, RoutedStream
from providers.routing import Candidate, Route
from providers.testing.base import Count, Fail, Say, reply
from providers.testing.openai_server import OpenAIServer
from providers.tests.test_breaker import _let_the_open_period_pass

RETRY = RetryPolicy(max_retries=2, base_delay=0.01)
BREAKER = BreakerPolicy(threshold=3, open_seconds=30)
REQUEST = ChatRequest(model="(per provider)", messages=(ChatMessage.text("user", "Hello"),))


@pytest.fixture
def primary() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def backup() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server  # type: ignore[misc]


def _candidate(name: str, server: OpenAIServer) -> Candidate:
    endpoint = Endpoint(
        base_url=f"{server.url}/v1",
        api_key="sk-test",
        timeouts=Timeouts(connect=2, first_token=5, idle=5),
        provider=name,
    )
    return Candidate(provider=name, protocol="openai", provider_model_id=f"{name}-model", endpoint=endpoint)


def _route(*candidates: Candidate) -> Route:
    return Route(
        model_id="acme:model",
        display_name="Model",
        supports_tools=True,
        supports_reasoning=False,
        input_modalities=("text",),
        context_window=100_000,
        max_output_tokens=1000,
        input_price_per_mtok=Decimal(0),
        output_price_per_mtok=Decimal(0),
        byok=False,
        candidates=candidates,
    )


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def _stream(route: Route, sleeps: Sleeps | None = None) -> RoutedStream:
    return RoutedStream(route, REQUEST, retry=RETRY, breaker=BREAKER, sleep=sleeps or Sleeps())


async def _text(stream: RoutedStream) -> str:
    return "".join([event.text async for event in stream if isinstance(event, TextDelta)])


async def test_the_first_healthy_provider_serves_with_its_own_model_id(
    primary: OpenAIServer, backup: OpenAIServer
) -> None:
    stream = _stream(_route(_candidate("primary", primary), _candidate("backup", backup)))
    assert await _text(stream) == "Hello from the fake server."
    assert stream.served_by is not None and stream.served_by.provider == "primary"
    assert primary.requests[0].body["model"] == "primary-model"
    assert backup.requests == []


async def test_a_failing_provider_is_retried_with_backoff_then_the_next_one_serves(
    primary: OpenAIServer, backup: OpenAIServer
) -> None:
    primary.script(Fail(500), Fail(500), Fail(500))
    sleeps = Sleeps()
    stream = _stream(_route(_candidate("primary", primary), _candidate("backup", backup)), sleeps)
    assert await _text(stream) == "Hello from the fake server."
    assert len(primary.requests) == RETRY.max_retries + 1
    assert stream.served_by.provider == "backup"  # type: ignore[union-attr]
    assert stream.attempts == [("primary", ErrorCode.PROVIDER_UNAVAILABLE)] * 3
    assert len(sleeps.waits) == 2
    assert 0.005 <= sleeps.waits[0] <= 0.015 and 0.01 <= sleeps.waits[1] <= 0.03  # doubled, with jitter


async def test_a_rate_limit_waits_for_retry_after_on_the_same_provider(
    primary: OpenAIServer, backup: OpenAIServer
) -> None:
    primary.script(Fail(429, retry_after=0.25))
    sleeps = Sleeps()
    stream = _stream(_route(_candidate("primary", primary), _candidate("backup", backup)), sleeps)
    assert await _text(stream) == "Hello from the fake server."
    assert sleeps.waits == [0.25]
    assert stream.served_by.provider == "primary"  # type: ignore[union-attr]
    assert backup.requests == []


async def test_a_retry_after_too_long_to_wait_fails_over_at_once(primary: OpenAIServer, backup: OpenAIServer) -> None:
    primary.script(Fail(429, retry_after=120))
    sleeps = Sleeps()
    stream = _stream(_route(_candidate("primary", primary), _candidate("backup", backup)), sleeps)
    await _text(stream)
    assert sleeps.waits == []
    assert len(primary.requests) == 1
    assert stream.served_by.provider == "backup"  # type: ignore[union-attr]


async def test_a_rejected_key_fails_over_without_retrying(primary: OpenAIServer, backup: OpenAIServer) -> None:
    primary.script(Fail(401))
    stream = _stream(_route(_candidate("primary", primary), _candidate("backup", backup)))
    await _text(stream)
    assert len(primary.requests) == 1
    assert stream.served_by.provider == "backup"  # type: ignore[union-attr]


async def test_a_bad_request_is_not_sent_to_other_providers(primary: OpenAIServer, backup: OpenAIServer) -> None:
    primary.script(Fail(400, "bad things"))
    with pytest.raises(ProviderError) as caught:
        await _text(_stream(_route(_candidate("primary", primary), _candidate("backup", backup))))
    assert caught.value.code == ErrorCode.BAD_REQUEST
    assert backup.requests == []


async def test_after_the_first_token_an_error_is_reported_and_nothing_is_retried(
    primary: OpenAIServer, backup: OpenAIServer
) -> None:
    primary.script(reply(Say("Partial "), Say("answer "), Say("never finished"), Count(1, 3), drop_after=2))
    stream = _stream(_route(_candidate("primary", primary), _candidate("backup", backup)))
    received: list[Event] = []
    with pytest.raises(ProviderError) as caught:
        async for event in stream:
            received.append(event)
    assert caught.value.code == ErrorCode.PROVIDER_DISCONNECTED
    assert "".join(event.text for event in received if isinstance(event, TextDelta)) == "Partial answer "
    assert len(primary.requests) == 1
    assert backup.requests == []


async def test_when_every_provider_fails_the_last_error_is_raised(primary: OpenAIServer, backup: OpenAIServer) -> None:
    primary.script(Fail(401))
    backup.script(Fail(404))
    with pytest.raises(ProviderError) as caught:
        await _text(_stream(_route(_candidate("primary", primary), _candidate("backup", backup))))
    assert caught.value.code == ErrorCode.MODEL_NOT_FOUND


async def test_the_breaker_opens_after_repeated_failures_and_the_provider_is_skipped(
    primary: OpenAIServer, backup: OpenAIServer
) -> None:
    route = _route(_candidate("primary", primary), _candidate("backup", backup))
    primary.script(Fail(503), Fail(503), Fail(503))
    await _text(_stream(route))
    assert breaker_state("primary") == BreakerState.OPEN

    served = _stream(route)
    await _text(served)
    assert len(primary.requests) == 3  # not called while open
    assert served.served_by.provider == "backup"  # type: ignore[union-attr]


async def test_a_half_open_breaker_lets_one_probe_through_and_a_success_closes_it(
    primary: OpenAIServer, backup: OpenAIServer
) -> None:
    route = _route(_candidate("primary", primary), _candidate("backup", backup))
    primary.script(Fail(503), Fail(503), Fail(503))
    await _text(_stream(route))
    _let_the_open_period_pass("primary")

    probe = _stream(route)
    await _text(probe)
    assert probe.served_by.provider == "primary"  # type: ignore[union-attr]
    assert breaker_state("primary") == BreakerState.CLOSED


async def test_the_guarded_client_of_a_users_endpoint_is_closed_when_the_stream_ends(primary: OpenAIServer) -> None:
    from providers.contract import Timeouts as T
    from providers.urlsafety import guarded_http_client

    client = guarded_http_client(allow_private=True, timeouts=T())
    endpoint = Endpoint(base_url=f"{primary.url}/v1", api_key="sk-user", http_client=client, provider="custom-1")
    route = _route(Candidate(provider="custom-1", protocol="openai", provider_model_id="llama", endpoint=endpoint))
    assert await _text(_stream(route)) == "Hello from the fake server."
    assert client.is_closed


# --- Every vendor's adapter through failover and the breaker ------------------------------------
VENDORS = {
    "openai": ("providers.testing.openai_server.OpenAIServer", "/v1"),
    "anthropic": ("providers.testing.anthropic_server.AnthropicServer", ""),
    "google": ("providers.testing.gemini_server.GeminiServer", ""),
}


@pytest.fixture(params=sorted(VENDORS))
def vendor(request: pytest.FixtureRequest) -> Iterator[tuple[str, object, object]]:
    """(protocol, failing server, healthy server) of one vendor's fake."""
    from django.utils.module_loading import import_string

    server_class = import_string(VENDORS[request.param][0])
    with server_class() as failing, server_class() as healthy:
        yield request.param, failing, healthy


def _vendor_candidate(protocol: str, name: str, server: object) -> Candidate:
    endpoint = Endpoint(
        base_url=f"{server.url}{VENDORS[protocol][1]}",  # type: ignore[attr-defined]
        api_key="test-key",
        timeouts=Timeouts(connect=2, first_token=5, idle=5),
        provider=name,
    )
    return Candidate(provider=name, protocol=protocol, provider_model_id=f"{name}-model", endpoint=endpoint)


async def test_each_vendors_adapter_fails_over_to_the_second_provider(vendor: tuple[str, object, object]) -> None:
    protocol, failing, healthy = vendor
    failing.script(Fail(500), Fail(500), Fail(500))  # type: ignore[attr-defined]
    healthy.script(reply(Say("from the backup"), Count(2, 3)))  # type: ignore[attr-defined]
    route = _route(_vendor_candidate(protocol, "first", failing), _vendor_candidate(protocol, "second", healthy))
    stream = _stream(route)
    assert await _text(stream) == "from the backup"
    assert stream.served_by.provider == "second"  # type: ignore[union-attr]
    assert len(failing.requests) == RETRY.max_retries + 1  # type: ignore[attr-defined]


async def test_each_vendors_failures_open_the_breaker_and_a_good_probe_closes_it(
    vendor: tuple[str, object, object],
) -> None:
    protocol, failing, healthy = vendor
    route = _route(_vendor_candidate(protocol, "first", failing), _vendor_candidate(protocol, "second", healthy))
    failing.script(Fail(503), Fail(503), Fail(503))  # type: ignore[attr-defined]
    await _text(_stream(route))
    assert breaker_state("first") == BreakerState.OPEN

    await _text(_stream(route))
    assert len(failing.requests) == 3  # type: ignore[attr-defined]

    _let_the_open_period_pass("first")
    probe = _stream(route)
    await _text(probe)
    assert probe.served_by.provider == "first"  # type: ignore[union-attr]
    assert breaker_state("first") == BreakerState.CLOSED


# --- One budget before the first token ----------------------------------------------------------
def _budget(seconds: float, *, base_delay: float = 0.01) -> RetryPolicy:
    return RetryPolicy(max_retries=2, base_delay=base_delay, first_token_budget=seconds)


def _patient(candidate: Candidate) -> Candidate:
    """The candidate with a ten-minute first-token timeout: only the budget can end a stall."""
    endpoint = dataclasses.replace(candidate.endpoint, timeouts=Timeouts(connect=2, first_token=600, idle=600))
    return dataclasses.replace(candidate, endpoint=endpoint)


@pytest.mark.timeout(60)
async def test_a_provider_that_never_sends_a_first_token_fails_over_within_one_budget_and_is_not_retried(
    vendor: tuple[str, object, object],
) -> None:
    protocol, stalling, healthy = vendor
    stalling.fault = "stall-first"  # type: ignore[attr-defined]
    healthy.script(reply(Say("from the backup")))  # type: ignore[attr-defined]
    route = _route(
        _patient(_vendor_candidate(protocol, "first", stalling)),
        _patient(_vendor_candidate(protocol, "second", healthy)),
    )
    sleeps = Sleeps()
    # Each provider's share is 2 s: room for a loaded machine to answer from the second.
    stream = RoutedStream(route, REQUEST, retry=_budget(4.0), breaker=BREAKER, sleep=sleeps)
    assert await _text(stream) == "from the backup"
    assert stream.served_by.provider == "second"  # type: ignore[union-attr]
    assert len(stalling.requests) == 1  # type: ignore[attr-defined]
    assert stream.attempts == [("first", ErrorCode.TIMEOUT)]
    assert sleeps.waits == []


@pytest.mark.timeout(60)
async def test_the_budget_ends_the_wait_for_a_lone_provider_that_stalls(primary: OpenAIServer) -> None:
    primary.fault = "stall-first"
    stream = RoutedStream(
        _route(_patient(_candidate("primary", primary))), REQUEST, retry=_budget(0.5), breaker=BREAKER, sleep=Sleeps()
    )
    with pytest.raises(ProviderError) as caught:
        await _text(stream)
    assert caught.value.code == ErrorCode.TIMEOUT
    assert len(primary.requests) == 1


async def test_a_backoff_longer_than_the_budget_left_is_not_waited_for(
    primary: OpenAIServer, backup: OpenAIServer
) -> None:
    primary.script(Fail(500), Fail(500), Fail(500))
    sleeps = Sleeps()
    route = _route(_candidate("primary", primary), _candidate("backup", backup))
    # The backoff is at least 4 s (8 s capped, times a jitter of 0.5 to 1.5): always past 3 s.
    stream = RoutedStream(route, REQUEST, retry=_budget(3.0, base_delay=30), breaker=BREAKER, sleep=sleeps)
    assert await _text(stream) == "Hello from the fake server."
    assert sleeps.waits == []
    assert len(primary.requests) == 1
    assert stream.served_by.provider == "backup"  # type: ignore[union-attr]


async def test_a_stream_cut_before_its_first_token_is_retried_on_the_same_provider(
    primary: OpenAIServer, backup: OpenAIServer
) -> None:
    primary.script(reply(Say("never sent"), cut_after=0))
    stream = _stream(_route(_candidate("primary", primary), _candidate("backup", backup)))
    assert await _text(stream) == "Hello from the fake server."
    assert stream.served_by.provider == "primary"  # type: ignore[union-attr]
    assert stream.attempts == [("primary", ErrorCode.PROVIDER_DISCONNECTED)]
