"""`manage.py serve`, what `make run` runs, as a person would meet it: started as a process."""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest
import redis
from django.conf import settings
from websockets.sync.client import connect as websocket_connect

from config.embedded.base import pid_is_alive
from config.redis_urls import redis_url_with_db
from config.testing_slots import redis_test_database
from conftest import database_url_named, process_environment

BASE_DIR = Path(__file__).resolve().parents[2]
SERVE_DATABASE = f"arbor_serve_test_{settings.TEST_RUN}"
SERVE_REDIS_DB = redis_test_database(int(settings.TEST_RUN), purpose="serve")
READY_LINE = "Arbor is running at"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _recreate_database(name: str) -> None:
    server = database_url_named(settings.DATABASE_URL, "postgres")
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


@pytest.fixture
def serve_environment(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A served product as new as a fresh install: an empty database and Redis database. As many
    web processes as the test settings say (one unless the environment sets WEB_PROCESSES)."""
    _recreate_database(SERVE_DATABASE)
    redis_url = redis_url_with_db(settings.REDIS_URL, SERVE_REDIS_DB)
    redis.Redis.from_url(redis_url).flushdb()
    yield process_environment(
        DATABASE_URL=database_url_named(settings.DATABASE_URL, SERVE_DATABASE),
        REDIS_URL=redis_url,
        DJANGO_SETTINGS_MODULE="config.settings.base",
        ARBOR_PORT=str(_free_port()),
        ARBOR_VAR_DIR=str(tmp_path),
        WEB_PROCESSES=str(settings.WEB_PROCESSES),
    )


def _serve(environment: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "manage.py", "serve"],
        cwd=BASE_DIR,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _read_until_ready(process: subprocess.Popen[str], timeout: float = 90) -> str:
    assert process.stdout is not None
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if READY_LINE in line:
            return "".join(seen)
    raise AssertionError("serve never became ready:\n" + "".join(seen))


def _stop_with_ctrl_c(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGINT)
    return process.wait(timeout=30)


@contextlib.contextmanager
def served_with_slow_fake(
    serve_environment: dict[str, str], *, web_processes: int, tokens: int, rate: float = 20
) -> Iterator[tuple[subprocess.Popen[str], dict[str, str], str]]:
    """`serve` with `web_processes` web processes and OpenAI pointed at a fake writing every reply
    as `tokens` tokens at `rate` a second: the process, its environment and its start-up output.
    Stopped with Ctrl-C at the end, unless a test stopped it already."""
    from providers.testing.__main__ import steady_reply
    from providers.testing.openai_server import OpenAIServer

    fake = OpenAIServer()
    fake.default_reply = steady_reply(tokens, rate=rate)
    with fake:
        environment = {
            **serve_environment,
            "WEB_PROCESSES": str(web_processes),
            "OPENAI_API_KEY": "sk-fake",
            "OPENAI_BASE_URL": f"{fake.url}/v1",
        }
        process = _serve(environment)
        try:
            yield process, environment, _read_until_ready(process)
        finally:
            if process.poll() is None:
                _stop_with_ctrl_c(process)


def _healthz(base: str) -> dict[str, object]:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=5) as response:
                return json.load(response)
        except urllib.error.HTTPError:  # 503 until the worker answers its first ping
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_serve_runs_web_and_worker_then_ctrl_c_leaves_no_process(serve_environment: dict[str, str]) -> None:
    port = serve_environment["ARBOR_PORT"]
    base = f"http://127.0.0.1:{port}"
    process = _serve(serve_environment)
    try:
        startup = _read_until_ready(process)
        assert "password:" in startup  # the local admin's login, shown on the first start
        children = psutil.Process(process.pid).children(recursive=True)
        assert len(children) >= 2

        assert _healthz(base)["status"] == "ok"

        cookies = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(cookies))
        assert opener.open(f"{base}/", timeout=10).status == 200  # a guest is made and signed in
        session = next(cookie.value for cookie in cookies if cookie.name == "sessionid")

        with websocket_connect(
            f"ws://127.0.0.1:{port}/ws/chat/",
            additional_headers={"Origin": base, "Cookie": f"sessionid={session}"},
            open_timeout=10,
        ) as websocket:
            websocket.send(json.dumps({"type": "hello", "req": 1}))
            assert json.loads(websocket.recv(timeout=10))["req"] == 1
    finally:
        code = _stop_with_ctrl_c(process)
    assert code == 0
    assert [child.pid for child in children if pid_is_alive(child.pid)] == []

    second = _serve(serve_environment)
    try:
        assert "password:" not in _read_until_ready(second)  # data reused: the admin exists
    finally:
        assert _stop_with_ctrl_c(second) == 0


def _serve_fails(environment: dict[str, str]) -> list[str]:
    result = subprocess.run(
        [sys.executable, "manage.py", "serve"],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    return result.stderr.strip().splitlines()


def test_serve_with_an_unreachable_database_url_ends_with_one_line(serve_environment: dict[str, str]) -> None:
    lines = _serve_fails({**serve_environment, "DATABASE_URL": "postgres://arbor:s3cret@127.0.0.1:1/arbor"})
    assert len(lines) == 1
    assert lines[0].startswith("error: cannot connect to the database at DATABASE_URL=postgres://arbor:***@")
    assert "s3cret" not in lines[0]


def test_serve_with_an_unreachable_redis_url_ends_with_one_line(serve_environment: dict[str, str]) -> None:
    lines = _serve_fails({**serve_environment, "REDIS_URL": "redis://127.0.0.1:1/0"})
    assert len(lines) == 1
    assert lines[0].startswith("error: cannot reach Redis at REDIS_URL=redis://127.0.0.1:1/0")


def test_serve_on_a_busy_port_ends_with_one_line(serve_environment: dict[str, str]) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        lines = _serve_fails({**serve_environment, "ARBOR_PORT": str(port)})
    assert lines == [f"error: port {port} on 127.0.0.1 is in use: stop what listens there or set ARBOR_PORT"]
