"""Per-tier rate limits: two token buckets per user in PostgreSQL, one counting messages sent
and one counting model tokens (input + output). A tier sets each bucket's capacity (the burst)
and refill rate per minute; zero capacity means no access at all. The limits apply to every
model, BYOK ones included (BYOK skips the tier's model list, not these limits).

Exactness: every change to a bucket is ONE statement, `INSERT … ON CONFLICT (user_id, kind)
DO UPDATE … WHERE … RETURNING`, in the SQL function `accounts_bucket_change` (migration 0004),
which a chat turn's admission runs too. PostgreSQL takes the row lock before it evaluates the update,
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

from django.db import connection

from accounts.models import UsageBucket, User

MESSAGES = UsageBucket.Kind.MESSAGES
TOKENS = UsageBucket.Kind.TOKENS

# The rules are SQL functions (migration accounts 0004), so that a chat turn's admission runs
# them in its own single statement too: one place for them, one round trip of constant text.
KINDS = frozenset({MESSAGES, TOKENS})
_APPLY = "SELECT accounts_bucket_change(%s, %s, %s, %s, %s)"
_LEVEL = "SELECT capacity, rate, level FROM accounts_bucket_level(%s, %s, %s)"
_TURN_ADMIT = "SELECT refused, remaining, capacity, rate FROM accounts_turn_admit(%s, %s, %s)"


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


def _apply(*, user: User, kind: str, delta: float, require: bool, now: datetime | None) -> float | None:
    """The bucket's new level, or None when `require` refused (nothing written)."""
    if kind not in KINDS:
        raise ValueError(f"unknown bucket kind {kind!r}")
    with connection.cursor() as cursor:
        cursor.execute(_APPLY, [user.pk, str(kind), float(delta), require, now])
        (level,) = cursor.fetchone()
    return None if level is None else float(level)


def refusal_decision(
    *, kind: str, amount: float, capacity: float | None, rate: float | None, level: float | None
) -> LimitDecision:
    """A refusal with its wait, from the refusing bucket's numbers read after the refusing
    statement (advisory only: another request may take the refill first). No numbers: the user
    is gone."""
    if capacity is None or rate is None or level is None:
        return LimitDecision(allowed=False, retry_after_seconds=math.inf, remaining=0.0, kind=kind)
    capacity, rate, level = float(capacity), float(rate), float(level)
    never = capacity <= 0 or rate <= 0 or amount > capacity
    wait = math.inf if never else max(0.0, (amount - level) / rate)
    return LimitDecision(allowed=False, retry_after_seconds=wait, remaining=level, kind=kind)


def _refusal(*, user: User, kind: str, amount: float, now: datetime | None) -> LimitDecision:
    """Why a take was refused and how long to wait: a fresh read of the bucket."""
    with connection.cursor() as cursor:
        cursor.execute(_LEVEL, [user.pk, str(kind), now])
        row = cursor.fetchone()
    capacity, rate, level = row if row is not None else (None, None, None)
    return refusal_decision(kind=kind, amount=amount, capacity=capacity, rate=rate, level=level)


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

    One statement (`accounts_turn_admit`): when the token take refuses, the message take is
    rolled back (a subtransaction inside the function), so the message bucket is exactly as it
    was. The messages row stays locked until the caller's transaction ends, so keep it short.
    Locks are always taken messages-then-tokens: no deadlocks.

    Returns the refusing bucket's decision (kind says which), or when admitted the messages
    decision (remaining = messages left). After the turn, settle the reservation against the
    real usage: limit_refund the unused part, or limit_charge the excess (a generation's billing
    does it with its usage row, `accounts_bucket_change` called by `usage_record_write`).
    """
    _check_amount(estimated_tokens)
    with connection.cursor() as cursor:
        cursor.execute(_TURN_ADMIT, [user.pk, float(estimated_tokens), now])
        refused, remaining, capacity, rate = cursor.fetchone()
    return admission_decision(
        refused=refused, remaining=remaining, capacity=capacity, rate=rate, tokens=estimated_tokens
    )


def admission_decision(
    *, refused: str | None, remaining: float | None, capacity: float | None, rate: float | None, tokens: float
) -> LimitDecision:
    """`turn_admit`'s decision from what `accounts_turn_admit` returned (a chat turn's own
    statement returns the same four values)."""
    if refused is None:
        return LimitDecision(allowed=True, retry_after_seconds=0.0, remaining=float(remaining or 0.0), kind=MESSAGES)
    amount = 1 if refused == MESSAGES else tokens
    return refusal_decision(kind=refused, amount=amount, capacity=capacity, rate=rate, level=remaining)
