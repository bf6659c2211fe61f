"""Rows for usage tests: a priced model, usage rows at a given time."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from providers.models import Creator, Model
from usage.models import UsageRecord


def priced_model(model_id: str = "acme:large", *, input_price: str = "3", output_price: str = "15") -> Model:
    """A catalog model with prices per million tokens (no routes: usage needs none)."""
    creator, _ = Creator.objects.get_or_create(slug=model_id.split(":", maxsplit=1)[0], defaults={"name": "Acme"})
    return Model.objects.create(
        model_id=model_id,
        creator=creator,
        display_name=model_id,
        input_price_per_mtok=Decimal(input_price),
        output_price_per_mtok=Decimal(output_price),
    )


def usage_row(*, at: datetime, **fields: Any) -> UsageRecord:
    """A usage row written as of `at` (defaults: a complete chat reply on acme:large)."""
    values: dict[str, Any] = {
        "kind": "chat",
        "model_id": "acme:large",
        "provider": "acme",
        "input_tokens": 100,
        "output_tokens": 50,
        "cost": Decimal("0.001"),
        "outcome": "complete",
    }
    values.update(fields)
    if "user" in values and "tier" not in values and values["user"] is not None:
        values["tier"] = values["user"].tier
    return UsageRecord.objects.create(created_at=at, **values)
