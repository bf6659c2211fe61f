"""Daily roll-ups: one day's usage rows summed by (user, tier, model, provider, kind, BYOK).

A day is recomputed whole in one transaction (its roll-up rows deleted and inserted again from
the rows), so running it twice, or concurrently (the day's marker row is locked first), gives
the same result, and a roll-up always equals the sum of its rows. A day is marked complete
once rolled up after it ended plus a grace for replies saved across midnight; reports roll up
a past day that is not complete before reading it (at most once a minute during the grace),
and read today from the rows themselves.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta

from django.contrib.postgres.fields import ArrayField
from django.db import transaction
from django.db.models import Count, Func, IntegerField, Q, QuerySet, Sum, Value
from django.utils import timezone

from usage.models import TTFT_BOUNDS_MS, Outcome, RolledUpDay, UsageDaily, UsageRecord

GROUP = ("user_id", "tier_id", "model_id", "provider", "kind", "byok")
# Rows may be saved a little after midnight for a reply that ended before it (transactions
# commit late): a day is final only once rolled up this long after it ended.
COMPLETE_AFTER = timedelta(minutes=10)
# Within that grace a report would otherwise roll up yesterday again on every read (several
# times per dashboard view); a roll-up made after the day ended is reused for this long.
REFRESH_AFTER = timedelta(minutes=1)
SUMS = {
    "requests": Count("id"),
    "errors": Count("id", filter=~Q(outcome__in=Outcome.values)),
    "input_tokens": Sum("input_tokens"),
    "output_tokens": Sum("output_tokens"),
    "reasoning_tokens": Sum("reasoning_tokens"),
    "cost": Sum("cost"),
    "ttft_count": Count("ttft_ms"),
}


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a calendar day in TIME_ZONE."""
    start = timezone.make_aware(datetime.combine(day, time.min))
    return start, timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))


def rows_of_day(day: date) -> QuerySet[UsageRecord]:
    start, end = day_bounds(day)
    return UsageRecord.objects.filter(created_at__gte=start, created_at__lt=end)


class WidthBucket(Func):
    """PostgreSQL's width_bucket(value, thresholds): 0 below the first bound, len(bounds) above
    the last."""

    function = "width_bucket"
    output_field = IntegerField()


def _histograms(day: date) -> dict[tuple, list[int]]:
    bounds = Value(list(TTFT_BOUNDS_MS), output_field=ArrayField(IntegerField()))
    counts = (
        rows_of_day(day)
        .exclude(ttft_ms=None)
        .annotate(bucket=WidthBucket("ttft_ms", bounds))
        .values(*GROUP, "bucket")
        .annotate(n=Count("id"))
        .order_by()
    )
    histograms: dict[tuple, list[int]] = defaultdict(lambda: [0] * (len(TTFT_BOUNDS_MS) + 1))
    for row in counts:
        histograms[tuple(row[key] for key in GROUP)][row["bucket"]] += row["n"]
    return histograms


@transaction.atomic
def usage_rollup(*, day: date, now: datetime | None = None) -> int:
    """Recompute the roll-up of `day`; returns how many usage rows it summed."""
    now = now or timezone.now()
    marker, _ = RolledUpDay.objects.select_for_update().get_or_create(day=day, defaults={"rolled_up_at": now})
    UsageDaily.objects.filter(day=day).delete()
    histograms = _histograms(day)
    groups = rows_of_day(day).values(*GROUP).annotate(**SUMS).order_by()
    total = 0
    batch = []
    for row in groups:
        key = tuple(row[name] for name in GROUP)
        total += row["requests"]
        batch.append(
            UsageDaily(
                day=day,
                **{name: row[name] for name in GROUP},
                **{name: row[name] or 0 for name in SUMS},
                ttft_histogram=histograms.get(key, []),
            )
        )
    UsageDaily.objects.bulk_create(batch, batch_size=2_000)
    _, end = day_bounds(day)
    marker.rolled_up_at = now
    marker.complete = now >= end + COMPLETE_AFTER
    marker.records = total
    marker.save()
    return total


def rollups_ensure(*, first: date, last: date, now: datetime | None = None) -> list[date]:
    """Roll up every day in [first, last] before today that is not complete yet; the days done."""
    today = timezone.localdate(now or timezone.now())
    last = min(last, today - timedelta(days=1))
    earliest = UsageRecord.objects.order_by("created_at").values_list("created_at", flat=True).first()
    if earliest is None:
        return []
    first = max(first, timezone.localdate(earliest))
    if last < first:
        return []
    now = now or timezone.now()
    markers = RolledUpDay.objects.filter(day__range=(first, last)).values_list("day", "complete", "rolled_up_at")
    fresh = {day for day, complete, rolled_up_at in markers if complete or _fresh(day, rolled_up_at, now)}
    done = []
    day = first
    while day <= last:
        if day not in fresh:
            usage_rollup(day=day, now=now)
            done.append(day)
        day += timedelta(days=1)
    return done


def rollups_forget_user(*, user_id: int) -> int:
    """Make the days holding roll-ups of `user_id` be rolled up again on the next read (their
    rows changed hands); how many days."""
    days = UsageDaily.objects.filter(user_id=user_id).values("day")
    deleted, _ = RolledUpDay.objects.filter(day__in=days).delete()
    return deleted


def _fresh(day: date, rolled_up_at: datetime, now: datetime) -> bool:
    """Rolled up after the day ended and within the last minute: only rows committed across
    midnight since then could be missing, and the next read after a minute counts them."""
    _, end = day_bounds(day)
    return end <= rolled_up_at and now - rolled_up_at < REFRESH_AFTER


def rollups_recent(*, now: datetime | None = None) -> int:
    """What the beat schedule runs: today so far and yesterday (final once past the grace)."""
    today = timezone.localdate(now or timezone.now())
    return usage_rollup(day=today - timedelta(days=1), now=now) + usage_rollup(day=today, now=now)
