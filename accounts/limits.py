"""Per-tier rate limits: two token buckets per user in PostgreSQL, one counting messages sent
and one counting model tokens (input + output). A tier sets each bucket's capacity (the burst)
and refill rate per minute; zero capacity means no access at all. The limits apply to every
model, BYOK ones included (BYOK skips the tier's model list, not these limits).

Exactness: every change to a bucket is ONE statement, `INSERT … ON CONFLICT (user_id, kind)
DO UPDATE … WHERE … RETURNING`. PostgreSQL takes the row lock before it evaluates the update,
so concurrent changes to one bucket queue on that lock and each sees the level the previous
one committed: 50 concurrent takes from a full bucket of 10 with no refill allow exactly 10.
The refill is computed inside the statement from the database clock (`clock_timestamp()`),
so the clocks of the web processes never matter. A missing row is a full bucket; the first
change creates it. The tier is read in the same statement, so tier changes (a new tier, new
numbers) apply to the next change; the refill since the bucket's last change is then counted at
the new rate, and a level above a lowered capacity is cut to it.

(`accounts.ratelimit` is a different thing: Redis buckets keyed by IP for guest creation and
sign-in, before there is a user or a tier.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction

from accounts.models import Tier, UsageBucket, User

MESSAGES = UsageBucket.Kind.MESSAGES
TOKENS = UsageBucket.Kind.TOKENS

# kind → (capacity column, refill-per-minute column) on the tier. Fixed names, never user input.
_TIER_COLUMNS: dict[str, tuple[str, str]] = {
    MESSAGES: ("message_capacity", "messages_per_minute"),
    TOKENS: ("token_capacity", "tokens_per_minute"),
}

# The user's current tier numbers for one kind (a rate per second).
_RULE = """
rule AS (
    SELECT tier.{capacity}::double precision AS capacity,
           tier.{per_minute}::double precision / 60 AS rate
    FROM {user_table} AS member JOIN {tier_table} AS tier ON tier.id = member.tier_id
    WHERE member.id = %(user_id)s
)"""

# The level at `at`: the stored level plus the refill since updated_at, capped at capacity.
_REFILLED = """LEAST(
    (SELECT capacity FROM rule),
    bucket.tokens + (SELECT rate FROM rule)
        * GREATEST(0, EXTRACT(EPOCH FROM {at} - bucket.updated_at)::double precision)
)"""

# Apply `delta` (positive takes, negative gives back) to one bucket, capped at capacity.
# With `require`, only when the bucket is open (capacity > 0) and holds `delta`: otherwise no
# row is written and none returned. The clock is read once, into EXCLUDED.updated_at, before any
# wait for the lock; GREATEST keeps updated_at from moving back past a change committed during
# that wait (the waiter is credited no refill for its wait, never refill twice).
_APPLY = (
    "WITH"
    + _RULE
    + """
INSERT INTO {bucket_table} AS bucket (user_id, kind, tokens, updated_at)
SELECT %(user_id)s, %(kind)s, LEAST(rule.capacity, rule.capacity - %(delta)s::double precision),
       COALESCE(%(now)s::timestamptz, clock_timestamp())
FROM rule
WHERE NOT %(require)s OR (rule.capacity > 0 AND rule.capacity >= %(delta)s::double precision)
ON CONFLICT (user_id, kind) DO UPDATE
SET tokens = LEAST((SELECT capacity FROM rule), {refilled_at_excluded} - %(delta)s::double precision),
    updated_at = GREATEST(bucket.updated_at, EXCLUDED.updated_at)
WHERE NOT %(require)s
   OR ((SELECT capacity FROM rule) > 0 AND {refilled_at_excluded} >= %(delta)s::double precision)
RETURNING bucket.tokens
"""
)

# Read one bucket without changing it: (capacity, rate per second, level now). No row: full.
_LEVEL = (
    "WITH"
    + _RULE
    + """
SELECT rule.capacity, rule.rate, COALESCE({refilled_now}, rule.capacity)
FROM rule LEFT JOIN {bucket_table} AS bucket ON bucket.user_id = %(user_id)s AND bucket.kind = %(kind)s
"""
)


@dataclass(frozen=True)
class LimitDecision:
    """The answer of a bucket. `retry_after_seconds` is 0 when allowed, and for a refusal the
    wait until the bucket holds the amount at the tier's refill rate: `math.inf` when it never
    will (zero capacity, zero rate, or more than the capacity asked for). `remaining` is the
    level after the change (after a refusal: the level now, unchanged). `kind` names the bucket
    that decided (for turn_admit: the one that refused, or messages when admitted)."""

    allowed: bool
    retry_after_seconds: float
    remaining: float
    kind: str = MESSAGES


def _sql(template: str, *, kind: str) -> str:
    capacity, per_minute = _TIER_COLUMNS[kind]
    return template.format(
        capacity=capacity,
        per_minute=per_minute,
        user_table=User._meta.db_table,
        tier_table=Tier._meta.db_table,
        bucket_table=UsageBucket._meta.db_table,
        refilled_at_excluded=_REFILLED.format(at="EXCLUDED.updated_at"),
        refilled_now=_REFILLED.format(at="COALESCE(%(now)s::timestamptz, clock_timestamp())"),
    )


def _apply(*, user: User, kind: str, delta: float, require: bool, now: datetime | None) -> float | None:
    """The bucket's new level, or None when `require` refused (nothing written)."""
    if kind not in _TIER_COLUMNS:
        raise ValueError(f"unknown bucket kind {kind!r}")
    params = {"user_id": user.pk, "kind": str(kind), "delta": float(delta), "require": require, "now": now}
    with connection.cursor() as cursor:
        cursor.execute(_sql(_APPLY, kind=kind), params)
        row = cursor.fetchone()
    return None if row is None else float(row[0])


def _refusal(*, user: User, kind: str, amount: float, now: datetime | None) -> LimitDecision:
    """Why a take was refused and how long to wait. A fresh read, after the refusing statement:
    advisory only (another request may take the refill first)."""
    params = {"user_id": user.pk, "kind": str(kind), "now": now}
    with connection.cursor() as cursor:
        cursor.execute(_sql(_LEVEL, kind=kind), params)
        row = cursor.fetchone()
    if row is None:  # the user is gone
        return LimitDecision(allowed=False, retry_after_seconds=math.inf, remaining=0.0, kind=kind)
    capacity, rate, level = (float(value) for value in row)
    never = capacity <= 0 or rate <= 0 or amount > capacity
    wait = math.inf if never else max(0.0, (amount - level) / rate)
    return LimitDecision(allowed=False, retry_after_seconds=wait, remaining=level, kind=kind)


def _check_amount(amount: float) -> None:
    if amount < 0 or math.isnan(amount):
        raise ValueError(f"a bucket amount cannot be negative, got {amount!r}")


def limit_take(*, user: User, kind: str, amount: float = 1, now: datetime | None = None) -> LimitDecision:
    """Take `amount` from the user's `kind` bucket if it holds that much after refilling, else
    refuse and change nothing. Exact under concurrency (one statement, see the module doc).
    `now` replaces the database clock (tests, replays); leave it None in production."""
    _check_amount(amount)
    level = _apply(user=user, kind=kind, delta=amount, require=True, now=now)
    if level is None:
        return _refusal(user=user, kind=kind, amount=amount, now=now)
    return LimitDecision(allowed=True, retry_after_seconds=0.0, remaining=level, kind=kind)


def limit_refund(*, user: User, kind: str, amount: float, now: datetime | None = None) -> LimitDecision:
    """Give `amount` back (a reservation that was not all used), never past the capacity."""
    _check_amount(amount)
    level = _apply(user=user, kind=kind, delta=-amount, require=False, now=now)
    return LimitDecision(allowed=True, retry_after_seconds=0.0, remaining=level or 0.0, kind=kind)


def limit_charge(*, user: User, kind: str, amount: float, now: datetime | None = None) -> LimitDecision:
    """Take `amount` unconditionally: real usage booked after the fact. The level may go below
    zero; the debt is paid off by the refill before the next take can succeed."""
    _check_amount(amount)
    level = _apply(user=user, kind=kind, delta=amount, require=False, now=now)
    return LimitDecision(allowed=True, retry_after_seconds=0.0, remaining=level or 0.0, kind=kind)


def turn_admit(*, user: User, estimated_tokens: int, now: datetime | None = None) -> LimitDecision:
    """Admit one chat turn: take 1 message AND reserve `estimated_tokens`, or neither.

    Both takes run in one transaction (a savepoint when the caller already has one); when the
    token take refuses, the message take is rolled back, so the message bucket is exactly as
    it was (an exact refund). The messages row stays locked until the transaction ends, so keep
    the caller's transaction short. Locks are always taken messages-then-tokens: no deadlocks.

    Returns the refusing bucket's decision (kind says which), or when admitted the messages
    decision (remaining = messages left). After the turn, settle the reservation against the
    real usage: limit_refund the unused part, or limit_charge the excess.
    """
    with transaction.atomic():
        message = limit_take(user=user, kind=MESSAGES, amount=1, now=now)
        if not message.allowed:
            return message
        tokens = limit_take(user=user, kind=TOKENS, amount=estimated_tokens, now=now)
        if not tokens.allowed:
            transaction.set_rollback(True)
            return tokens
    return message
