"""Recording what a generation used and cost."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db import connection
from django.utils import timezone

from providers.catalogcache import catalog_snapshot
from providers.contract import Usage
from usage.models import Kind
from usage.services.quotas import period_starts

MILLION = Decimal(1_000_000)


class TierUnknown:
    """`usage_record(tier_id=TierUnknown)`: the caller does not know the user's tier."""


def cost_of(*, input_tokens: int, output_tokens: int, input_price: Decimal, output_price: Decimal) -> Decimal:
    """Money for these tokens at prices per million tokens (`output_tokens` includes reasoning,
    which vendors bill as output)."""
    return (Decimal(input_tokens) * Decimal(input_price) + Decimal(output_tokens) * Decimal(output_price)) / MILLION


def model_prices(model_id: str) -> tuple[Decimal, Decimal]:
    """A catalog model's (input, output) price per million tokens now; (0, 0) when the model is
    not in the catalog (a BYOK model, or one deleted meanwhile)."""
    model = catalog_snapshot().models.get(model_id)  # the process's catalog: no query while unchanged
    if model is None:
        return Decimal(0), Decimal(0)
    return Decimal(model.input_price_per_mtok), Decimal(model.output_price_per_mtok)


def usage_record(
    *,
    user_id: int,
    kind: str,
    model_id: str,
    provider: str,
    usage: Usage,
    chat_id: UUID | str | None = None,
    message_id: UUID | str | None = None,
    ttft_ms: int | None = None,
    total_ms: int | None = None,
    outcome: str = "complete",
    byok: bool = False,
    reservation: dict[str, Any] | None = None,
    tier_id: int | type[TierUnknown] | None = TierUnknown,
    tokens_settled: float = 0,
) -> None:
    """Record one generation: a usage row, and its cost booked to the user's spend ledger.

    The cost is computed from the model's prices now; a BYOK generation is recorded with cost 0
    (the user's key paid). `outcome` is "complete", "stopped" or an error code. `reservation` is
    what the turn reserved at admission (the dict `chat.services.turns` keeps on the reply's
    placeholder, `message.reservation` until the reply is saved): its spend part is released and
    the real cost booked to the same day and month, with the row. Without one (titles,
    suggestions, artifacts) the cost is booked to the current day and month. A user deleted
    meanwhile leaves the row anonymous. `tier_id`: the user's tier when the caller read it in the
    same transaction; read with the row when not given. `tokens_settled`: tokens charged to the
    user's token bucket (negative: given back). One statement, `usage_record_write` (migration
    0004): the rules are there, shared with a reply's save."""
    if kind not in Kind.values:
        raise ValueError(f"unknown usage kind {kind!r}")
    now = timezone.now()
    today, month = period_starts(now)
    known = tier_id is not TierUnknown
    with connection.cursor() as cursor:
        cursor.execute(
            _RECORD,
            [
                user_id,
                tier_id if known else None,
                known,
                kind,
                chat_id,
                message_id,
                model_id,
                provider,
                usage.input_tokens,
                usage.output_tokens,
                usage.reasoning_tokens,
                ttft_ms,
                total_ms,
                str(outcome),
                byok,
                json.dumps(reservation or {}),
                float(tokens_settled),
                now,
                today,
                month,
            ],
        )


_RECORD = (
    "SELECT usage_record_write(%s::bigint, %s::bigint, %s::boolean, %s::text, %s::uuid, %s::uuid, %s::text, %s::text,"
    " %s::bigint, %s::bigint, %s::bigint, %s::integer, %s::integer, %s::text, %s::boolean, %s::jsonb,"
    " %s::double precision, %s::timestamptz, %s::date, %s::date)"
)
