"""The platform catalog as each process holds it, so a warm turn routes without reading a row.

A snapshot (every model, its enabled routes with their providers, which tiers may use it, each
tier's default) is loaded in five queries and kept per process, tagged with the catalog's
version: a random token in Redis that every catalog change replaces. Each use reads the token
(one GET) and reloads the snapshot when it differs, so a change made anywhere (the admin, the
API, a command, another process) is seen by the very next turn in every process.

A change replaces the token twice: at once, and again when its transaction commits. The first
keeps this process from using its old snapshot inside the changing transaction; the second
covers a process that reloaded between the two, while the change was not yet visible to it.
A token, not a counter: Redis may lose the key (a flush, a restart), and a counter restarting
from zero could meet an old snapshot's number again; a lost key only costs one reload.

What a snapshot holds is the database's: keys from the environment and the demo's "auto" mode
are read at each use, as before. Users' own models and keys (BYOK) are not cached.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass

from django.db import transaction
from django_redis import get_redis_connection
from redis.exceptions import RedisError

from providers.models import Model, ModelProvider, Provider, TierAccess

logger = logging.getLogger(__name__)

VERSION_KEY = "arbor:catalog:version"


@dataclass(frozen=True)
class CatalogSnapshot:
    version: bytes | None
    models: dict[str, Model]  # by model id, disabled ones too (they answer "switched off")
    routes: dict[int, tuple[ModelProvider, ...]]  # by model pk: enabled, provider enabled, by priority
    demo: frozenset[int]  # pks of models with any route to a demo provider
    tiers: dict[int, frozenset[int]]  # model pk → the tiers that may use it
    tier_defaults: dict[int, int | None]  # tier id → its default model's pk
    providers: tuple[Provider, ...]


_lock = threading.Lock()
_snapshot: CatalogSnapshot | None = None


def catalog_changed() -> None:
    """Call after changing catalog rows in a way Django's signals do not report (`update()`,
    `bulk_update()`, raw SQL). Saves and deletes through the ORM call it by themselves."""
    connection = get_redis_connection("default")
    connection.set(VERSION_KEY, uuid.uuid4().hex)
    transaction.on_commit(lambda: get_redis_connection("default").set(VERSION_KEY, uuid.uuid4().hex))


def catalog_snapshot() -> CatalogSnapshot:
    """The current catalog: this process's snapshot while the version is unchanged."""
    global _snapshot  # noqa: PLW0603 - the process's one cache
    try:
        version = get_redis_connection("default").get(VERSION_KEY)
    except RedisError:
        # Redis is gone: no change can be announced meanwhile either, so the snapshot this
        # process holds is as current as any. Without one, read the catalog and mark it unread,
        # so the first read of the version once Redis is back replaces it.
        logger.warning("catalog: the version could not be read from Redis; using this process's snapshot")
        return _snapshot if _snapshot is not None else _load(_UNREAD)
    snapshot = _snapshot
    if snapshot is not None and snapshot.version == version:
        return snapshot
    with _lock:
        if _snapshot is not None and _snapshot.version == version:
            return _snapshot
        _snapshot = _load(version)
        return _snapshot


def catalog_forget() -> None:
    """Drop this process's snapshot (tests whose rolled-back rows no signal reported)."""
    global _snapshot  # noqa: PLW0603
    with _lock:
        _snapshot = None


_UNREAD = b"\x00unread"  # no token Redis holds looks like this


def _load(version: bytes | None) -> CatalogSnapshot:
    models = {model.model_id: model for model in Model.objects.all()}
    routes: dict[int, list[ModelProvider]] = defaultdict(list)
    demo: set[int] = set()
    for route in ModelProvider.objects.select_related("provider").order_by("priority", "id"):
        if route.provider.protocol == "demo":
            demo.add(route.model_id)
        if route.enabled and route.provider.enabled:
            routes[route.model_id].append(route)
    tiers: dict[int, set[int]] = defaultdict(set)
    through = TierAccess.allowed_models.through.objects.values_list("tieraccess__tier_id", "model_id")
    for tier_id, model_pk in through:
        tiers[model_pk].add(tier_id)
    defaults = dict(TierAccess.objects.values_list("tier_id", "default_model_id"))
    return CatalogSnapshot(
        version=version,
        models=models,
        routes={pk: tuple(found) for pk, found in routes.items()},
        demo=frozenset(demo),
        tiers={pk: frozenset(found) for pk, found in tiers.items()},
        tier_defaults=defaults,
        providers=tuple(Provider.objects.all()),
    )
