"""Usage reads for reports and the dashboard: past days from the daily roll-ups (rolled up on
read when a day is not final yet), today from the rows themselves, so totals are exact and
never wait for the beat schedule."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Sum, Value
from django.db.models.fields import DateField
from django.utils import timezone

from accounts.models import Tier, User
from usage.models import TTFT_BOUNDS_MS, UsageDaily, UsageRecord
from usage.services.rollups import SUMS, day_bounds, rollups_ensure, rows_of_day

# A grouping's name → its column on both the rows and the roll-ups.
GROUPINGS = {
    "day": "day",
    "user": "user_id",
    "tier": "tier_id",
    "model": "model_id",
    "provider": "provider",
    "kind": "kind",
    "byok": "byok",
}
TOTALS = ("requests", "errors", "input_tokens", "output_tokens", "reasoning_tokens", "cost")


@dataclass
class UsageLine:
    key: dict[str, Any]
    label: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cost: Decimal = Decimal(0)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, row: dict[str, Any]) -> None:
        for name in TOTALS:
            setattr(self, name, getattr(self, name) + (row.get(name) or 0))


def _today(now: datetime | None) -> date:
    return timezone.localdate(now or timezone.now())


def usage_totals(*, first: date, last: date, group_by: Sequence[str], now: datetime | None = None) -> list[UsageLine]:
    """Totals over [first, last] grouped by `group_by` (names of GROUPINGS), dearest first."""
    columns = [GROUPINGS[name] for name in group_by]
    today = _today(now)
    rollups_ensure(first=first, last=last, now=now)
    lines: dict[tuple, UsageLine] = {}

    def merge(rows: Any) -> None:
        for row in rows:
            key = tuple(row[column] for column in columns)
            line = lines.get(key)
            if line is None:
                line = lines[key] = UsageLine(key=dict(zip(group_by, key, strict=True)))
            line.add(row)

    past_last = min(last, today - timedelta(days=1))
    if first <= past_last:
        sums = {name: Sum(name) for name in TOTALS}
        merge(UsageDaily.objects.filter(day__range=(first, past_last)).values(*columns).annotate(**sums).order_by())
    if first <= today <= last:
        rows = rows_of_day(today).annotate(day=Value(today, output_field=DateField()))
        merge(rows.values(*columns).annotate(**{name: SUMS[name] for name in TOTALS}).order_by())
    result = sorted(lines.values(), key=lambda line: (-line.cost, -line.tokens, str(line.key)))
    _label(result)
    return result


def _label(lines: list[UsageLine]) -> None:
    """Readable names for users and tiers (one query each)."""
    user_ids = {line.key["user"] for line in lines if line.key.get("user") is not None}
    tier_ids = {line.key["tier"] for line in lines if line.key.get("tier") is not None}
    users = {user.pk: str(user) for user in User.objects.filter(pk__in=user_ids).only("pk", "email", "is_guest")}
    tiers = dict(Tier.objects.filter(pk__in=tier_ids).values_list("pk", "name"))
    for line in lines:
        for name, value in line.key.items():
            if name == "user":
                line.label[name] = "(deleted user)" if value is None else users.get(value, f"(deleted #{value})")
            elif name == "tier":
                line.label[name] = "(none)" if value is None else tiers.get(value, f"(deleted tier #{value})")
            elif name == "byok":
                line.label[name] = "byok" if value else "platform"
            else:
                line.label[name] = str(value) if value not in (None, "") else "-"


def active_users(*, first: date, last: date, now: datetime | None = None) -> int:
    """Distinct users with any generation in [first, last]."""
    today = _today(now)
    rollups_ensure(first=first, last=last, now=now)
    start, _ = day_bounds(today)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT count(*) FROM (
                    SELECT user_id FROM {UsageDaily._meta.db_table}
                    WHERE day BETWEEN %s AND %s AND day < %s AND user_id IS NOT NULL
                    UNION
                    SELECT user_id FROM {UsageRecord._meta.db_table}
                    WHERE %s BETWEEN %s AND %s AND created_at >= %s AND user_id IS NOT NULL
                ) AS active""",
            [first, last, today, today, first, last, start],
        )
        return int(cursor.fetchone()[0])


# --- Time to first token ------------------------------------------------------------------------
def histogram_percentile(histogram: Sequence[int], fraction: float) -> int | None:
    """The upper bound (ms) of the histogram bucket holding the `fraction` quantile; None when
    empty; the last bound for the open bucket above it."""
    total = sum(histogram)
    if not total:
        return None
    rank = fraction * total
    seen = 0
    for index, count in enumerate(histogram):
        seen += count
        if seen >= rank:
            return TTFT_BOUNDS_MS[min(index, len(TTFT_BOUNDS_MS) - 1)]
    return TTFT_BOUNDS_MS[-1]


def ttft_histograms_by_provider(*, first: date, last: date) -> dict[str, list[int]]:
    """Summed roll-up histograms per provider over [first, last] (past days)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT provider, bucket.idx, sum(bucket.n)
                FROM {UsageDaily._meta.db_table}, unnest(ttft_histogram) WITH ORDINALITY AS bucket(n, idx)
                WHERE day BETWEEN %s AND %s GROUP BY provider, bucket.idx""",
            [first, last],
        )
        histograms: dict[str, list[int]] = defaultdict(lambda: [0] * (len(TTFT_BOUNDS_MS) + 1))
        for provider, index, count in cursor.fetchall():
            histograms[provider][index - 1] += int(count)
    return dict(histograms)


def ttft_exact_by_provider(*, day: date) -> dict[str, tuple[int | None, int | None]]:
    """Exact p50 and p95 (ms) per provider from one day's rows (today's, for the dashboard)."""
    start, end = day_bounds(day)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT provider,
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY ttft_ms),
                       percentile_cont(0.95) WITHIN GROUP (ORDER BY ttft_ms)
                FROM {UsageRecord._meta.db_table}
                WHERE created_at >= %s AND created_at < %s AND ttft_ms IS NOT NULL
                GROUP BY provider""",
            [start, end],
        )
        return {row[0]: (round(row[1]), round(row[2])) for row in cursor.fetchall()}
