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

A turn reads the token on its event loop's Redis line before its database call and hands it in
(`catalog_version_read`, `catalog_version_known`): a few microseconds there, where redis-py's GET
from the database thread cost about 80 µs of CPU. Read before the call, it is as current as one
read inside it: both come before the turn's database work.

What a snapshot holds is the database's: keys from the environment and the demo's "auto" mode
are read at each use, as before. Users' own models and keys (BYOK) are not cached.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from django.conf import settings
from django.db import transaction
from django_redis import get_redis_connection
from redis.exceptions import RedisError

from common.redisline import loop_line
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


class _Unread:
    """The version could not be read ahead: `catalog_snapshot` asks Redis itself."""


UNREAD: Final = _Unread()
CatalogVersion = bytes | None | _Unread  # a token, no token, or not read ahead
_known = threading.local()  # .version: the version handed in for this thread's current call


async def catalog_version_read() -> bytes | _Unread | None:
    """The catalog's version token as Redis holds it now (None: no token), read on the running
    loop's Redis line; UNREAD where there is no line (a TLS URL) or Redis did not answer."""
    line = loop_line(settings.REDIS_URL)
    if line is None:
        return UNREAD
    try:
        return await line.execute(b"GET", VERSION_KEY)  # type: ignore[no-any-return]
    except (OSError, RedisError, TimeoutError):
        return UNREAD


@contextlib.contextmanager
def catalog_version_known(version: bytes | _Unread | None) -> Iterator[None]:
    """Within the block, this thread's `catalog_snapshot` takes `version` (from
    `catalog_version_read`, just before) instead of asking Redis."""
    if isinstance(version, _Unread):
        yield
        return
    _known.version = version
    try:
        yield
    finally:
        del _known.version


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
        version = _known.version if hasattr(_known, "version") else get_redis_connection("default").get(VERSION_KEY)
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
