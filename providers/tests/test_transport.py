"""The shared client's transport: bodies as they arrive, connections kept alive only when safe,
httpx2's exceptions where httpx2's own transport raises them, memory bounded by pausing reads."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import gzip
import ipaddress
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx2
import pytest

from providers.adapters.transport import (
    BODY_EXTENSION,
    HIGH_WATER,
    ReadPacer,
    StreamingTransport,
    raw_chunks,
    read_pacer,
)

# What the server does with a request: write an answer, and say whether the connection stays open.
Answer = Callable[[asyncio.StreamWriter, int], Awaitable[bool]]


class Scripted:
    """A raw HTTP/1.1 server on 127.0.0.1 that answers each request with `answer(writer, n)` (n
    counts requests across connections, from 1) and counts the connections it accepted."""

    def __init__(self, answer: Answer, *, tls: ssl.SSLContext | None = None) -> None:
        self.answer = answer
        self.tls = tls
        self.connections = 0
        self.bodies: list[bytes] = []
        self.writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> Scripted:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/"
        return self

    async def __aexit__(self, *_: object) -> None:
        self._server.close()
        for writer in self.writers:
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).lower()
                self.bodies.append(await _request_body(reader, head))
                if not await self.answer(writer, len(self.bodies)):
                    break
        writer.close()


async def _request_body(reader: asyncio.StreamReader, head: bytes) -> bytes:
    if b"transfer-encoding: chunked" in head:
        parts = []
        while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
            parts.append((await reader.readexactly(size + 2))[:-2])
        await reader.readuntil(b"\r\n")
        return b"".join(parts)
    for line in head.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return await reader.readexactly(int(line.split(b":")[1]))
    return b""


def ok(body: bytes = b"hello", *, close: bool = False) -> Answer:
    async def answer(writer: asyncio.StreamWriter, _: int) -> bool:
        connection = b"connection: close\r\n" if close else b""
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%s\r\n%s" % (len(body), connection, body))
        await writer.drain()
        return not close

    return answer


def chunked(*pieces: bytes, end: bytes = b"0\r\n\r\n") -> Answer:
    async def answer(writer: asyncio.StreamWriter, _: int) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for piece in pieces:
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
        writer.write(end)
        await writer.drain()
        return True

    return answer


def raw(data: bytes, *, reset: bool = False) -> Answer:
    """Writes `data` and hangs up: cleanly, or with a reset (RST)."""

    async def answer(writer: asyncio.StreamWriter, _: int) -> bool:
        writer.write(data)
        await writer.drain()
        if reset:
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        return False

    return answer


@pytest.fixture
async def client() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(transport=StreamingTransport(), timeout=5) as client:
        yield client


def _pooled(client: httpx2.AsyncClient) -> int:
    return sum(len(idle) for idle in client._transport._idle.values())  # type: ignore[attr-defined]


# --- Bodies ----------------------------------------------------------------------------------
async def test_a_chunked_body_arrives_piece_by_piece(client: httpx2.AsyncClient) -> None:
    pieces = [b"data: one\n\n", b"data: two\n\n", b"data: three\n\n"]
    async with Scripted(chunked(*pieces)) as server, client.stream("POST", server.url, json={"a": 1}) as response:
        received = b"".join([chunk async for chunk in raw_chunks(response)])
    assert response.status_code == 200
    assert received == b"".join(pieces)
    assert server.bodies == [b'{"a":1}']


async def test_a_content_length_body_is_read_whole(client: httpx2.AsyncClient) -> None:
    async with Scripted(ok(b"x" * 100_000)) as server:
        response = await client.get(server.url)
    assert (response.status_code, response.content) == (200, b"x" * 100_000)
    assert (response.http_version, response.reason_phrase) == ("HTTP/1.1", "OK")


async def test_a_body_without_a_length_ends_with_the_connection(client: httpx2.AsyncClient) -> None:
    async with Scripted(raw(b"HTTP/1.1 200 OK\r\n\r\nuntil the end")) as server:
        response = await client.get(server.url)
    assert response.content == b"until the end"


async def test_a_streamed_request_body_is_sent_chunked(client: httpx2.AsyncClient) -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b"first,"
        yield b"second"

    async with Scripted(ok()) as server:
        response = await client.post(server.url, content=parts())
    assert response.status_code == 200
    assert server.bodies == [b"first,second"]


async def test_a_compressed_body_is_still_decoded() -> None:
    # raw_chunks reads the transport's stream directly only when there is nothing to decode.
    body = gzip.compress(b"plain text")

    async def answer(writer: asyncio.StreamWriter, _: int) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        return True

    async with (
        httpx2.AsyncClient(transport=StreamingTransport()) as client,
        Scripted(answer) as server,
        client.stream("GET", server.url) as response,
    ):
        assert b"".join([chunk async for chunk in raw_chunks(response)]) == b"plain text"


# --- Keep-alive ------------------------------------------------------------------------------
async def test_a_connection_read_to_the_end_is_used_again(client: httpx2.AsyncClient) -> None:
    async with Scripted(chunked(b"a", b"b")) as server:
        for _ in range(3):
            assert (await client.get(server.url)).content == b"ab"
    assert server.connections == 1


async def test_a_connection_the_server_closes_is_not_used_again(client: httpx2.AsyncClient) -> None:
    async with Scripted(ok(close=True)) as server:
        for _ in range(2):
            assert (await client.get(server.url)).content == b"hello"
    assert server.connections == 2


async def test_a_connection_the_client_asks_to_close_is_not_used_again(client: httpx2.AsyncClient) -> None:
    async with Scripted(ok()) as server:
        for _ in range(2):
            await client.get(server.url, headers={"connection": "close"})
    assert server.connections == 2


async def test_a_body_closed_before_its_end_closes_its_connection(client: httpx2.AsyncClient) -> None:
    rest = asyncio.Event()

    async def answer(writer: asyncio.StreamWriter, number: int) -> bool:
        if number > 1:
            return await ok()(writer, number)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await rest.wait()
        writer.write(b"6\r\nsecond\r\n0\r\n\r\n")
        return True

    async with Scripted(answer) as server:
        async with client.stream("GET", server.url) as response:
            async for _ in raw_chunks(response):
                break
        rest.set()
        assert _pooled(client) == 0
        assert (await client.get(server.url)).content == b"hello"
    assert server.connections == 2


async def test_a_pooled_connection_the_server_dropped_is_replaced_and_the_request_sent_again(
    client: httpx2.AsyncClient,
) -> None:
    # The second request reaches the old connection just as the server gives up on it: it reads
    # the request and closes without a word. The client sends it again on a fresh connection.
    async def answer(writer: asyncio.StreamWriter, number: int) -> bool:
        if number == 2:
            return False
        return await ok(b"answer %d" % number)(writer, number)

    async with Scripted(answer) as server:
        assert (await client.post(server.url, json={})).content == b"answer 1"
        assert (await client.post(server.url, json={})).content == b"answer 3"
    assert server.connections == 2
    assert len(server.bodies) == 3


async def test_a_task_cancelled_while_reading_leaves_its_connection_closed(client: httpx2.AsyncClient) -> None:
    stalled = asyncio.Event()

    async def answer(writer: asyncio.StreamWriter, number: int) -> bool:
        if number == 1:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf")
            stalled.set()
            return True
        return await ok()(writer, number)

    async def read() -> None:
        async with client.stream("GET", server.url) as response:
            async for _ in raw_chunks(response):
                pass

    async with Scripted(answer) as server:
        reading = asyncio.create_task(read())
        await stalled.wait()
        reading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reading
        assert _pooled(client) == 0
        assert (await client.get(server.url)).content == b"hello"
    assert server.connections == 2


async def test_closing_the_transport_closes_its_idle_connections() -> None:
    transport = StreamingTransport()
    async with Scripted(ok()) as server:
        async with httpx2.AsyncClient(transport=transport) as client:
            await client.get(server.url)
            (connection,) = transport._idle[(b"http", "127.0.0.1", server.port)]
        assert connection.closed
        assert transport._idle == {}


async def test_an_idle_connection_past_its_expiry_is_not_used_again() -> None:
    transport = StreamingTransport(keepalive_expiry=0)
    async with Scripted(ok()) as server, httpx2.AsyncClient(transport=transport) as client:
        await client.get(server.url)
        (connection,) = transport._idle[(b"http", "127.0.0.1", server.port)]
        connection.idle_since -= 1  # as if a second had passed
        await client.get(server.url)
    assert server.connections == 2


# --- Failures, as httpx2's own transport reports them ------------------------------------------
TRANSPORTS = {"ours": StreamingTransport, "httpx2's": httpx2.AsyncHTTPTransport}


@pytest.fixture(params=sorted(TRANSPORTS))
async def either(request: pytest.FixtureRequest) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(transport=TRANSPORTS[request.param](), timeout=5) as client:
        yield client


async def _body_of(client: httpx2.AsyncClient, url: str) -> bytes:
    async with client.stream("GET", url) as response:
        return b"".join([chunk async for chunk in response.aiter_bytes()])


async def test_a_refused_connection_is_a_connect_error(either: httpx2.AsyncClient) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(httpx2.ConnectError):
        await either.get(f"http://127.0.0.1:{port}/")


async def test_a_server_silent_past_the_read_timeout_is_a_read_timeout(either: httpx2.AsyncClient) -> None:
    async def stall(writer: asyncio.StreamWriter, _: int) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf")
        return True

    async with Scripted(stall) as server:
        with pytest.raises(httpx2.ReadTimeout):
            await either.get(server.url, timeout=httpx2.Timeout(5, read=0.05))


@pytest.mark.parametrize(
    ("name", "answer", "error"),
    [
        (
            "cut mid-chunk",
            raw(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n10\r\nabc"),
            "RemoteProtocolError",
        ),
        (
            "cut before the last chunk",
            raw(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n"),
            "RemoteProtocolError",
        ),
        ("cut short of its length", raw(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc"), "RemoteProtocolError"),
        ("reset mid-body", raw(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc", reset=True), "ReadError"),
        ("closed before answering", raw(b""), "RemoteProtocolError"),
        ("a malformed status line", raw(b"HTTP/1.1 twohundred OK\r\n\r\n"), "RemoteProtocolError"),
        ("not HTTP at all", raw(b"SSH-2.0-OpenSSH_9.6\r\n"), "RemoteProtocolError"),
    ],
)
async def test_a_broken_response_raises_what_httpx2_raises(
    either: httpx2.AsyncClient, name: str, answer: Answer, error: str
) -> None:
    async with Scripted(answer) as server:
        with pytest.raises(getattr(httpx2, error)):
            await _body_of(either, server.url)


# --- Flow control ----------------------------------------------------------------------------
async def test_a_reader_that_falls_behind_pauses_the_socket_and_buffers_little(client: httpx2.AsyncClient) -> None:
    size = 8 * 1024 * 1024
    async with Scripted(ok(b"z" * size)) as server, client.stream("GET", server.url) as response:
        connection = response.extensions[BODY_EXTENSION]._connection
        chunks = raw_chunks(response)
        received = len(await anext(chunks))
        for _ in range(1000):  # until the loop has read all it will before pausing
            if connection.reading_paused:
                break
            await asyncio.sleep(0.005)
        assert connection.reading_paused
        # At most one socket read past the high-water mark (asyncio reads up to 256 KiB at once).
        assert connection.buffered <= HIGH_WATER + 256 * 1024
        async for chunk in chunks:
            received += len(chunk)
            assert connection.buffered <= HIGH_WATER + 256 * 1024
    assert received == size


# --- Held reads ------------------------------------------------------------------------------
async def test_a_held_read_brings_what_came_meanwhile_in_one_piece(client: httpx2.AsyncClient) -> None:
    pieces = [b"data: %d\n\n" % n for n in range(20)]
    go, written = asyncio.Event(), asyncio.Event()

    async def first_then_the_rest(writer: asyncio.StreamWriter, _: int) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        writer.write(b"%x\r\n%s\r\n" % (len(pieces[0]), pieces[0]))
        await go.wait()
        for piece in pieces[1:]:  # each its own segment, as a vendor writes a token
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            await asyncio.sleep(0)
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        written.set()
        return True

    with paced() as pacer:
        async with Scripted(first_then_the_rest) as server, client.stream("GET", server.url) as response:
            chunks = raw_chunks(response)
            assert await anext(chunks) == pieces[0]  # the first bytes are never held
            pacer.hold(60)
            go.set()
            await written.wait()
            for _ in range(10):  # the loop's turns in which it would have read what came
                await asyncio.sleep(0)
            connection = response.extensions[BODY_EXTENSION]._connection
            assert not connection.chunks  # nothing was read: it all waits in the kernel
            pacer.hold(0.001)  # a hold still on is moved: reading resumes in a millisecond
            rest = [chunk async for chunk in chunks]
    assert rest == [b"".join(pieces[1:])]


async def test_a_pacer_lets_go_of_a_response_once_it_is_read(client: httpx2.AsyncClient) -> None:
    with paced() as pacer:
        async with Scripted(chunked(b"one", b"two")) as server:
            async with client.stream("GET", server.url) as response:
                connection = response.extensions[BODY_EXTENSION]._connection
                assert pacer.connection is connection
                assert [chunk async for chunk in raw_chunks(response)]
            assert pacer.connection is None and _pooled(client) == 1
            pacer.hold(60)  # nothing to hold: the pooled connection is not this pacer's
            assert connection.held is None
            async with client.stream("GET", server.url) as response:
                assert b"".join([chunk async for chunk in raw_chunks(response)]) == b"onetwo"
    assert server.connections == 1


@contextlib.contextmanager
def paced() -> Iterator[ReadPacer]:
    """A pacer for the requests this task sends while the block runs."""
    pacer = ReadPacer()
    token = read_pacer.set(pacer)
    try:
        yield pacer
    finally:
        read_pacer.reset(token)


# --- TLS -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return folder / "cert.pem", folder / "key.pem"


async def test_https_is_spoken_with_the_context_given_and_verified(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))
    async with (
        Scripted(chunked(b"secret ", b"stream"), tls=served) as server,
        httpx2.AsyncClient(transport=StreamingTransport(ssl_context=trusting)) as client,
    ):
        assert (await client.get(server.url)).content == b"secret stream"
        assert (await client.get(server.url)).content == b"secret stream"
    assert server.connections == 1


async def test_https_to_a_server_the_context_does_not_trust_is_a_connect_error(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    async with Scripted(ok(), tls=served) as server, httpx2.AsyncClient(transport=StreamingTransport()) as client:
        with pytest.raises(httpx2.ConnectError):
            await client.get(server.url)


# --- The shared client -------------------------------------------------------------------------
async def test_the_shared_client_still_sends_proxied_urls_through_the_environments_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from providers.adapters.clients import shared_http_client

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "vendor.internal")
    client = shared_http_client()
    assert isinstance(client._transport, StreamingTransport)
    assert isinstance(client._transport_for_url(httpx2.URL("https://api.openai.com/v1")), httpx2.AsyncHTTPTransport)
    assert client._transport_for_url(httpx2.URL("https://vendor.internal/v1")) is client._transport
    assert client._transport_for_url(httpx2.URL("http://127.0.0.1:8080/v1")) is client._transport
