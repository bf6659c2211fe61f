"""Suite-wide setup: refuse to start against unreachable services; start each test with no
Arbor keys in the Redis test database (rate-limit buckets and cached values must not leak
between tests) while Celery's own keys stay, so a running worker keeps its queue bindings."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


def pytest_sessionstart(session: pytest.Session) -> None:
    """A wrong DATABASE_URL or REDIS_URL ends the run before any test, one `error:` line each."""
    import sys

    from django.conf import settings
    from pytest_django.plugin import blocking_manager_key

    from config.preflight import require_services
    from config.startup import STARTUP_ERROR_EXIT_CODE, StartupError

    try:
        with session.config.stash[blocking_manager_key].unblock():
            require_services(settings)
    except StartupError as error:
        for line in str(error).splitlines():
            print(f"error: {line}", file=sys.stderr)
        pytest.exit("the services above are unreachable", returncode=STARTUP_ERROR_EXIT_CODE)
    with session.config.stash[blocking_manager_key].unblock():
        _drop_databases_of_dead_runs(settings)


def _drop_databases_of_dead_runs(settings: Any) -> None:
    """Test databases of runs whose process is gone (killed before their teardown)."""
    from django.db import connection

    from config.embedded.base import pid_is_alive

    prefix = f"test_{settings.DATABASES['default']['NAME']}_"
    with connection.cursor() as cursor:
        cursor.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [prefix + "%"])
        names = [row[0] for row in cursor.fetchall()]
        for name in names:
            run = name.removeprefix(prefix)
            if run.isdigit() and not pid_is_alive(int(run)):
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    connection.close()


@pytest.fixture(scope="session", autouse=True)
def _empty_redis_database() -> None:
    from django_redis import get_redis_connection

    get_redis_connection("default").flushdb()


@pytest.fixture(autouse=True)
def _no_arbor_keys() -> Iterator[None]:
    """Also forgets this process's catalog snapshot: a test's rolled-back catalog rows were
    never reported by a signal, as no production change is."""
    from django_redis import get_redis_connection

    from providers.catalogcache import catalog_forget

    catalog_forget()
    connection = get_redis_connection("default")
    keys = list(connection.scan_iter(match="arbor:*", count=1000))
    if keys:
        connection.delete(*keys)
    yield


def database_url_named(url: str, name: str) -> str:
    """The same server as `url`, another database."""
    from urllib.parse import urlsplit, urlunsplit

    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def process_environment(**overrides: str) -> dict[str, str]:
    """An environment for a child process that attaches to this run's servers (never owns one)."""
    import os

    from django.conf import settings

    environment = dict(os.environ)
    environment.update(
        DATABASE_URL=database_url_named(settings.DATABASE_URL, settings.DATABASES["default"]["NAME"]),
        REDIS_URL=settings.REDIS_URL,
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_POOL="true",  # servers run pooled, as in production (config/settings/test.py)
        CHAT_TITLES_AUTO="true",
        PYTHONUNBUFFERED="1",
    )
    environment.update(overrides)
    return environment


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup: None) -> Iterator[object]:
    """A real `celery worker` process on the real broker, using the test database."""
    import subprocess
    import sys
    import time

    from config.celery import app

    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo", "--loglevel=WARNING"],
        env=process_environment(),
    )
    try:
        deadline = time.monotonic() + 60
        while not app.control.ping(timeout=0.5, limit=1):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the Celery worker did not start")
        yield worker
    finally:
        worker.terminate()
        worker.wait(timeout=30)


@pytest.fixture(scope="session", autouse=True)
def _test_database_released(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """At the end, end other sessions on the test database (pool threads of async code keep idle
    connections) so pytest-django can drop it: a run never leaves its database behind."""
    yield
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


# --- The fake vendors as the platform's providers (chat, artifacts and web tests) ---------------
PLATFORM_KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "XAI_API_KEY", "OPENROUTER_API_KEY")


@pytest.fixture
def no_platform_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """No real provider is configured (so the offline demo is the default model)."""
    for variable in (*PLATFORM_KEYS, "OLLAMA_BASE_URL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def openai_fake(monkeypatch: pytest.MonkeyPatch, no_platform_keys: None) -> Iterator[Any]:
    """The OpenAI fake as the platform's OpenAI provider (seed the catalog to use it)."""
    from providers.testing.openai_server import OpenAIServer

    with OpenAIServer() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
        monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
        yield server
