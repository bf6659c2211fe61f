"""Catalog changes made through the ORM replace the catalog's version (`providers.catalogcache`)."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import m2m_changed, post_delete, post_save

from providers.catalogcache import catalog_changed
from providers.models import Model, ModelProvider, Provider, TierAccess

CATALOG_MODELS = (Model, ModelProvider, Provider, TierAccess)


def _changed(**kwargs: Any) -> None:
    catalog_changed()


def connect() -> None:
    for model in CATALOG_MODELS:
        post_save.connect(_changed, sender=model, dispatch_uid=f"catalog-saved-{model.__name__}")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"catalog-deleted-{model.__name__}")
    m2m_changed.connect(_changed, sender=TierAccess.allowed_models.through, dispatch_uid="catalog-tier-models")
