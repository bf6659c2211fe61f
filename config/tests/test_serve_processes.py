"""`manage.py serve` with several web processes: one port, every process answering on it, and a
reply that outlives the process a client first reached."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psutil
import pytest
from websockets.sync.client import ClientConnection

from chat.tests.test_protocol_e2e import Browser, _frame, _send
from config.embedded.base import pid_is_alive
from config.tests.test_serve import (  # noqa: F401 - serve_environment is a fixture
    BASE_DIR,
    _read_until_ready,
    _stop_with_ctrl_c,
    serve_environment,
    served_with_slow_fake,
)
from conftest import process_environment

# Bounds on the tries before giving up: the kernel hands each new connection to whichever web
# process accepts first, so which one answers is chance, not a schedule.
CONNECTION_ATTEMPTS = 200
# Long enough that the reply is still being written when the test stops it: at 20 tokens a
# second, 400 tokens take 20 s, and the test stops it after its first dozen tokens.
TOKENS = 400
EXPECTED = "".join(f"token{index} " for index in range(TOKENS))


@dataclass
class Served:
    process: subprocess.Popen[str]
    base: str
    port: int

    def web_processes(self) -> list[psutil.Process]:
        children = psutil.Process(self.process.pid).children()
        return [child for child in children if "daphne" in " ".join(child.cmdline())]


@pytest.fixture
def two_web_processes(serve_environment: dict[str, str]) -> Iterator[Served]:  # noqa: F811
    """`serve` with WEB_PROCESSES=2 and OpenAI pointed at a fake that writes a slow reply."""
    with served_with_slow_fake(serve_environment, web_processes=2, tokens=TOKENS) as (process, environment, startup):
        assert "2 web processes on one port" in startup
        port = int(environment["ARBOR_PORT"])
        yield Served(process=process, base=f"http://127.0.0.1:{port}", port=port)


def _answering_process(base: str) -> int:
    # urllib opens a new connection per request, so each one is accepted afresh.
    with urllib.request.urlopen(f"{base}/livez", timeout=10) as response:
        return int(response.headers["X-Arbor-Process"])


def _listens_on(process: psutil.Process, port: int) -> bool:
    return any(
        connection.status == psutil.CONN_LISTEN and connection.laddr.port == port
        for connection in process.net_connections(kind="tcp")
    )


def test_serve_with_two_web_processes_answers_on_one_port_from_both(two_web_processes: Served) -> None:
    webs = two_web_processes.web_processes()
    assert len(webs) == 2
    assert all(_listens_on(web, two_web_processes.port) for web in webs)

    answered: set[int] = set()
    for _ in range(CONNECTION_ATTEMPTS):
        answered.add(_answering_process(two_web_processes.base))
        if len(answered) == 2:
            break
    assert answered == {web.pid for web in webs}

    assert _stop_with_ctrl_c(two_web_processes.process) == 0
    assert [web.pid for web in webs if pid_is_alive(web.pid)] == []


def _owner(websocket: ClientConnection, webs: list[psutil.Process]) -> int:
    """The web process holding the server end of this client's connection."""
    client = websocket.socket.getsockname()[:2]
    for web in webs:
        for connection in web.net_connections(kind="tcp"):
            if connection.raddr and (connection.raddr.ip, connection.raddr.port) == client:
                return web.pid
    raise AssertionError(f"no web process holds the connection from {client}")


def _socket_on_another_process(browser: Browser, webs: list[psutil.Process], avoid: int) -> ClientConnection:
    for _ in range(CONNECTION_ATTEMPTS):
        websocket = browser.socket()
        if _owner(websocket, webs) != avoid:
            return websocket
        with websocket:  # closes it (websockets wants connections used as context managers)
            pass
    raise AssertionError(f"every connection landed on process {avoid}")


def _deltas(websocket: ClientConnection, message_id: str, count: int) -> list[dict[str, Any]]:
    deltas: list[dict[str, Any]] = []
    while len(deltas) < count:
        frame = _frame(websocket)
        if frame.get("message_id") == message_id and frame["type"] == "delta":
            deltas.append(frame)
    return deltas


def _stopped(
    websocket: ClientConnection, message_id: str, req: int
) -> tuple[list[dict[str, Any]], bool, dict[str, Any]]:
    """The deltas up to the reply's `done`, after a `stop` sent as `req`: its ack comes among
    them, at no fixed place, so no delta is skipped while waiting for it."""
    deltas: list[dict[str, Any]] = []
    acknowledged = False
    while True:
        frame = _frame(websocket)
        assert frame["type"] != "error", frame
        if frame.get("req") == req:
            acknowledged = frame["type"] == "ack"
        elif frame.get("message_id") == message_id and frame["type"] == "delta":
            deltas.append(frame)
        elif frame.get("message_id") == message_id and frame["type"] == "done":
            return deltas, acknowledged, frame


def test_a_reply_started_on_one_process_is_resumed_and_stopped_on_another(two_web_processes: Served) -> None:
    """Across two processes of one `serve` (WEB_PROCESSES=2, one port, one database and Redis).

    A client cannot choose the process a shared port hands its connection to, so the test looks
    at which process holds the server end of each WebSocket (psutil: the web process with a TCP
    connection from the client's address) and reconnects until it lands on the other one. The
    reply runs as a task in process A, where it was sent; B serves the resume from the Redis
    stream buffer and passes the stop to A over Redis.
    """
    webs = two_web_processes.web_processes()
    browser = Browser(two_web_processes.base)

    # Process A: start a chat, read the first five frames of the reply, drop the connection.
    with browser.socket() as on_a:
        process_a = _owner(on_a, webs)
        ack = _send(on_a, type="send", req=1, chat_id=None, parent_id=None, content="Hello", model="openai:gpt-5-mini")
        chat_id, answer = ack["chat_id"], ack["assistant_message_id"]
        seen = _deltas(on_a, answer, 5)
        assert [frame["seq"] for frame in seen] == [1, 2, 3, 4, 5]

    # Process B: resume after seq 5, read a few more frames, stop the reply from here.
    with _socket_on_another_process(browser, webs, avoid=process_a) as on_b:
        on_b.send(json.dumps({"type": "resume", "req": 2, "message_id": answer, "after_seq": 5}))
        resumed = _deltas(on_b, answer, 5)
        on_b.send(json.dumps({"type": "stop", "req": 3, "message_id": answer}))
        rest, acknowledged, done = _stopped(on_b, answer, req=3)

    assert acknowledged
    streamed = seen + resumed + rest
    assert [frame["seq"] for frame in streamed] == list(range(1, len(streamed) + 1))  # no gap, none twice
    assert done["status"] == "stopped" and done["seq"] == len(streamed) + 1
    text = "".join(frame["text"] for frame in streamed)
    assert EXPECTED.startswith(text)

    saved = {message["id"]: message for message in browser.get(f"/api/chats/{chat_id}")["messages"]}
    assert saved[answer]["status"] == "stopped"
    assert saved[answer]["content"][0]["text"] == text  # the partial text, as streamed, kept


def test_serve_web_only_as_the_image_runs_it_starts_web_processes_and_no_worker(
    serve_environment: dict[str, str],  # noqa: F811
) -> None:
    """The Docker image's command, with the production settings: the web processes alone (compose
    runs the migrations and the worker as services of their own), ready once /livez answers."""
    environment = {
        **serve_environment,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": "a-test-key-for-the-production-settings-" + "x7Qp2" * 4,
        "ALLOWED_HOSTS": "127.0.0.1",
        "WEB_PROCESSES": "2",
    }
    environment.pop("DEBUG", None)
    process = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--web-only"],
        cwd=BASE_DIR,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        startup = _read_until_ready(process)
        assert "password:" not in startup  # no local admin: nothing but the web processes ran
        children = psutil.Process(process.pid).children()
        assert len(children) == 2
        assert all("daphne" in " ".join(child.cmdline()) for child in children)
        assert _answering_process(f"http://127.0.0.1:{environment['ARBOR_PORT']}") in {child.pid for child in children}
    finally:
        code = _stop_with_ctrl_c(process)
    assert code == 0
    assert [child.pid for child in children if pid_is_alive(child.pid)] == []


def _serve_output(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "serve"],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("variables", "line"),
    [
        ({"WEB_PROCESSES": "0"}, "error: WEB_PROCESSES=0: at least one web process is needed"),
        (
            {"ARBOR_HOST": "::1"},
            "error: ARBOR_HOST=::1 is an IPv6 address: the web processes share one IPv4 socket;"
            " use 127.0.0.1 or 0.0.0.0",
        ),
    ],
)
def test_serve_refuses_what_it_cannot_serve_in_one_line(
    serve_environment: dict[str, str],  # noqa: F811
    variables: dict[str, str],
    line: str,
) -> None:
    result = _serve_output({**serve_environment, **variables})
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [line]


def _web_processes_setting(value: str | None) -> int:
    """WEB_PROCESSES as the base settings read it, with the variable set to `value` (or unset)."""
    environment = process_environment(DJANGO_SETTINGS_MODULE="config.settings.base")
    environment.pop("WEB_PROCESSES", None)
    if value is not None:
        environment["WEB_PROCESSES"] = value
    result = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.WEB_PROCESSES)"],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(result.stdout)


def test_web_processes_default_to_one_per_core_and_follow_the_environment() -> None:
    assert _web_processes_setting(None) == os.cpu_count()
    assert _web_processes_setting("") == os.cpu_count()  # what compose passes when it is unset
    assert _web_processes_setting("3") == 3
