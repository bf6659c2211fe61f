from __future__ import annotations

import threading
import time

import pytest
from django_redis import get_redis_connection

from accounts.ratelimit import KEY_PREFIX, BucketDecision, BucketRule, bucket_take


def _take_until_refused(key: str, rule: BucketRule, limit: int = 100) -> tuple[int, BucketDecision]:
    """Take from a bucket until it refuses; the number allowed and the refusal."""
    for allowed in range(limit):
        decision = bucket_take(key=key, rule=rule)
        if not decision.allowed:
            return allowed, decision
    raise AssertionError(f"the bucket never refused in {limit} takes")


def test_per_hour_rules_refill_at_the_hourly_rate() -> None:
    rule = BucketRule.per_hour(burst=10, per_hour=60)

    assert rule.capacity == 10
    assert rule.refill_per_second == pytest.approx(1 / 60)


def test_a_bucket_allows_its_capacity_then_refuses() -> None:
    rule = BucketRule(capacity=5, refill_per_second=0.01)

    allowed, refusal = _take_until_refused("capacity", rule)

    assert allowed == 5
    assert not refusal.allowed
    assert refusal.remaining < 1


def test_remaining_counts_down_as_tokens_are_taken() -> None:
    rule = BucketRule(capacity=3, refill_per_second=0.001)

    remaining = [bucket_take(key="countdown", rule=rule).remaining for _ in range(3)]

    assert remaining == pytest.approx([2, 1, 0], abs=0.01)


def test_a_refusal_says_to_retry_after_about_one_refill_interval() -> None:
    rule = BucketRule(capacity=3, refill_per_second=0.5)

    _, refusal = _take_until_refused("retry", rule)

    assert 1.9 < refusal.retry_after_seconds <= 2.0


def test_a_costly_take_waits_for_the_whole_cost() -> None:
    rule = BucketRule(capacity=2, refill_per_second=1)

    decision = bucket_take(key="costly", rule=rule, cost=5)

    assert not decision.allowed
    assert 2.9 < decision.retry_after_seconds <= 3.0
    assert bucket_take(key="costly", rule=rule, cost=2).allowed


def test_a_bucket_refills_over_time() -> None:
    rule = BucketRule(capacity=2, refill_per_second=20)
    _, refusal = _take_until_refused("refill", rule)
    assert refusal.retry_after_seconds <= 1 / 20

    time.sleep(0.1)  # two tokens' worth at this rate

    allowed, _ = _take_until_refused("refill", rule)
    assert allowed == 2


def test_a_bucket_never_refills_past_its_capacity() -> None:
    rule = BucketRule(capacity=2, refill_per_second=50)
    bucket_take(key="cap", rule=rule)

    time.sleep(0.15)  # enough for 7 tokens at this rate

    allowed, _ = _take_until_refused("cap", rule)
    assert allowed == 2


def test_separate_keys_are_independent() -> None:
    rule = BucketRule(capacity=2, refill_per_second=0.01)
    _take_until_refused("first", rule)

    allowed, _ = _take_until_refused("second", rule)

    assert allowed == 2
    assert not bucket_take(key="first", rule=rule).allowed


def test_a_bucket_key_expires_once_it_would_be_full_again() -> None:
    rule = BucketRule(capacity=4, refill_per_second=0.5)

    bucket_take(key="expiring", rule=rule)

    ttl = get_redis_connection("default").ttl(KEY_PREFIX + "expiring")
    assert 0 < ttl <= 4 / 0.5 + 1


def test_concurrent_takes_never_grant_more_than_the_capacity() -> None:
    rule = BucketRule(capacity=5, refill_per_second=0.001)
    threads_count = 20
    start = threading.Barrier(threads_count)
    decisions: list[BucketDecision] = []
    lock = threading.Lock()

    def take() -> None:
        start.wait()
        decision = bucket_take(key="race", rule=rule)
        with lock:
            decisions.append(decision)

    threads = [threading.Thread(target=take) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert len(decisions) == threads_count
    assert sum(decision.allowed for decision in decisions) == 5
