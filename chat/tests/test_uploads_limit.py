"""A request body over the limit is refused while it is read, as the web processes serve it
(config.daphne_server): 413 in the API's error envelope, the application never started, and no
more than the limit of it held, whatever the body's size and whether it declares one."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from daphne.server import Server
from twisted.internet.testing import StringTransport

from config.daphne_server import CappedHTTPFactory, CappedWebRequest
from config.tests.test_serve import BASE_DIR, _free_port
from conftest import process_environment

LIMIT = 1024 * 1024
PIECE = b"\x00" * (64 * 1024)
# A hundred times the limit: what took a process to gigabytes, sent piece by piece.
HUGE = 100 * LIMIT


class _Measured(CappedWebRequest):
    """The capped request, noting the most of a body it ever kept."""

    most_kept = 0
    kept = 0  # after the latest piece
    last: _Measured | None = None

    def handleContentChunk(self, data: bytes) -> None:
        super().handleContentChunk(data)
        _Measured.last = self
        self.kept = self.content.seek(0, 2)
        self.most_kept = max(self.most_kept, self.kept)


@dataclass
class _Daphne:
    """daphne's HTTP protocol with the capped factory, fed bytes by hand (no socket, no loop)."""

    started: list[dict[str, Any]] = field(default_factory=list)
    transport: StringTransport = field(default_factory=StringTransport)

    def __post_init__(self) -> None:
        server = Server(application=None, endpoints=["tcp:port=0"], signal_handlers=False)  # never run
        server.connections = {}
        server.create_application = self._create_application  # type: ignore[method-assign]
        self.protocol = CappedHTTPFactory(server, body_limit=LIMIT).buildProtocol(("127.0.0.1", 0))
        self.protocol.requestFactory = _Measured
        self.protocol.makeConnection(self.transport)

    def _create_application(self, protocol: object, scope: dict[str, Any]) -> Any:
        import asyncio

        self.started.append(scope)
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        return self.queue

    def send(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    def response(self) -> tuple[str, dict[str, Any]]:
        head, _, body = self.transport.value().partition(b"\r\n\r\n")
        return head.decode().splitlines()[0], json.loads(body)


def _headers(*lines: str) -> bytes:
    return ("\r\n".join(["POST /api/uploads HTTP/1.1", "Host: 127.0.0.1", *lines]) + "\r\n\r\n").encode()


def _assert_refused(daphne: _Daphne) -> None:
    status, body = daphne.response()
    assert status == "HTTP/1.1 413 Request Entity Too Large"
    assert body == {"error": {"code": "too_large", "message": "A request body may be at most 1 MB."}}
    assert daphne.started == []  # the application never saw it
    assert _Measured.last is not None and _Measured.last.body_bytes == HUGE  # read to its end, thrown away


def test_a_body_declared_over_the_limit_is_refused_and_none_of_it_is_kept() -> None:
    daphne = _Daphne()
    daphne.send(_headers("Content-Type: multipart/form-data; boundary=x", f"Content-Length: {HUGE}"))
    for _ in range(HUGE // len(PIECE)):
        daphne.send(PIECE)
    _assert_refused(daphne)
    assert _Measured.last is not None and _Measured.last.most_kept == 0


def test_a_chunked_body_is_refused_once_it_passes_the_limit_and_what_was_kept_is_dropped() -> None:
    daphne = _Daphne()
    daphne.send(_headers("Content-Type: multipart/form-data; boundary=x", "Transfer-Encoding: chunked"))
    for _ in range(HUGE // len(PIECE)):
        daphne.send(b"%x\r\n" % len(PIECE) + PIECE + b"\r\n")
    daphne.send(b"0\r\n\r\n")
    _assert_refused(daphne)
    request = _Measured.last
    assert request is not None and request.most_kept <= LIMIT and request.kept == 0


def test_a_body_within_the_limit_reaches_the_application_whole_and_twisted_does_not_parse_it() -> None:
    daphne = _Daphne()
    body = b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\nb\r\n--x--\r\n" + PIECE
    daphne.send(_headers("Content-Type: multipart/form-data; boundary=x", f"Content-Length: {len(body)}") + body)
    assert len(daphne.started) == 1
    received = b""
    while not daphne.queue.empty():
        received += daphne.queue.get_nowait()["body"]
    assert received == body
    assert _Measured.last is not None and _Measured.last.args == {}  # Twisted's own parse (a copy) is off


# --- The real process --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def web_process() -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """A web process as `serve` starts one (config.daphne_server on config.asgi) with a 1 MB cap."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "config.daphne_server", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        cwd=BASE_DIR,
        env=process_environment(REQUEST_BODY_MAX_BYTES=str(LIMIT)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "the web process never listened"
                time.sleep(0.2)
        yield port, process
    finally:
        process.terminate()
        process.wait(timeout=30)


def _read_response(connection: socket.socket) -> tuple[str, dict[str, str], bytes]:
    reader = connection.makefile("rb")
    status = reader.readline().decode().strip()
    headers: dict[str, str] = {}
    while (line := reader.readline().decode().strip()) != "":
        name, _, value = line.partition(":")
        headers[name.lower()] = value.strip()
    return status, headers, reader.read(int(headers.get("content-length", 0)))


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_the_web_process_refuses_a_huge_upload_and_serves_the_next_request_on_the_connection(
    web_process: tuple[int, subprocess.Popen[str]], chunked: bool
) -> None:
    port, process = web_process
    with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {HUGE}"
        connection.sendall(_headers("Content-Type: multipart/form-data; boundary=x", framing))
        for _ in range(HUGE // len(PIECE)):
            connection.sendall(b"%x\r\n" % len(PIECE) + PIECE + b"\r\n" if chunked else PIECE)
        if chunked:
            connection.sendall(b"0\r\n\r\n")
        status, _, body = _read_response(connection)
        assert status == "HTTP/1.1 413 Request Entity Too Large"
        # The cap's answer (the view's would name the image limit): the application never ran.
        assert json.loads(body)["error"] == {"code": "too_large", "message": "A request body may be at most 1 MB."}

        connection.sendall(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status, headers, _ = _read_response(connection)
        assert status == "HTTP/1.1 200 OK" and headers["x-arbor-process"] == str(process.pid)
