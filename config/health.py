"""Health of what Arbor depends on. Details name the failure's kind, never a URL or a secret."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

CELERY_PING_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str
    latency_ms: float


def _timed(check: Callable[[], str]) -> CheckResult:
    started = time.perf_counter()
    try:
        detail = check()
        ok = True
    except Exception as error:  # noqa: BLE001 - a health check reports every failure, never raises
        detail = f"{type(error).__name__}: unreachable"
        ok = False
    return CheckResult(ok=ok, detail=detail, latency_ms=round((time.perf_counter() - started) * 1000, 1))


def _database() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def _redis() -> str:
    from django_redis import get_redis_connection

    get_redis_connection("default").ping()
    return "ok"


def _celery_workers() -> str:
    from config.celery import app

    # limit=1: answer as soon as one worker replies instead of waiting out the timeout.
    replies = app.control.ping(timeout=CELERY_PING_TIMEOUT_SECONDS, limit=1)
    if not replies:
        raise LookupError("no worker answered")
    return "a worker answered"


def health_report() -> tuple[bool, dict[str, Any]]:
    """(healthy, report): healthy only when the database, Redis and a Celery worker all answer."""
    database = _timed(_database)
    redis = _timed(_redis)
    broker_down = CheckResult(ok=False, detail="broker unreachable", latency_ms=0.0)
    celery = _timed(_celery_workers) if redis.ok else broker_down
    checks = {"database": database, "redis": redis, "celery": celery}
    healthy = all(result.ok for result in checks.values())
    report: dict[str, Any] = {"status": "ok" if healthy else "unavailable"}
    report.update({name: asdict(result) for name, result in checks.items()})
    return healthy, report
