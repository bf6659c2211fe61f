"""Spend quotas: money per day and per calendar month a user may spend on platform models.

Admission (`spend_admit`: the SQL function `usage_spend_admit`, migration 0003) reserves the
turn's estimated cost in the user's ledger row of the day and of the month, each with ONE
statement, `INSERT … ON CONFLICT DO UPDATE … WHERE spent + reserved + amount <= limit`:
PostgreSQL takes the row lock before it evaluates the condition, so concurrent turns queue on
the lock and each sees what the previous one committed; 50 parallel turns of 0.07 against a
limit of 1.00 admit exactly 14. Day before month, always (no deadlocks); a month refusal rolls
the day's reservation back (a subtransaction). The locks are held until the caller's
transaction ends: `chat.services.turns` keeps it short.

Settlement (the SQL function `usage_spend_settle`, migration 0004: `quota_settle`, and
`usage_record` or a reply's save with the usage row) releases the reservation and books the
real cost into the same day and month rows, unconditionally: a reply may cost more than its
estimate and push `spent` past the limit; the next turn is then refused until the reset. So a
limit is exact at admission, and overshot by at most the excess of the turns running then.

Periods are calendar days and months in `TIME_ZONE`. BYOK turns and free models reserve
nothing and are never refused for money.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.utils import timezone

from accounts.models import User
from usage.models import Period, QuotaOverride, SpendLedger, TierQuota

# Keys of the reservation in the dict a turn keeps on its reply placeholder (message.reservation);
# `usage_spend_settle` (migration 0004) reads them by these names.
RESERVED_KEY = "spend_reserved"
DAY_KEY = "spend_day"
MONTH_KEY = "spend_month"


@dataclass(frozen=True)
class SpendLimits:
    daily: Decimal | None
    monthly: Decimal | None
    active: bool = True
    overridden: bool = False


class AccountDisabled(Exception):
    """The user was disabled by an operator."""


class QuotaExceeded(Exception):
    def __init__(self, *, period: str, limit: Decimal, resets_at: datetime, now: datetime) -> None:
        self.period = period
        self.limit = limit
        self.resets_at = resets_at
        self.retry_after = max(0, math.ceil((resets_at - now).total_seconds()))
        self.message = (
            f"You have reached your {'daily' if period == Period.DAY else 'monthly'} spending limit "
            f"({money(limit)}). It resets at {timezone.localtime(resets_at):%Y-%m-%d %H:%M %Z}, "
            f"in {_duration(self.retry_after)}."
        )
        super().__init__(self.message)


def money(amount: Decimal) -> str:
    return f"${amount:,.2f}" if amount >= Decimal("0.01") or amount == 0 else f"${amount:.6f}"


def _duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes = max(1, math.ceil(rest / 60)) if hours == 0 else rest // 60
    if hours >= 48:
        return f"{hours // 24} days"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


# --- Periods ------------------------------------------------------------------------------------
def period_starts(now: datetime | None = None) -> tuple[date, date]:
    """(today, the first of this month) in TIME_ZONE."""
    today = timezone.localdate(now or timezone.now())
    return today, today.replace(day=1)


def period_reset(period: str, start: date) -> datetime:
    """When a period that began on `start` ends (local midnight), as an aware datetime."""
    if period == Period.DAY:
        end = start + timedelta(days=1)
    else:
        end = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return timezone.make_aware(datetime.combine(end, time.min))


# --- Limits ---------------------------------------------------------------------------------------
# The rules are SQL functions (migration usage 0003): a chat turn's admission runs them in its own
# statement, so they live in one place. Read on every turn: one statement of constant text.
_LIMITS = "SELECT active, daily, monthly, overridden FROM usage_spend_limits(%s, %s)"
_ADMIT = "SELECT refused, spend_limit FROM usage_spend_admit(%s, %s, %s, %s, %s)"


def spend_limits_for(*, user_id: int, now: datetime | None = None) -> SpendLimits:
    """The user's limits now: the tier's, replaced field by field by a live override. One query."""
    with connection.cursor() as cursor:
        cursor.execute(_LIMITS, [user_id, now or timezone.now()])
        row = cursor.fetchone()
    if row is None:
        return SpendLimits(daily=None, monthly=None, active=False)
    active, daily, monthly, overridden = row
    return SpendLimits(daily=daily, monthly=monthly, active=active, overridden=overridden)


# --- Admission and settlement -------------------------------------------------------------------
def spend_admit(*, user: User, amount: Decimal, now: datetime | None = None) -> dict[str, str]:
    """Admit a turn estimated to cost `amount` on platform models: reserve it in the day and
    the month, or raise QuotaExceeded (nothing reserved) or AccountDisabled. Returns the
    reservation to keep with the turn and hand to `usage_record` when the reply is saved ({}
    when nothing was reserved: a free model or BYOK, amount 0). Run it in the turn's
    transaction: the ledger rows stay locked until it ends. One statement (`usage_spend_admit`)."""
    now = now or timezone.now()
    today, month = period_starts(now)
    with connection.cursor() as cursor:
        cursor.execute(_ADMIT, [user.pk, amount, today, month, now])
        refused, limit = cursor.fetchone()
    spend_refusal_raise(refused, limit, starts=(today, month), now=now)
    return spend_reservation(amount, starts=(today, month))


def spend_reservation(amount: Decimal, *, starts: tuple[date, date]) -> dict[str, str]:
    """What a turn admitted for `amount` keeps with it ({} for nothing reserved)."""
    if amount <= 0:
        return {}
    return {RESERVED_KEY: str(amount), DAY_KEY: starts[0].isoformat(), MONTH_KEY: starts[1].isoformat()}


def spend_refusal_raise(
    refused: str | None, limit: Decimal | None, *, starts: tuple[date, date], now: datetime
) -> None:
    """Raise what `usage_spend_admit` refused (`refused` None: admitted, nothing raised)."""
    if refused is None:
        return
    if refused == "disabled":
        raise AccountDisabled
    assert limit is not None  # no limit never refuses
    start = starts[0] if refused == Period.DAY else starts[1]
    raise QuotaExceeded(period=refused, limit=limit, resets_at=period_reset(refused, start), now=now)


_SETTLE = "SELECT usage_spend_settle(%s::bigint, %s::jsonb, %s::numeric, %s::date, %s::date)"


def quota_settle(*, user_id: int, reservation: dict[str, Any] | None, cost: Decimal) -> None:
    """Release a turn's reservation (if any) and book `cost` to its day and month (without a
    reservation: today and this month). Unconditional: real usage is booked even past a limit.
    One statement, `usage_spend_settle` (migration 0004), which `usage_record` runs too."""
    today, month = period_starts()
    with connection.cursor() as cursor:
        cursor.execute(_SETTLE, [user_id, json.dumps(reservation or {}), cost, today, month])


def quota_release(*, user_id: int, reservation: dict[str, Any] | None) -> None:
    """Give a reservation back with nothing spent (a turn that never ran)."""
    quota_settle(user_id=user_id, reservation=reservation, cost=Decimal(0))


# --- Reading ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SpendStatus:
    limits: SpendLimits
    spent_today: Decimal
    spent_month: Decimal
    reserved: Decimal


def spend_status(*, user_id: int, now: datetime | None = None) -> SpendStatus:
    today, month = period_starts(now)
    rows = {
        (row.period, row.start): row
        for row in SpendLedger.objects.filter(user_id=user_id, start__in=[today, month], period__in=Period.values)
    }
    day, mon = rows.get((Period.DAY, today)), rows.get((Period.MONTH, month))
    return SpendStatus(
        limits=spend_limits_for(user_id=user_id, now=now),
        spent_today=day.spent if day else Decimal(0),
        spent_month=mon.spent if mon else Decimal(0),
        reserved=mon.reserved if mon else Decimal(0),
    )


def tier_quota_set(*, tier_id: int, daily: Decimal | None, monthly: Decimal | None) -> TierQuota:
    quota, _ = TierQuota.objects.update_or_create(
        tier_id=tier_id, defaults={"daily_limit": daily, "monthly_limit": monthly}
    )
    return quota


def quota_override_grant(
    *,
    user: User,
    granted_by: User | None,
    daily: Decimal | None = None,
    monthly: Decimal | None = None,
    unlimited: bool = False,
    expires_at: datetime | None = None,
    note: str = "",
) -> QuotaOverride:
    override, _ = QuotaOverride.objects.update_or_create(
        user=user,
        defaults={
            "daily_limit": daily,
            "monthly_limit": monthly,
            "unlimited": unlimited,
            "expires_at": expires_at,
            "note": note,
            "granted_by": granted_by,
        },
    )
    return override


def ledger_prune(*, before: date) -> int:
    """Drop ledger rows of periods that began before `before` (only current periods matter)."""
    deleted, _ = SpendLedger.objects.filter(start__lt=before).delete()
    return deleted


# A guest's spend this day and month counts against the account they sign in to, as their usage
# rows do. A guest row still holding a running turn's reservation stays (with its spend moved),
# so that turn's settlement finds it.
_MERGE_SPENT = """
INSERT INTO {table} AS ledger (user_id, period, start, spent, reserved)
SELECT %(target)s, period, start, spent, 0 FROM {table} WHERE user_id = %(guest)s AND spent > 0
ON CONFLICT (user_id, period, start) DO UPDATE SET spent = ledger.spent + EXCLUDED.spent
"""


def quota_ledger_merge(*, guest_id: int, target_id: int) -> None:
    """Move a guest's spend to `target`'s ledger (called when a guest signs in)."""
    table = SpendLedger._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(_MERGE_SPENT.format(table=table), {"guest": guest_id, "target": target_id})
    SpendLedger.objects.filter(user_id=guest_id, reserved=0).delete()
    SpendLedger.objects.filter(user_id=guest_id).update(spent=0)
