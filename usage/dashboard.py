"""What the admin dashboard shows, read in a bounded number of queries whatever the volume:
today and the last 30 days (messages, active users, tokens and spend by model, provider and
tier), per provider the error rate, p50/p95 time to first token and circuit-breaker state, and
the generations running now."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.contrib.postgres.fields import ArrayField
from django.db.models import Count, IntegerField, Value
from django.utils import timezone

from providers.breaker import breaker_state
from providers.models import Provider
from usage.models import TTFT_BOUNDS_MS
from usage.selectors import (
    UsageLine,
    active_users,
    histogram_percentile,
    ttft_exact_by_provider,
    ttft_histograms_by_provider,
    usage_totals,
)
from usage.services.rollups import WidthBucket, rows_of_day

DAYS = 30
TOP = 10  # models, providers and tiers shown per chart


@dataclass(frozen=True)
class Summary:
    messages: int
    active_users: int
    tokens: int
    spend: Decimal
    requests: int
    errors: int


@dataclass(frozen=True)
class ProviderHealth:
    slug: str
    name: str
    breaker: str
    requests_today: int
    error_rate_today: float | None
    p50_today: int | None
    p95_today: int | None
    requests_30d: int
    error_rate_30d: float | None
    p50_30d: int | None  # upper bound of the histogram bucket
    p95_30d: int | None


@dataclass(frozen=True)
class DashboardData:
    today: date
    first: date
    summary_today: Summary
    summary_30d: Summary
    daily: list[tuple[date, Decimal, int]]  # day, spend, messages
    models_today: list[UsageLine]
    models_30d: list[UsageLine]
    providers_30d: list[UsageLine]
    tiers_30d: list[UsageLine]
    providers: list[ProviderHealth]
    running: int
    extra: dict[str, object] = field(default_factory=dict)


def _summary(lines: list[UsageLine], users: int) -> Summary:
    return Summary(
        messages=sum(line.requests for line in lines if line.key.get("kind") == "chat"),
        active_users=users,
        tokens=sum(line.tokens for line in lines),
        spend=sum((line.cost for line in lines), Decimal(0)),
        requests=sum(line.requests for line in lines),
        errors=sum(line.errors for line in lines),
    )


def _rate(errors: int, requests: int) -> float | None:
    return errors / requests if requests else None


# What is being generated now is not in usage's rows (a generation writes its row when it ends):
# the apps that run generations register a counter here from their AppConfig.ready(). chat
# counts its replies being written; usage never imports chat.
RUNNING_COUNTERS: dict[str, Callable[[], int]] = {}


def running_counter_register(name: str, counter: Callable[[], int]) -> None:
    """Count `name`'s generations running now on the dashboard (one cheap query, please)."""
    RUNNING_COUNTERS[name] = counter


def generations_running() -> int:
    """Generations being written now, in every process: the registered counters summed."""
    return sum(counter() for counter in RUNNING_COUNTERS.values())


def dashboard_data(*, now: datetime | None = None) -> DashboardData:
    now = now or timezone.now()
    today = timezone.localdate(now)
    first = today - timedelta(days=DAYS - 1)
    by_day_kind = usage_totals(first=first, last=today, group_by=["day", "kind"], now=now)
    today_lines = [line for line in by_day_kind if line.key["day"] == today]
    spend: dict[date, Decimal] = {}
    messages: dict[date, int] = {}
    for line in by_day_kind:
        spend[line.key["day"]] = spend.get(line.key["day"], Decimal(0)) + line.cost
        if line.key["kind"] == "chat":
            messages[line.key["day"]] = messages.get(line.key["day"], 0) + line.requests
    daily = [
        (day, spend.get(day, Decimal(0)), messages.get(day, 0))
        for day in (first + timedelta(days=offset) for offset in range(DAYS))
    ]
    providers_30d = usage_totals(first=first, last=today, group_by=["provider"], now=now)
    providers_today = {
        line.key["provider"]: line for line in usage_totals(first=today, last=today, group_by=["provider"], now=now)
    }
    return DashboardData(
        today=today,
        first=first,
        summary_today=_summary(today_lines, active_users(first=today, last=today, now=now)),
        summary_30d=_summary(by_day_kind, active_users(first=first, last=today, now=now)),
        daily=daily,
        models_today=usage_totals(first=today, last=today, group_by=["model"], now=now)[:TOP],
        models_30d=usage_totals(first=first, last=today, group_by=["model"], now=now)[:TOP],
        providers_30d=providers_30d[:TOP],
        tiers_30d=usage_totals(first=first, last=today, group_by=["tier"], now=now)[:TOP],
        providers=_provider_health(
            today, first, providers_today, {line.key["provider"]: line for line in providers_30d}
        ),
        running=generations_running(),
    )


def _provider_health(
    today: date, first: date, lines_today: dict[str, UsageLine], lines_30d: dict[str, UsageLine]
) -> list[ProviderHealth]:
    exact_today = ttft_exact_by_provider(day=today)
    # Past days from the roll-ups' histograms, today's rows added bucket by bucket.
    histograms = ttft_histograms_by_provider(first=first, last=today - timedelta(days=1))
    today_histograms = _today_histograms(today)
    for slug, counts in today_histograms.items():
        merged = histograms.setdefault(slug, [0] * len(counts))
        histograms[slug] = [a + b for a, b in zip(merged, counts, strict=True)]
    names = dict(Provider.objects.values_list("slug", "name"))
    busy = {slug: line.requests for slug, line in lines_30d.items()}
    slugs = sorted((set(names) | set(busy)) - {""}, key=lambda slug: (-busy.get(slug, 0), slug))
    health = []
    for slug in slugs:
        line_today, line_30d = lines_today.get(slug) or UsageLine({}), lines_30d.get(slug) or UsageLine({})
        p50, p95 = exact_today.get(slug, (None, None))
        histogram = histograms.get(slug, [])
        health.append(
            ProviderHealth(
                slug=slug,
                name=names.get(slug, slug),
                breaker=str(breaker_state(slug)),
                requests_today=line_today.requests,
                error_rate_today=_rate(line_today.errors, line_today.requests),
                p50_today=p50,
                p95_today=p95,
                requests_30d=line_30d.requests,
                error_rate_30d=_rate(line_30d.errors, line_30d.requests),
                p50_30d=histogram_percentile(histogram, 0.5),
                p95_30d=histogram_percentile(histogram, 0.95),
            )
        )
    return health


def _today_histograms(today: date) -> dict[str, list[int]]:
    bounds = Value(list(TTFT_BOUNDS_MS), output_field=ArrayField(IntegerField()))
    counts = (
        rows_of_day(today)
        .exclude(ttft_ms=None)
        .annotate(bucket=WidthBucket("ttft_ms", bounds))
        .values("provider", "bucket")
        .annotate(n=Count("id"))
        .order_by()
    )
    histograms: dict[str, list[int]] = {}
    for row in counts:
        histograms.setdefault(row["provider"], [0] * (len(TTFT_BOUNDS_MS) + 1))[row["bucket"]] += row["n"]
    return histograms
