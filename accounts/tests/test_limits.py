"""The per-tier token buckets in PostgreSQL (accounts.limits). Time is passed as `now` so no test
sleeps; the concurrency tests use real threads, each on its own database connection."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from accounts.admin import TierForm
from accounts.limits import (
    MESSAGES,
    TOKENS,
    LimitDecision,
    limit_charge,
    limit_refund,
    limit_take,
    turn_admit,
)
from accounts.models import Tier, UsageBucket, User
from accounts.selectors import tier_guest_default, tier_registered_default
from accounts.tests.factories import DEFAULT_PASSWORD, TierFactory, UserFactory

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _user(**limits: float) -> User:
    """A user on a fresh tier with these limits (the field defaults for the rest)."""
    return UserFactory(tier=TierFactory(**limits))


def _take_until_refused(user: User, kind: str, *, amount: float = 1, limit: int = 1000) -> tuple[int, LimitDecision]:
    for allowed in range(limit):
        decision = limit_take(user=user, kind=kind, amount=amount, now=T0)
        if not decision.allowed:
            return allowed, decision
    raise AssertionError(f"the bucket never refused in {limit} takes")


def _level(user: User, kind: str) -> float:
    return UsageBucket.objects.get(user=user, kind=kind).tokens


@pytest.mark.django_db
class TestTakes:
    def test_a_bucket_allows_its_capacity_then_refuses_with_the_wait_for_one_more(self) -> None:
        user = _user(message_capacity=5, messages_per_minute=6)  # one message every 10 s

        allowed, refusal = _take_until_refused(user, MESSAGES)

        assert allowed == 5
        assert not refusal.allowed
        assert refusal.kind == MESSAGES
        assert refusal.remaining == pytest.approx(0)
        assert refusal.retry_after_seconds == pytest.approx(10)

    def test_remaining_counts_down_and_an_allowed_take_needs_no_wait(self) -> None:
        user = _user(message_capacity=3, messages_per_minute=1)

        decisions = [limit_take(user=user, kind=MESSAGES, now=T0) for _ in range(3)]

        assert [decision.remaining for decision in decisions] == [2, 1, 0]
        assert all(decision.allowed and decision.retry_after_seconds == 0 for decision in decisions)

    def test_the_wait_covers_the_whole_amount_still_missing(self) -> None:
        user = _user(token_capacity=1000, tokens_per_minute=600)  # 10 tokens a second
        limit_take(user=user, kind=TOKENS, amount=900, now=T0)

        refusal = limit_take(user=user, kind=TOKENS, amount=400, now=T0)

        assert not refusal.allowed
        assert refusal.remaining == pytest.approx(100)
        assert refusal.retry_after_seconds == pytest.approx(30)
        assert _level(user, TOKENS) == pytest.approx(100)  # a refusal takes nothing

    def test_a_bucket_refills_at_the_tier_rate_up_to_its_capacity(self) -> None:
        user = _user(message_capacity=4, messages_per_minute=60)  # one a second
        _take_until_refused(user, MESSAGES)

        assert not limit_take(user=user, kind=MESSAGES, now=_at(0.5)).allowed
        after_two_seconds = limit_take(user=user, kind=MESSAGES, now=_at(2))
        assert after_two_seconds.allowed
        assert after_two_seconds.remaining == pytest.approx(1)

        after_an_hour = limit_take(user=user, kind=MESSAGES, now=_at(3600))
        assert after_an_hour.remaining == pytest.approx(3)  # capped at 4, then one taken

    def test_a_retry_at_the_advised_time_is_allowed(self) -> None:
        user = _user(message_capacity=2, messages_per_minute=4)
        _take_until_refused(user, MESSAGES)
        refusal = limit_take(user=user, kind=MESSAGES, now=T0)

        retry = limit_take(user=user, kind=MESSAGES, now=_at(refusal.retry_after_seconds + 0.001))

        assert retry.allowed

    def test_a_clock_earlier_than_the_last_change_adds_nothing(self) -> None:
        user = _user(message_capacity=2, messages_per_minute=60)
        limit_take(user=user, kind=MESSAGES, amount=2, now=_at(10))

        refusal = limit_take(user=user, kind=MESSAGES, now=_at(5))

        assert not refusal.allowed
        assert UsageBucket.objects.get(user=user, kind=MESSAGES).updated_at == _at(10)

    def test_messages_and_tokens_have_separate_buckets(self) -> None:
        user = _user(message_capacity=1, messages_per_minute=1, token_capacity=100, tokens_per_minute=1)

        assert limit_take(user=user, kind=MESSAGES, now=T0).allowed
        assert not limit_take(user=user, kind=MESSAGES, now=T0).allowed
        tokens = limit_take(user=user, kind=TOKENS, amount=60, now=T0)

        assert tokens.allowed
        assert tokens.kind == TOKENS
        assert tokens.remaining == pytest.approx(40)

    def test_users_on_one_tier_have_their_own_buckets(self) -> None:
        tier = TierFactory(message_capacity=1, messages_per_minute=1)
        first, second = UserFactory(tier=tier), UserFactory(tier=tier)

        assert limit_take(user=first, kind=MESSAGES, now=T0).allowed
        assert not limit_take(user=first, kind=MESSAGES, now=T0).allowed
        assert limit_take(user=second, kind=MESSAGES, now=T0).allowed

    def test_takes_without_a_clock_use_the_database_clock(self) -> None:
        user = _user(message_capacity=2, messages_per_minute=1)

        assert limit_take(user=user, kind=MESSAGES).allowed
        assert limit_take(user=user, kind=MESSAGES).allowed
        refusal = limit_take(user=user, kind=MESSAGES)

        assert not refusal.allowed
        assert 55 < refusal.retry_after_seconds <= 60
        with connection.cursor() as cursor:
            cursor.execute("SELECT clock_timestamp()")
            database_now = cursor.fetchone()[0]
        assert abs((database_now - UsageBucket.objects.get(user=user, kind=MESSAGES).updated_at).total_seconds()) < 5


@pytest.mark.django_db
class TestTiers:
    def test_a_tier_change_applies_to_the_next_take(self) -> None:
        user = _user(message_capacity=1, messages_per_minute=0)
        limit_take(user=user, kind=MESSAGES, now=T0)
        assert not limit_take(user=user, kind=MESSAGES, now=T0).allowed

        user.tier = TierFactory(message_capacity=10, messages_per_minute=60)
        user.save(update_fields=["tier"])
        stale = User.objects.get(pk=user.pk)  # any copy of the user: the tier is read in SQL

        decision = limit_take(user=stale, kind=MESSAGES, now=_at(3))

        assert decision.allowed
        assert decision.remaining == pytest.approx(2)  # 0 + 3 s at the new rate, one taken

    def test_new_numbers_on_the_tier_apply_to_the_next_take(self) -> None:
        user = _user(message_capacity=10, messages_per_minute=0)
        limit_take(user=user, kind=MESSAGES, now=T0)
        Tier.objects.filter(pk=user.tier_id).update(message_capacity=3)

        decision = limit_take(user=user, kind=MESSAGES, now=T0)

        assert decision.remaining == pytest.approx(2)  # the 9 left are cut to the new capacity

    @pytest.mark.parametrize("kind", [MESSAGES, TOKENS])
    def test_zero_capacity_refuses_everything_and_never_says_when(self, kind: str) -> None:
        user = _user(message_capacity=0, token_capacity=0)

        refusal = limit_take(user=user, kind=kind, amount=1, now=T0)
        nothing = limit_take(user=user, kind=kind, amount=0, now=T0)

        assert not refusal.allowed
        assert not nothing.allowed
        assert math.isinf(refusal.retry_after_seconds)

    def test_a_zero_refill_rate_refuses_with_an_infinite_wait(self) -> None:
        user = _user(message_capacity=1, messages_per_minute=0)
        limit_take(user=user, kind=MESSAGES, now=T0)

        refusal = limit_take(user=user, kind=MESSAGES, now=_at(86_400))

        assert not refusal.allowed
        assert math.isinf(refusal.retry_after_seconds)

    def test_asking_for_more_than_the_capacity_is_refused_for_good(self) -> None:
        user = _user(token_capacity=100, tokens_per_minute=100)

        refusal = limit_take(user=user, kind=TOKENS, amount=101, now=T0)

        assert not refusal.allowed
        assert refusal.remaining == pytest.approx(100)
        assert math.isinf(refusal.retry_after_seconds)

    def test_the_guest_tier_starts_with_smaller_limits_than_the_registered_one(self) -> None:
        guest, registered = tier_guest_default(), tier_registered_default()

        assert (guest.message_capacity, guest.messages_per_minute) == (10, 3)
        assert (guest.token_capacity, guest.tokens_per_minute) == (50_000, 20_000)
        assert (registered.message_capacity, registered.messages_per_minute) == (20, 10)
        assert (registered.token_capacity, registered.tokens_per_minute) == (200_000, 100_000)

    def test_an_unknown_kind_or_a_negative_amount_is_a_programming_error(self) -> None:
        user = _user()

        with pytest.raises(ValueError, match="kind"):
            limit_take(user=user, kind="images", now=T0)
        with pytest.raises(ValueError, match="negative"):
            limit_take(user=user, kind=TOKENS, amount=-5, now=T0)
        with pytest.raises(ValueError, match="negative"):
            limit_refund(user=user, kind=TOKENS, amount=-5, now=T0)


@pytest.mark.django_db
class TestRefundAndCharge:
    def test_a_refund_gives_tokens_back(self) -> None:
        user = _user(token_capacity=1000, tokens_per_minute=0)
        limit_take(user=user, kind=TOKENS, amount=800, now=T0)

        refund = limit_refund(user=user, kind=TOKENS, amount=300, now=T0)

        assert refund.remaining == pytest.approx(500)
        assert _level(user, TOKENS) == pytest.approx(500)

    def test_a_refund_never_fills_past_the_capacity(self) -> None:
        user = _user(token_capacity=1000, tokens_per_minute=600)
        limit_take(user=user, kind=TOKENS, amount=100, now=T0)

        assert limit_refund(user=user, kind=TOKENS, amount=500, now=_at(1)).remaining == pytest.approx(1000)
        assert limit_refund(user=user, kind=TOKENS, amount=5, now=_at(2)).remaining == pytest.approx(1000)

    def test_a_refund_to_an_unused_bucket_leaves_it_full(self) -> None:
        user = _user(token_capacity=1000)

        assert limit_refund(user=user, kind=TOKENS, amount=50, now=T0).remaining == pytest.approx(1000)

    def test_a_charge_may_push_the_bucket_below_zero(self) -> None:
        user = _user(token_capacity=1000, tokens_per_minute=600)  # 10 a second
        limit_take(user=user, kind=TOKENS, amount=900, now=T0)

        charge = limit_charge(user=user, kind=TOKENS, amount=400, now=T0)

        assert charge.allowed
        assert charge.remaining == pytest.approx(-300)
        refusal = limit_take(user=user, kind=TOKENS, amount=1, now=T0)
        assert not refusal.allowed
        assert refusal.retry_after_seconds == pytest.approx(30.1)  # the debt, then one token

    def test_the_refill_pays_off_a_charged_debt(self) -> None:
        user = _user(token_capacity=1000, tokens_per_minute=600)
        limit_charge(user=user, kind=TOKENS, amount=1300, now=T0)

        assert not limit_take(user=user, kind=TOKENS, amount=100, now=_at(39)).allowed
        assert limit_take(user=user, kind=TOKENS, amount=100, now=_at(40)).allowed


@pytest.mark.django_db
class TestTurnAdmit:
    def test_an_admitted_turn_takes_a_message_and_reserves_the_tokens(self) -> None:
        user = _user(message_capacity=5, token_capacity=1000)

        admitted = turn_admit(user=user, estimated_tokens=300, now=T0)

        assert admitted.allowed
        assert admitted.kind == MESSAGES
        assert admitted.remaining == pytest.approx(4)
        assert _level(user, TOKENS) == pytest.approx(700)

    def test_a_turn_short_of_tokens_is_refused_and_keeps_its_message(self) -> None:
        user = _user(message_capacity=5, messages_per_minute=1, token_capacity=1000, tokens_per_minute=600)
        turn_admit(user=user, estimated_tokens=900, now=T0)
        before = UsageBucket.objects.get(user=user, kind=MESSAGES)

        refusal = turn_admit(user=user, estimated_tokens=300, now=_at(1))

        assert not refusal.allowed
        assert refusal.kind == TOKENS
        assert refusal.retry_after_seconds == pytest.approx(19)  # 110 held, 190 more at 10 a second
        after = UsageBucket.objects.get(user=user, kind=MESSAGES)
        assert (after.tokens, after.updated_at) == (before.tokens, before.updated_at)
        assert _level(user, TOKENS) == pytest.approx(100)

    def test_a_turn_out_of_messages_is_refused_without_touching_tokens(self) -> None:
        user = _user(message_capacity=1, messages_per_minute=2, token_capacity=1000)
        turn_admit(user=user, estimated_tokens=100, now=T0)

        refusal = turn_admit(user=user, estimated_tokens=100, now=T0)

        assert not refusal.allowed
        assert refusal.kind == MESSAGES
        assert refusal.retry_after_seconds == pytest.approx(30)
        assert _level(user, TOKENS) == pytest.approx(900)

    def test_a_refused_turn_inside_a_callers_transaction_rolls_back_only_itself(self) -> None:
        from django.db import transaction

        user = _user(message_capacity=5, token_capacity=100, tokens_per_minute=0)
        with transaction.atomic():
            assert turn_admit(user=user, estimated_tokens=60, now=T0).allowed
            assert not turn_admit(user=user, estimated_tokens=60, now=T0).allowed

        assert _level(user, MESSAGES) == pytest.approx(4)
        assert _level(user, TOKENS) == pytest.approx(40)


def _in_parallel(count: int, work: Callable[[], LimitDecision]) -> list[LimitDecision]:
    """Run `work` in `count` threads released together, each on its own connection."""
    barrier = threading.Barrier(count)
    results: list[LimitDecision] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run() -> None:
        try:
            barrier.wait(timeout=30)
            decision = work()
            with lock:
                results.append(decision)
        except BaseException as error:  # noqa: BLE001 - reported to the test thread below
            with lock:
                errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len(results) == count
    return results


@pytest.mark.django_db(transaction=True)
class TestConcurrency:
    @pytest.mark.parametrize("existing_bucket", [False, True], ids=["new-bucket", "existing-bucket"])
    def test_fifty_parallel_takes_from_ten_allow_exactly_ten(self, existing_bucket: bool) -> None:
        user = _user(message_capacity=11 if existing_bucket else 10, messages_per_minute=0)
        if existing_bucket:
            limit_take(user=user, kind=MESSAGES)  # the row exists, holding 10

        decisions = _in_parallel(50, lambda: limit_take(user=user, kind=MESSAGES))

        assert sum(decision.allowed for decision in decisions) == 10
        assert sorted(decision.remaining for decision in decisions if decision.allowed) == list(range(10))
        assert all(math.isinf(decision.retry_after_seconds) for decision in decisions if not decision.allowed)
        assert _level(user, MESSAGES) == 0

    def test_fifty_parallel_turns_are_admitted_exactly_as_far_as_tokens_allow(self) -> None:
        user = _user(message_capacity=100, messages_per_minute=0, token_capacity=1000, tokens_per_minute=0)

        decisions = _in_parallel(50, lambda: turn_admit(user=user, estimated_tokens=70))

        assert sum(decision.allowed for decision in decisions) == 14  # 14 x 70 = 980 of 1000
        assert _level(user, TOKENS) == pytest.approx(20)
        assert _level(user, MESSAGES) == pytest.approx(86)  # the 36 refused turns kept theirs


@pytest.mark.django_db
class TestAdmin:
    def _form(self, tier: Tier, **data: str) -> TierForm:
        return TierForm(data={"name": tier.name, "slug": tier.slug, "description": "", **data}, instance=tier)

    def test_the_tier_page_shows_the_limits(self) -> None:
        client = Client()
        client.force_login(User.objects.create_superuser("root@example.com", DEFAULT_PASSWORD))
        tier = TierFactory()

        page = client.get(reverse("admin:accounts_tier_change", args=[tier.pk])).content.decode()

        assert "Rate limits" in page
        assert 'name="messages_per_minute"' in page
        assert 'name="token_capacity"' in page

    def test_the_tier_form_edits_the_limits(self) -> None:
        tier = TierFactory()
        form = self._form(
            tier, message_capacity="7", messages_per_minute="1.5", token_capacity="0", tokens_per_minute="0"
        )

        assert form.is_valid(), form.errors
        form.save()

        tier.refresh_from_db()
        limits = (tier.message_capacity, tier.messages_per_minute, tier.token_capacity, tier.tokens_per_minute)
        assert limits == (7, 1.5, 0, 0)

    def test_a_tier_form_without_the_limits_keeps_them(self) -> None:
        tier = TierFactory(message_capacity=3, token_capacity=30)
        form = self._form(tier, name="Renamed", message_capacity="")

        assert form.is_valid(), form.errors
        form.save()

        tier.refresh_from_db()
        assert (tier.name, tier.message_capacity, tier.token_capacity) == ("Renamed", 3, 30)

    def test_the_tier_form_refuses_a_negative_rate(self) -> None:
        form = self._form(TierFactory(), messages_per_minute="-1")

        assert not form.is_valid()
        assert "messages_per_minute" in form.errors
