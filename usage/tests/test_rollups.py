"""Daily roll-ups: equal to the sum of their rows, idempotent, final once the day is over."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Count, Sum

from accounts.tests.factories import GuestFactory, UserFactory
from usage.models import TTFT_BOUNDS_MS, RolledUpDay, UsageDaily, UsageRecord
from usage.services.rollups import rollups_ensure, rollups_recent, usage_rollup
from usage.tests.factories import usage_row

pytestmark = pytest.mark.django_db

DAY = date(2026, 3, 14)
NOON = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)


def _a_busy_day() -> None:
    registered, guest = UserFactory(), GuestFactory()
    for minute in range(30):
        usage_row(
            at=NOON + timedelta(minutes=minute),
            user=registered if minute % 3 else guest,
            model_id=["acme:large", "acme:small"][minute % 2],
            provider=["acme", "backup"][minute % 5 == 0],
            kind=["chat", "title", "chat", "artifact"][minute % 4],
            input_tokens=100 + minute,
            output_tokens=10 * minute,
            reasoning_tokens=minute,
            cost=Decimal("0.0001") * (minute + 1),
            ttft_ms=40 * (minute + 1),
            outcome="timeout" if minute % 7 == 0 else "complete",
        )
    usage_row(at=NOON, user=registered, byok=True, cost=0, model_id="byok:mine", ttft_ms=None)
    # Either side of the day: not in it.
    usage_row(at=datetime(2026, 3, 14, 0, 0, tzinfo=UTC) - timedelta(microseconds=1), user=registered)
    usage_row(at=datetime(2026, 3, 15, 0, 0, tzinfo=UTC), user=registered)


def _totals(queryset: object, count: str) -> dict[str, object]:
    return queryset.aggregate(  # type: ignore[attr-defined]
        requests=count,
        input_tokens=Sum("input_tokens"),
        output_tokens=Sum("output_tokens"),
        reasoning_tokens=Sum("reasoning_tokens"),
        cost=Sum("cost"),
    )


def test_the_roll_up_of_a_day_equals_the_sum_of_its_rows() -> None:
    _a_busy_day()

    summed = usage_rollup(day=DAY, now=NOON + timedelta(days=1))

    rows = UsageRecord.objects.filter(created_at__date=DAY)
    assert summed == rows.count() == 31
    assert _totals(UsageDaily.objects.filter(day=DAY), Sum("requests")) == _totals(rows, Count("id"))
    by_model = {row["model_id"]: row["cost"] for row in rows.values("model_id").annotate(cost=Sum("cost")).order_by()}
    assert by_model == {
        row["model_id"]: row["cost"]
        for row in UsageDaily.objects.filter(day=DAY).values("model_id").annotate(cost=Sum("cost")).order_by()
    }
    errors = UsageDaily.objects.filter(day=DAY).aggregate(n=Sum("errors"))["n"]
    assert errors == rows.filter(outcome="timeout").count() == 5


def test_the_time_to_first_token_histogram_counts_every_timed_row_once() -> None:
    _a_busy_day()

    usage_rollup(day=DAY)

    histograms = list(UsageDaily.objects.filter(day=DAY).values_list("ttft_histogram", "ttft_count"))
    assert sum(sum(histogram) for histogram, _ in histograms) == 30
    assert all(sum(histogram) == count for histogram, count in histograms if histogram)
    assert all(len(histogram) == len(TTFT_BOUNDS_MS) + 1 for histogram, _ in histograms if histogram)


def test_rolling_up_twice_gives_the_same_rows() -> None:
    _a_busy_day()
    usage_rollup(day=DAY)
    first = sorted(UsageDaily.objects.filter(day=DAY).values_list("model_id", "kind", "requests", "cost"))

    usage_rollup(day=DAY)

    assert sorted(UsageDaily.objects.filter(day=DAY).values_list("model_id", "kind", "requests", "cost")) == first


def test_a_late_row_is_counted_when_the_day_is_rolled_up_again() -> None:
    user = UserFactory()
    usage_row(at=NOON, user=user)
    usage_rollup(day=DAY, now=NOON)
    usage_row(at=NOON + timedelta(hours=11), user=user)

    usage_rollup(day=DAY, now=NOON + timedelta(hours=12, minutes=11))

    assert UsageDaily.objects.get(day=DAY).requests == 2


def test_a_day_is_final_only_when_rolled_up_after_it_ended() -> None:
    usage_row(at=NOON, user=UserFactory())

    usage_rollup(day=DAY, now=NOON)
    assert not RolledUpDay.objects.get(day=DAY).complete

    usage_rollup(day=DAY, now=NOON + timedelta(hours=12, minutes=10))
    assert RolledUpDay.objects.get(day=DAY).complete


def test_reports_roll_up_only_the_past_days_not_yet_final() -> None:
    user = UserFactory()
    for days_ago in range(4):
        usage_row(at=NOON - timedelta(days=days_ago), user=user)
    usage_rollup(day=DAY - timedelta(days=2), now=NOON)  # final

    done = rollups_ensure(first=DAY - timedelta(days=10), last=DAY, now=NOON)

    assert done == [DAY - timedelta(days=3), DAY - timedelta(days=1)]  # never today, never before the first row
    assert rollups_ensure(first=DAY - timedelta(days=10), last=DAY, now=NOON) == []


def test_in_the_grace_after_midnight_a_report_reuses_a_roll_up_made_after_the_day_ended() -> None:
    user = UserFactory()
    usage_row(at=NOON, user=user)
    just_after_midnight = datetime(2026, 3, 15, 0, 2, tzinfo=UTC)

    assert rollups_ensure(first=DAY, last=DAY, now=just_after_midnight) == [DAY]
    assert rollups_ensure(first=DAY, last=DAY, now=just_after_midnight + timedelta(seconds=30)) == []

    usage_row(at=NOON + timedelta(hours=11, minutes=59), user=user)  # committed across midnight
    assert rollups_ensure(first=DAY, last=DAY, now=just_after_midnight + timedelta(minutes=1)) == [DAY]
    assert UsageDaily.objects.get(day=DAY).requests == 2


def test_a_roll_up_made_before_the_day_ended_is_never_reused_for_it() -> None:
    user = UserFactory()
    usage_row(at=NOON, user=user)
    usage_rollup(day=DAY, now=datetime(2026, 3, 14, 23, 59, 50, tzinfo=UTC))
    usage_row(at=datetime(2026, 3, 14, 23, 59, 55, tzinfo=UTC), user=user)

    assert rollups_ensure(first=DAY, last=DAY, now=datetime(2026, 3, 15, 0, 0, 5, tzinfo=UTC)) == [DAY]
    assert UsageDaily.objects.get(day=DAY).requests == 2


def test_the_scheduled_roll_up_covers_yesterday_and_today() -> None:
    user = UserFactory()
    usage_row(at=NOON, user=user)
    usage_row(at=NOON - timedelta(days=1), user=user)

    assert rollups_recent(now=NOON) == 2
    assert set(UsageDaily.objects.values_list("day", flat=True)) == {DAY, DAY - timedelta(days=1)}


def test_after_a_guest_signs_in_their_past_days_are_rolled_up_again_under_the_account() -> None:
    from accounts.services import guest_data_transfer

    guest, account = GuestFactory(), UserFactory()
    usage_row(at=NOON, user=guest)
    usage_row(at=NOON, user=account)
    rollups_ensure(first=DAY, last=DAY, now=NOON + timedelta(days=2))

    guest_data_transfer(guest=guest, target=account)

    assert rollups_ensure(first=DAY, last=DAY, now=NOON + timedelta(days=2)) == [DAY]
    rolled_up = UsageDaily.objects.filter(day=DAY)
    assert set(rolled_up.values_list("user_id", flat=True)) == {account.pk}  # one row per tier it was used on
    assert rolled_up.aggregate(n=Sum("requests"))["n"] == 2
