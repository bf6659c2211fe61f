"""daphne as `make run` serves sockets: a frame over its 1 MiB limit closes the socket with 1009
and a reason (not a dropped connection, which the browser reports as 1006, like a network
fault). Against a real daphne process: the limit lives in its WebSocket server, not in the app."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from accounts.tests.factories import UserFactory
from conftest import process_environment

BASE_DIR = Path(__file__).resolve().parents[2]
LIMIT = 1024 * 1024  # daphne's default `--websocket_max_message_size`

pytestmark = pytest.mark.django_db(transaction=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _listening(port: int, process: subprocess.Popen[bytes], tries: int = 300) -> None:
    for _ in range(tries):
        assert process.poll() is None, "daphne exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("daphne never listened")


@pytest.fixture
def daphne() -> Iterator[str]:
    port = _free_port()
    command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"]
    process = subprocess.Popen(command, cwd=BASE_DIR, env=process_environment(), stdout=subprocess.DEVNULL)
    try:
        _listening(port, process)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_frame_over_the_limit_closes_the_socket_with_1009_and_a_reason(daphne: str) -> None:
    client = Client()
    client.force_login(UserFactory())
    headers = {"Origin": f"http://{daphne}", "Cookie": f"sessionid={client.cookies['sessionid'].value}"}
    with connect(f"ws://{daphne}/ws/chat/", additional_headers=headers, open_timeout=10) as tab:
        tab.send('{"type": "ping", "req": 1}')
        assert '"pong"' in tab.recv(timeout=10)

        tab.send('{"type": "ping", "req": "' + "x" * LIMIT + '"}')
        with pytest.raises(ConnectionClosed) as closed:
            tab.recv(timeout=10)

    assert closed.value.rcvd is not None, "the connection was dropped without a close frame"
    assert closed.value.rcvd.code == 1009
    assert str(LIMIT) in closed.value.rcvd.reason
