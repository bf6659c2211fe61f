"""The embedded servers, each started in a folder of its own (not the suite's own servers)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from config.embedded.base import EmbeddedServiceError, pid_is_alive, read_pid
from config.embedded.postgres import EmbeddedPostgres
from config.embedded.redis import EmbeddedRedis

BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path / "postgres")
    yield server
    server.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "redis")
    yield server
    server.stop()


def _connect(server: EmbeddedPostgres) -> psycopg.Connection:
    return psycopg.connect(server.url.replace("postgres://", "postgresql://"), autocommit=True)


def test_postgres_starts_once_then_is_attached_to(postgres: EmbeddedPostgres) -> None:
    assert postgres.ensure_running() is True
    assert postgres.ensure_running() is False
    with _connect(postgres) as connection:
        assert connection.execute("SELECT current_database()").fetchone() == ("arbor",)


def test_postgres_keeps_its_data_across_a_restart(postgres: EmbeddedPostgres) -> None:
    postgres.ensure_running()
    with _connect(postgres) as connection:
        connection.execute("CREATE TABLE kept (note text)")
        connection.execute("INSERT INTO kept VALUES ('still here')")
    postgres.stop()
    assert not postgres.is_running()
    assert postgres.ensure_running() is True
    with _connect(postgres) as connection:
        assert connection.execute("SELECT note FROM kept").fetchone() == ("still here",)


def test_postgres_ships_the_ltree_extension(postgres: EmbeddedPostgres) -> None:
    postgres.ensure_running()
    with _connect(postgres) as connection:
        connection.execute("CREATE EXTENSION IF NOT EXISTS ltree")
        assert connection.execute("SELECT nlevel('a.b.c'::ltree)").fetchone() == (3,)


def test_postgres_refuses_a_data_folder_of_another_major_version(tmp_path: Path) -> None:
    data = tmp_path / "postgres"
    data.mkdir()
    (data / "PG_VERSION").write_text("16\n")
    with pytest.raises(EmbeddedServiceError, match=r"holds data of PostgreSQL 16, but the embedded server is"):
        EmbeddedPostgres(data).ensure_running()


def test_a_socket_too_deep_for_sun_path_moves_to_a_short_folder(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60) / "postgres"
    server = EmbeddedPostgres(deep)
    assert len(str(server.socket_dir / ".s.PGSQL.5432")) <= 100
    assert server.socket_dir != deep


def test_a_wrong_major_version_ends_manage_py_with_one_error_line(tmp_path: Path) -> None:
    (tmp_path / "postgres").mkdir()
    (tmp_path / "postgres" / "PG_VERSION").write_text("16\n")
    environment = {
        key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE"}
    }
    environment.update(ARBOR_VAR_DIR=str(tmp_path), REDIS_URL="redis://127.0.0.1:1/0")
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "PostgreSQL 16" in result.stderr


def test_redis_starts_once_then_is_attached_to(redis_server: EmbeddedRedis) -> None:
    assert redis_server.ensure_running() is True
    assert redis_server.ensure_running() is False
    assert redis.Redis.from_url(redis_server.url).ping()


def test_redis_keeps_its_data_across_a_restart(redis_server: EmbeddedRedis) -> None:
    redis_server.ensure_running()
    redis.Redis.from_url(redis_server.url).set("kept", "still here")
    pid = read_pid(redis_server.pid_file)
    redis_server.stop()
    assert pid is not None
    assert not pid_is_alive(pid)
    redis_server.ensure_running()
    assert redis.Redis.from_url(redis_server.url).get("kept") == b"still here"


def test_an_embedded_server_stops_only_when_its_last_holder_exits(tmp_path: Path) -> None:
    hold = (
        "import sys; from pathlib import Path; from config.embedded import embedded_redis_url; "
        f"embedded_redis_url(Path({str(tmp_path)!r})); print('holding', flush=True); sys.stdin.read()"
    )

    def holder() -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-c", hold], cwd=BASE_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert process.stdout is not None
        assert process.stdout.readline() == "holding\n"
        return process

    def release(process: subprocess.Popen[str]) -> None:
        assert process.stdin is not None
        process.stdin.close()
        assert process.wait(timeout=30) == 0

    server = EmbeddedRedis(tmp_path / "redis")
    first, second = holder(), holder()
    release(first)
    assert server.is_running()
    release(second)
    assert not server.is_running()
