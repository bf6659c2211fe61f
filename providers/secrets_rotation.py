"""Re-encrypt every stored secret under the newest SECRET_ENCRYPTION_KEYS key.

Run after putting a new key first in SECRET_ENCRYPTION_KEYS (keeping the old ones after it);
once it has run, the old keys can be removed. Each table is rotated in its own transaction with
its rows locked, so a key saved concurrently is either rotated or already under the newest key.
A secret no configured key can read is left as it is and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import models, transaction

from providers.catalogcache import catalog_changed
from providers.models import Provider, UserCustomProvider, UserProviderKey
from providers.secrets import SecretUnreadable, rotate_secret

ENCRYPTED_FIELDS: tuple[tuple[type[models.Model], str], ...] = (
    (Provider, "api_key_encrypted"),
    (UserProviderKey, "api_key_encrypted"),
    (UserCustomProvider, "api_key_encrypted"),
)
BATCH_SIZE = 500


@dataclass
class RotationReport:
    rotated: dict[str, int] = field(default_factory=dict)
    unreadable: dict[str, int] = field(default_factory=dict)

    @property
    def total_rotated(self) -> int:
        return sum(self.rotated.values())

    @property
    def total_unreadable(self) -> int:
        return sum(self.unreadable.values())


def _rotate_table(model: type[models.Model], field_name: str) -> tuple[int, int]:
    rotated = unreadable = 0
    with transaction.atomic():
        rows = (
            model._default_manager.select_for_update().exclude(**{field_name: ""}).only("pk", field_name).order_by("pk")
        )
        batch: list[models.Model] = []
        for row in rows.iterator(chunk_size=BATCH_SIZE):
            try:
                setattr(row, field_name, rotate_secret(getattr(row, field_name)))
            except SecretUnreadable:
                unreadable += 1
                continue
            batch.append(row)
            if len(batch) >= BATCH_SIZE:
                model._default_manager.bulk_update(batch, [field_name])
                rotated += len(batch)
                batch = []
        if batch:
            model._default_manager.bulk_update(batch, [field_name])
            rotated += len(batch)
    return rotated, unreadable


def secrets_rotate() -> RotationReport:
    """Rotate every encrypted column; counts per table (`providers.UserProviderKey`, …)."""
    report = RotationReport()
    for model, field_name in ENCRYPTED_FIELDS:
        label = model._meta.label
        report.rotated[label], report.unreadable[label] = _rotate_table(model, field_name)
    catalog_changed()  # bulk_update sends no signal; the platform keys are in the catalog snapshot
    return report
