"""Spend quotas: limits from the tier or an override, refusal with the reset time, settlement,
and exactness under concurrency (real threads, each on its own database connection)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction

from accounts.models import User
from accounts.tests.factories import TierFactory, UserFactory
from providers.contract import Usage
from usage.models import Period, SpendLedger
from usage.services import QuotaExceeded, quota_release, spend_admit, usage_record
from usage.services.quotas import (
    AccountDisabled,
    period_reset,
    quota_override_grant,
    spend_limits_for,
    spend_status,
    tier_quota_set,
)
from usage.tests.factories import priced_model

NOON = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)


def _user(daily: str | None = None, monthly: str | None = None) -> User:
    tier = TierFactory()
    tier_quota_set(
        tier_id=tier.pk,
        daily=Decimal(daily) if daily else None,
        monthly=Decimal(monthly) if monthly else None,
    )
    return UserFactory(tier=tier)


def _ledger(user: User, period: str = Period.DAY) -> SpendLedger:
    return SpendLedger.objects.get(user_id=user.pk, period=period)


@pytest.mark.django_db
class TestLimits:
    def test_a_tier_without_a_quota_has_no_limits(self) -> None:
        limits = spend_limits_for(user_id=UserFactory().pk)

        assert (limits.daily, limits.monthly, limits.overridden) == (None, None, False)

    def test_an_override_replaces_only_the_limits_it_sets(self) -> None:
        user = _user(daily="1", monthly="20")
        quota_override_grant(user=user, granted_by=None, monthly=Decimal("100"))

        limits = spend_limits_for(user_id=user.pk)

        assert (limits.daily, limits.monthly, limits.overridden) == (Decimal("1"), Decimal("100"), True)

    def test_an_unlimited_override_lifts_both_limits(self) -> None:
        user = _user(daily="1", monthly="20")
        quota_override_grant(user=user, granted_by=None, unlimited=True)

        assert spend_limits_for(user_id=user.pk).daily is None
        assert spend_admit(user=user, amount=Decimal("50"))

    def test_an_expired_override_no_longer_applies(self) -> None:
        user = _user(daily="1")
        quota_override_grant(user=user, granted_by=None, unlimited=True, expires_at=NOON)

        assert spend_limits_for(user_id=user.pk, now=NOON - timedelta(seconds=1)).daily is None
        assert spend_limits_for(user_id=user.pk, now=NOON).daily == Decimal("1")


@pytest.mark.django_db
class TestAdmission:
    def test_a_turn_within_the_limit_is_admitted_and_reserves_its_estimate(self) -> None:
        user = _user(daily="1.00", monthly="10.00")

        reservation = spend_admit(user=user, amount=Decimal("0.25"), now=NOON)

        assert reservation == {"spend_reserved": "0.25", "spend_day": "2026-03-14", "spend_month": "2026-03-01"}
        assert _ledger(user).reserved == Decimal("0.25")
        assert _ledger(user, Period.MONTH).reserved == Decimal("0.25")

    def test_turns_are_admitted_up_to_exactly_the_limit(self) -> None:
        user = _user(daily="1.00")

        admitted = 0
        with pytest.raises(QuotaExceeded):
            while True:
                spend_admit(user=user, amount=Decimal("0.25"), now=NOON)
                admitted += 1

        assert admitted == 4
        assert _ledger(user).reserved == Decimal("1.00")

    def test_the_refusal_names_the_limit_and_when_it_resets(self) -> None:
        user = _user(daily="0.50")
        spend_admit(user=user, amount=Decimal("0.40"), now=NOON)

        with pytest.raises(QuotaExceeded) as refused:
            spend_admit(user=user, amount=Decimal("0.20"), now=NOON)

        assert refused.value.period == Period.DAY
        assert refused.value.resets_at == datetime(2026, 3, 15, tzinfo=UTC)
        assert refused.value.retry_after == 12 * 3600
        assert refused.value.message == (
            "You have reached your daily spending limit ($0.50). It resets at 2026-03-15 00:00 UTC, in 12 h 0 min."
        )

    def test_a_monthly_refusal_takes_back_the_days_reservation(self) -> None:
        user = _user(daily="5", monthly="1")
        spend_admit(user=user, amount=Decimal("0.90"), now=NOON)

        with pytest.raises(QuotaExceeded) as refused:
            spend_admit(user=user, amount=Decimal("0.20"), now=NOON)

        assert refused.value.period == Period.MONTH
        assert refused.value.resets_at == datetime(2026, 4, 1, tzinfo=UTC)
        assert _ledger(user).reserved == Decimal("0.90")

    def test_spend_already_booked_counts_against_the_limit(self) -> None:
        priced_model(input_price="1000", output_price="0")  # $0.001 a token
        user = _user(daily="1.00")
        usage_record(user_id=user.pk, kind="title", model_id="acme:large", provider="acme", usage=Usage(900, 0))

        with pytest.raises(QuotaExceeded):
            spend_admit(user=user, amount=Decimal("0.20"))
        assert spend_admit(user=user, amount=Decimal("0.10"))

    def test_a_new_day_has_a_fresh_daily_allowance(self) -> None:
        user = _user(daily="1.00")
        spend_admit(user=user, amount=Decimal("1.00"), now=NOON)

        assert spend_admit(user=user, amount=Decimal("1.00"), now=NOON + timedelta(days=1))

    def test_free_models_and_byok_reserve_nothing_and_are_never_refused(self) -> None:
        user = _user(daily="0")

        assert spend_admit(user=user, amount=Decimal(0)) == {}
        assert not SpendLedger.objects.filter(user_id=user.pk).exists()

    def test_a_disabled_user_is_refused(self) -> None:
        user = _user()
        User.objects.filter(pk=user.pk).update(is_active=False)

        with pytest.raises(AccountDisabled):
            spend_admit(user=user, amount=Decimal(0))

    def test_a_period_resets_at_local_midnight(self) -> None:
        assert period_reset(Period.DAY, date(2026, 12, 31)) == datetime(2027, 1, 1, tzinfo=UTC)
        assert period_reset(Period.MONTH, date(2026, 2, 1)) == datetime(2026, 3, 1, tzinfo=UTC)


@pytest.mark.django_db
class TestSettlement:
    def test_the_reservation_is_replaced_by_the_real_cost(self) -> None:
        priced_model(input_price="10", output_price="10")
        user = _user(daily="1.00")
        reservation = spend_admit(user=user, amount=Decimal("0.50"))

        usage_record(
            user_id=user.pk,
            kind="chat",
            model_id="acme:large",
            provider="acme",
            usage=Usage(input_tokens=10_000, output_tokens=2_000),
            reservation={"reserved_tokens": 1_500, **reservation},
        )

        day = _ledger(user)
        assert (day.reserved, day.spent) == (0, Decimal("0.12"))
        assert spend_status(user_id=user.pk).spent_month == Decimal("0.12")

    def test_a_reply_dearer_than_its_estimate_is_charged_in_full_and_the_next_turn_refused(self) -> None:
        priced_model(input_price="100", output_price="100")
        user = _user(daily="1.00")
        reservation = spend_admit(user=user, amount=Decimal("0.10"))

        usage_record(
            user_id=user.pk,
            kind="chat",
            model_id="acme:large",
            provider="acme",
            usage=Usage(input_tokens=11_000, output_tokens=1_000),
            reservation=reservation,
        )

        assert _ledger(user).spent == Decimal("1.2")
        with pytest.raises(QuotaExceeded):
            spend_admit(user=user, amount=Decimal("0.01"))

    def test_a_reply_saved_after_midnight_settles_into_the_day_it_was_admitted(self) -> None:
        priced_model(input_price="10", output_price="0")
        user = _user(daily="1.00")
        reservation = spend_admit(user=user, amount=Decimal("0.30"), now=NOON - timedelta(days=1))

        usage_record(
            user_id=user.pk,
            kind="chat",
            model_id="acme:large",
            provider="acme",
            usage=Usage(10_000, 0),
            reservation=reservation,
        )

        row = SpendLedger.objects.get(user_id=user.pk, period=Period.DAY, start=date(2026, 3, 13))
        assert (row.reserved, row.spent) == (0, Decimal("0.1"))

    def test_a_released_reservation_frees_the_allowance(self) -> None:
        user = _user(daily="1.00")
        reservation = spend_admit(user=user, amount=Decimal("1.00"))

        quota_release(user_id=user.pk, reservation=reservation)

        assert (_ledger(user).reserved, _ledger(user).spent) == (0, 0)
        assert spend_admit(user=user, amount=Decimal("1.00"))


def _in_parallel(count: int, work: Callable[[], object]) -> list[object]:
    """Run `work` in `count` threads released together, each on its own connection; a raised
    exception is the thread's result."""
    barrier = threading.Barrier(count)
    results: list[object] = []
    lock = threading.Lock()

    def run() -> None:
        try:
            barrier.wait(timeout=30)
            with transaction.atomic():
                result: object = work()
        except Exception as error:  # noqa: BLE001 - a refusal is a result here
            result = error
        finally:
            connection.close()
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == count
    return results


@pytest.mark.django_db(transaction=True)
class TestConcurrency:
    def test_fifty_parallel_turns_are_admitted_exactly_as_far_as_the_daily_limit_allows(self) -> None:
        user = _user(daily="1.00", monthly="100")

        results = _in_parallel(50, lambda: spend_admit(user=user, amount=Decimal("0.07")))

        admitted = [result for result in results if isinstance(result, dict)]
        refused = [result for result in results if isinstance(result, QuotaExceeded)]
        assert (len(admitted), len(refused)) == (14, 36)  # 14 x 0.07 = 0.98 of 1.00
        assert _ledger(user).reserved == Decimal("0.98")
        assert _ledger(user, Period.MONTH).reserved == Decimal("0.98")  # refused turns took nothing back there

    def test_parallel_turns_against_the_monthly_limit_are_exact_too(self) -> None:
        user = _user(daily="100", monthly="0.50")

        results = _in_parallel(30, lambda: spend_admit(user=user, amount=Decimal("0.05")))

        assert sum(isinstance(result, dict) for result in results) == 10
        assert _ledger(user).reserved == Decimal("0.50")
        assert _ledger(user, Period.MONTH).reserved == Decimal("0.50")


@pytest.mark.django_db
def test_a_guests_spend_counts_against_the_account_they_sign_in_to() -> None:
    from accounts.services import guest_data_transfer
    from accounts.tests.factories import GuestFactory

    guest, account = GuestFactory(), _user()
    today = date(2026, 3, 14)
    SpendLedger.objects.create(user_id=guest.pk, period=Period.DAY, start=today, spent=Decimal("0.30"))
    SpendLedger.objects.create(user_id=guest.pk, period=Period.MONTH, start=date(2026, 3, 1), spent=Decimal("0.30"))
    SpendLedger.objects.create(user_id=account.pk, period=Period.DAY, start=today, spent=Decimal("0.20"))
    running = SpendLedger.objects.create(
        user_id=guest.pk, period=Period.DAY, start=today - timedelta(days=1), spent=Decimal("0.05"), reserved=1
    )

    guest_id = guest.pk

    guest_data_transfer(guest=guest, target=account)

    spent = {(row.period, row.start): row.spent for row in SpendLedger.objects.filter(user_id=account.pk)}
    assert spent == {
        (Period.DAY, today): Decimal("0.50"),
        (Period.MONTH, date(2026, 3, 1)): Decimal("0.30"),
        (Period.DAY, today - timedelta(days=1)): Decimal("0.05"),
    }
    # The row a running turn of the guest reserved in stays, for its settlement, with no spend left.
    assert list(SpendLedger.objects.filter(user_id=guest_id).values_list("pk", "spent", "reserved")) == [
        (running.pk, Decimal(0), Decimal(1))
    ]
