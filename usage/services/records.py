"""Recording what a generation used and cost."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db import connection, transaction
from django.utils import timezone

from accounts.limits import settle_statement
from accounts.models import User
from providers.catalogcache import catalog_snapshot
from providers.contract import Usage
from usage.models import Kind, SpendLedger, UsageRecord
from usage.services.quotas import quota_settlement

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
    placeholder, `message.usage` before the reply is saved): its spend part is released and the
    real cost booked to the same day and month, in the same transaction as the row. Without one
    (titles, suggestions, artifacts) the cost is booked to the current day and month. A user
    deleted meanwhile leaves the row anonymous. `tier_id`: the user's tier when the caller read it
    in the same transaction (a saved reply does); read here when not given. `tokens_settled`:
    tokens charged to the user's token bucket (negative: given back), in the same statement."""
    if kind not in Kind.values:
        raise ValueError(f"unknown usage kind {kind!r}")
    if byok:
        cost = Decimal(0)
    else:
        input_price, output_price = model_prices(model_id)
        cost = cost_of(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            input_price=input_price,
            output_price=output_price,
        )
    with transaction.atomic():
        if tier_id is TierUnknown:
            tier_id = User.objects.filter(pk=user_id).values_list("tier_id", flat=True).first()
        row = {
            "created_at": timezone.now(),
            "user_id": user_id if tier_id is not None else None,
            "tier_id": tier_id,
            "kind": kind,
            "chat_id": chat_id,
            "message_id": message_id,
            "model_id": model_id[:200],
            "provider": provider[:100],
            "input_tokens": max(0, usage.input_tokens),
            "output_tokens": max(0, usage.output_tokens),
            "reasoning_tokens": max(0, usage.reasoning_tokens),
            "cost": cost,
            "byok": byok,
            "ttft_ms": ttft_ms if ttft_ms is None else max(0, ttft_ms),
            "total_ms": total_ms if total_ms is None else max(0, total_ms),
            "outcome": str(outcome)[:40],
        }
        statements = [(_INSERT_RECORD, row)]
        if tier_id is not None:
            settlement = quota_settlement(user_id=user_id, reservation=reservation, cost=cost)
            if not settlement.empty:
                statements += [
                    (sql.format(table=SpendLedger._meta.db_table), params) for sql, params in settlement.statements()
                ]
        if tokens_settled:
            statements.append(settle_statement(user_id=user_id, delta=tokens_settled))
        sql, params = _as_one_statement(statements)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


_RECORD_COLUMNS = (
    "created_at",
    "user_id",
    "tier_id",
    "kind",
    "chat_id",
    "message_id",
    "model_id",
    "provider",
    "input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cost",
    "byok",
    "ttft_ms",
    "total_ms",
    "outcome",
)
_INSERT_RECORD = (
    f"INSERT INTO {UsageRecord._meta.db_table} ({', '.join(_RECORD_COLUMNS)}) "
    f"VALUES ({', '.join(f'%({column})s' for column in _RECORD_COLUMNS)})"
)
_PARAMETER = re.compile(r"%\((\w+)\)s")


def _as_one_statement(statements: list[tuple[str, dict[str, Any]]]) -> tuple[str, dict[str, Any]]:
    """Writes as one statement (each a CTE of its own): one round trip for the usage row, the
    ledger's day and month and the token bucket, which touch different rows. A data-modifying
    CTE always runs; a SELECT (a function call) only when read, so the last line reads them
    (and so runs them first: the bucket is locked before the ledger, as admission does)."""
    ctes: list[str] = []
    params: dict[str, Any] = {}
    reads: list[str] = []
    for index, (sql, values) in enumerate(statements):
        prefixed = _PARAMETER.sub(rf"%(w{index}_\1)s", sql)
        ctes.append(f"w{index} AS ({prefixed})")
        params.update({f"w{index}_{name}": value for name, value in values.items()})
        if sql.lstrip().upper().startswith("SELECT"):
            reads.append(f"(SELECT count(*) FROM w{index})")
    return f"WITH {', '.join(ctes)} SELECT {', '.join(reads) or '1'}", params
