"""Embedded PostgreSQL and Redis: what Arbor runs on when DATABASE_URL / REDIS_URL are unset.

Both are real servers from wheels, with data under `./var` kept between runs. A process that
needs one starts it, or attaches to it if it runs, and becomes one of its holders; when the last
live holder exits, the server stops. So a test run, a shell and `make run` can share a server
and no server outlives them all. `manage.py serve` (behind `make run`) hands explicit URLs to the
processes it starts: they are not holders, the supervisor holds for them.
"""

from __future__ import annotations

import atexit
import os
from pathlib import Path

from config.embedded.base import EmbeddedServiceError, folder_lock, pid_is_alive
from config.embedded.postgres import EmbeddedPostgres
from config.embedded.redis import EmbeddedRedis

__all__ = ["EmbeddedServiceError", "embedded_postgres_url", "embedded_redis_url"]

Server = EmbeddedPostgres | EmbeddedRedis


def embedded_postgres_url(var_dir: Path) -> str:
    server = EmbeddedPostgres(var_dir / "postgres")
    _hold(server, var_dir, var_dir / ".postgres.holders")
    return server.url


def embedded_redis_url(var_dir: Path) -> str:
    server = EmbeddedRedis(var_dir / "redis")
    _hold(server, var_dir, var_dir / ".redis.holders")
    return server.url


def _hold(server: Server, var_dir: Path, holders: Path) -> None:
    with folder_lock(var_dir):
        server.ensure_running()
        _write_holders(holders, [*_live_holders(holders), os.getpid()])
    atexit.register(_release, server, var_dir, holders)


def _release(server: Server, var_dir: Path, holders: Path) -> None:
    with folder_lock(var_dir):
        remaining = [pid for pid in _live_holders(holders) if pid != os.getpid()]
        _write_holders(holders, remaining)
        if not remaining:
            server.stop()


def _live_holders(holders: Path) -> list[int]:
    """Holders still alive: one killed outright never released, and is dropped here."""
    try:
        pids = [int(line) for line in holders.read_text().split()]
    except (FileNotFoundError, ValueError):
        return []
    return [pid for pid in dict.fromkeys(pids) if pid_is_alive(pid)]


def _write_holders(holders: Path, pids: list[int]) -> None:
    holders.write_text("".join(f"{pid}\n" for pid in pids))
