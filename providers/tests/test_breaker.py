from __future__ import annotations

from django_redis import get_redis_connection

from providers.breaker import (
    KEY_PREFIX,
    BreakerPass,
    BreakerPolicy,
    BreakerState,
    breaker_allows,
    breaker_record_failure,
    breaker_record_success,
    breaker_state,
)

POLICY = BreakerPolicy(threshold=3, open_seconds=30)


def test_a_closed_breaker_lets_calls_through() -> None:
    assert breaker_allows("acme", POLICY)
    assert breaker_state("acme") == BreakerState.CLOSED


def test_the_check_says_whether_a_success_has_a_record_to_clear() -> None:
    assert breaker_allows("acme", POLICY) is BreakerPass.CLEAN
    breaker_record_failure("acme", POLICY)
    assert breaker_allows("acme", POLICY) is BreakerPass.ALLOWED
    breaker_record_success("acme")
    assert breaker_allows("acme", POLICY) is BreakerPass.CLEAN


def test_failures_below_the_threshold_keep_it_closed() -> None:
    breaker_record_failure("acme", POLICY)
    assert breaker_record_failure("acme", POLICY) == BreakerState.CLOSED
    assert breaker_allows("acme", POLICY)


def test_the_threshold_in_a_row_opens_it_and_calls_are_refused() -> None:
    for _ in range(3):
        breaker_record_failure("acme", POLICY)
    assert breaker_state("acme") == BreakerState.OPEN
    assert not breaker_allows("acme", POLICY)


def test_a_success_resets_the_count_of_failures() -> None:
    breaker_record_failure("acme", POLICY)
    breaker_record_failure("acme", POLICY)
    breaker_record_success("acme")
    breaker_record_failure("acme", POLICY)
    assert breaker_state("acme") == BreakerState.CLOSED


def _open(provider: str) -> None:
    for _ in range(POLICY.threshold):
        breaker_record_failure(provider, POLICY)


def _let_the_open_period_pass(provider: str) -> None:
    """Move the breaker's clock marks back, instead of sleeping through the period."""
    connection = get_redis_connection("default")
    for mark in ("opened_at", "probe_at"):
        value = connection.hget(KEY_PREFIX + provider, mark)
        if value is not None:
            connection.hset(KEY_PREFIX + provider, mark, str(float(value) - POLICY.open_seconds - 1))


def test_after_the_open_period_one_probe_goes_through_and_others_wait() -> None:
    _open("acme")
    _let_the_open_period_pass("acme")
    assert breaker_allows("acme", POLICY)
    assert breaker_state("acme") == BreakerState.HALF_OPEN
    assert not breaker_allows("acme", POLICY)


def test_a_successful_probe_closes_it() -> None:
    _open("acme")
    _let_the_open_period_pass("acme")
    assert breaker_allows("acme", POLICY)
    breaker_record_success("acme")
    assert breaker_state("acme") == BreakerState.CLOSED
    assert breaker_allows("acme", POLICY)


def test_a_failed_probe_opens_it_again() -> None:
    _open("acme")
    _let_the_open_period_pass("acme")
    breaker_allows("acme", POLICY)
    assert breaker_record_failure("acme", POLICY) == BreakerState.OPEN
    assert not breaker_allows("acme", POLICY)


def test_a_probe_that_never_reported_frees_the_slot_after_the_open_period() -> None:
    _open("acme")
    _let_the_open_period_pass("acme")
    assert breaker_allows("acme", POLICY)
    assert not breaker_allows("acme", POLICY)
    _let_the_open_period_pass("acme")
    assert breaker_allows("acme", POLICY)


def test_breakers_are_per_provider() -> None:
    _open("acme")
    assert breaker_allows("other", POLICY)


def test_the_state_lives_in_redis_for_every_process() -> None:
    _open("acme")
    assert get_redis_connection("default").hget(KEY_PREFIX + "acme", "state") == b"open"


async def test_the_check_from_the_event_loop_reads_the_same_breaker() -> None:
    from providers.breaker import breaker_check

    assert await breaker_check("acme", POLICY) is BreakerPass.CLEAN
    breaker_record_failure("acme", POLICY)
    assert await breaker_check("acme", POLICY) is BreakerPass.ALLOWED
    for _ in range(3):
        breaker_record_failure("acme", POLICY)
    assert await breaker_check("acme", POLICY) is BreakerPass.REFUSED


async def test_the_check_works_after_redis_forgot_its_scripts() -> None:
    from providers.breaker import breaker_check

    get_redis_connection("default").script_flush()
    assert await breaker_check("acme", POLICY) is BreakerPass.CLEAN
