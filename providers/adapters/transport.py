"""An HTTP/1.1 transport for the shared client that costs little CPU per streamed token.

A vendor streaming at 30 tokens/s sends each token in its own read. Through httpx2's own
transport (httpcore2, h11, anyio) a read costs ~97 µs of CPU (56 µs on uvloop); an
`asyncio.Protocol` fed by the loop and parsed by llhttp (`httptools`, in C) costs a fraction of
that. So this transport is a protocol per connection whose `data_received` feeds the parser,
whose `on_body` puts the bytes on a deque and wakes the one waiting reader, and a byte stream
that takes them off. Everything above it (the SDKs' requests, status errors, decoding) is
httpx2's as before, and its failures are httpx2's exceptions, as httpx2's transport raises them.

HTTP/1.1 only (no vendor API needs HTTP/2 for a stream), no proxies (the client mounts httpx2's
own transports for those), no cap on connections: every concurrent reply holds one.

A reader that takes a stream in batches anyway (a reply sends a frame per interval) may hold the
socket's reads back between its batches (`ReadPacer`): the tokens that came meanwhile wait in the
kernel and arrive in one read, so a read's cost (the loop's wakeup, the parser, the reader's
resumption through the adapter's generators) is paid once per batch instead of once per token.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import re
import ssl
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httptools
import httpx2

KEEPALIVE_EXPIRY = 30.0
# A reader this far behind stops the socket being read (the kernel then slows the sender).
HIGH_WATER = 64 * 1024
# A response head bigger than this is refused (h11's limit in httpcore2).
MAX_HEAD = 100 * 1024
# The extension under which a response carries this transport's body stream (`raw_chunks`).
BODY_EXTENSION = "arbor.raw_body"
DEFAULT_PORTS = {b"http": 80, b"https": 443}
_ILLEGAL_IN_HEADER = re.compile(rb"[\r\n\0]")

PoolKey = tuple[bytes, str, int]


class ReadPacer:
    """Lets the consumer of a stream hold back the reading of the response being read in its
    task: set it in `read_pacer` before the request is sent, and call `hold` after taking a batch.
    The response's first bytes are never held: only a consumer's `hold` holds anything."""

    __slots__ = ("connection",)

    def __init__(self) -> None:
        self.connection: _Connection | None = None

    def hold(self, seconds: float) -> None:
        """Read nothing more of the current response for `seconds` (from now; a hold still on is
        moved). What the server sends meanwhile waits in the kernel, and a full socket buffer
        slows the server, as TCP does for any slow reader."""
        connection = self.connection
        if connection is not None and seconds > 0:
            connection.hold(seconds)


# The pacer of the task that sends a request: each response it opens is the pacer's until the
# next. Unset (titles, the SDK's own calls), reads are never held.
read_pacer: contextvars.ContextVar[ReadPacer | None] = contextvars.ContextVar("read_pacer", default=None)


@functools.cache
def default_ssl_context() -> ssl.SSLContext:
    """The context httpx2 would make (certifi's CAs, or SSL_CERT_FILE / SSL_CERT_DIR), made once
    per process: loading the CA bundle costs milliseconds and about a megabyte."""
    context = httpx2.create_ssl_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


def raw_chunks(response: httpx2.Response) -> AsyncIterator[bytes]:
    """The body of a response as it arrives: this transport's stream read directly when there is
    nothing to decode (saving httpx2's three generator layers per read), else `aiter_bytes()`.
    The response is still closed by whoever opened it; that releases the connection."""
    body = response.extensions.get(BODY_EXTENSION)
    if body is None or "content-encoding" in response.headers:
        return response.aiter_bytes()
    response.is_stream_consumed = True  # as aiter_bytes would: a second read raises, not reads nothing
    return body.__aiter__()  # type: ignore[no-any-return]


class _Stale(Exception):
    """A pooled connection the server had closed before answering: send again on a fresh one."""


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection and the response being read on it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, key: PoolKey) -> None:
        self.loop = loop
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.served = 0  # requests sent so far: more than one means it came from the pool
        self.idle_since = 0.0
        self.waiter: asyncio.Future[None] | None = None
        self.write_waiter: asyncio.Future[None] | None = None
        self.writing_paused = False
        self.reading_paused = False
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.held: asyncio.TimerHandle | None = None  # a pacer's hold: reading resumes when it fires
        self.pacer: ReadPacer | None = None
        self._idle()

    def _idle(self) -> None:
        """No response in progress: any byte the server sends now is a protocol error."""
        self.parser: httptools.HttpResponseParser | None = None
        self.request: httpx2.Request | None = None
        self.error: httpx2.TransportError | None = None
        self.answered = False
        self.head_bytes = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.http_version = b"HTTP/1.1"
        self.status = 0
        self.headers_done = False
        self.informational = False
        self.framed = False  # has a Content-Length or is chunked: else the body ends at EOF
        self.complete = False
        self.keep_alive = False
        self.close_asked = False
        self.head_only = False
        self.chunks.clear()
        self.buffered = 0
        if self.pacer is not None:
            if self.pacer.connection is self:
                self.pacer.connection = None
            self.pacer = None
        if self.reading_paused or self.held is not None:
            self.reading_paused = False
            if self.held is not None:
                self.held.cancel()
                self.held = None
            self._resume_reading()

    # --- Its lifecycle, from the transport ----------------------------------------------------
    def begin(self, request: httpx2.Request, *, close_asked: bool, head_only: bool) -> None:
        self._idle()
        self.served += 1
        self.request = request
        self.close_asked = close_asked
        self.head_only = head_only
        self.parser = httptools.HttpResponseParser(self)
        pacer = read_pacer.get()
        if pacer is not None:
            self.pacer = pacer
            pacer.connection = self

    def hold(self, seconds: float) -> None:
        if self.closed or self.complete or self.transport is None:
            return
        if self.held is not None:
            self.held.cancel()
        else:
            self.transport.pause_reading()
        self.held = self.loop.call_later(seconds, self._hold_over)

    def _hold_over(self) -> None:
        self.held = None
        if not self.reading_paused:
            self._resume_reading()

    def _resume_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def park(self) -> None:
        self._idle()
        self.idle_since = self.loop.time()

    def abort(self) -> None:
        """Close now, whatever is buffered either way: it is never reused."""
        self.keep_alive = False
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.abort()

    def close(self) -> None:
        self.keep_alive = False
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()

    async def wait(self, timeout: float | None) -> None:
        """Until something happens to the response (bytes, its end, an error). A timeout or a
        cancellation leaves the connection closed: the response's remainder is unknowable."""
        waiter = self.waiter = self.loop.create_future()
        try:
            if timeout is None:
                await waiter
            else:
                async with asyncio.timeout(timeout):
                    await waiter
        except TimeoutError:
            self.abort()
            raise httpx2.ReadTimeout("Timed out reading the response.", request=self.request) from None
        except BaseException:
            self.abort()
            raise

    async def drain(self, timeout: float | None) -> None:
        """Until the socket's write buffer is below its high-water mark. A connection that went
        away is not an error here: the reading side reports it, or the server's early answer."""
        if not self.writing_paused or self.closed:
            return
        waiter = self.write_waiter = self.loop.create_future()
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except TimeoutError:
            self.abort()
            raise httpx2.WriteTimeout("Timed out writing the request.", request=self.request) from None
        except BaseException:
            self.abort()
            raise

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _fail(self, error: httpx2.TransportError) -> None:
        if self.error is None:
            self.error = error
        self.abort()
        self._wake()

    # --- asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        parser = self.parser
        if parser is None or self.complete:
            # Bytes nobody asked for: what follows on this connection cannot be trusted.
            self.close()
            return
        self.answered = True
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(httpx2.RemoteProtocolError("The server switched protocols.", request=self.request))
            return
        except httptools.HttpParserError as error:
            self._fail(httpx2.RemoteProtocolError(f"Malformed response: {error}", request=self.request))
            return
        if not self.headers_done:
            self.head_bytes += len(data)
            if self.head_bytes > MAX_HEAD:
                self._fail(httpx2.RemoteProtocolError("The response head is too large.", request=self.request))
        elif self.buffered > HIGH_WATER and not self.reading_paused and not self.closed:
            self.reading_paused = True
            self.transport.pause_reading()  # type: ignore[union-attr]

    def eof_received(self) -> bool | None:
        return None  # the transport closes itself: connection_lost judges the response

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.held is not None:
            self.held.cancel()
            self.held = None
        if self.parser is not None and not self.complete and self.error is None:
            if exc is not None:
                self.error = httpx2.ReadError(str(exc) or type(exc).__name__, request=self.request)
            elif self.headers_done and not self.framed:
                self.complete = True  # a body delimited by the connection's end
            elif not self.answered:
                self.error = httpx2.RemoteProtocolError(
                    "Server disconnected without sending a response.", request=self.request
                )
            else:
                self.error = httpx2.RemoteProtocolError(
                    "peer closed connection without sending complete message body", request=self.request
                )
        self._wake()
        self._wake_writer()

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._wake_writer()

    def _wake_writer(self) -> None:
        waiter = self.write_waiter
        if waiter is not None:
            self.write_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # --- httptools callbacks ------------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self.complete:
            self.keep_alive = False  # a second response to one request

    def on_status(self, status: bytes) -> None:
        self.reason += status  # may come in pieces when the status line spans reads

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.headers_done:  # not the trailers of a chunked body
            self.headers.append((name, value.strip()))

    def on_headers_complete(self) -> None:
        parser = self.parser
        assert parser is not None
        status = parser.get_status_code()
        if 100 <= status < 200:  # 100 Continue and the like: the real response follows
            self.informational = True
            self.reason = b""
            self.headers = []
            return
        self.status = status
        self.http_version = b"HTTP/" + parser.get_http_version().encode("ascii")
        for name, value in self.headers:
            lowered = name.lower()
            if lowered == b"content-length" or (lowered == b"transfer-encoding" and b"chunked" in value.lower()):
                self.framed = True
        if status in (204, 304):
            self.framed = True
        self.headers_done = True
        if self.head_only:
            self.complete = True  # a HEAD response has no body, whatever its headers say
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def on_message_complete(self) -> None:
        if self.informational:
            self.informational = False
            return
        if not self.complete:
            self.complete = True
            parser = self.parser
            # Asked inside the callback: llhttp forgets it once the message is done.
            self.keep_alive = (
                not self.close_asked and not self.head_only and parser is not None and parser.should_keep_alive()
            )
        self._wake()


class _Body(httpx2.AsyncByteStream):
    """A response body as its bytes arrive. Read to the end, its connection goes back to the
    pool (if both sides allow); closed before that, the connection is closed."""

    def __init__(self, connection: _Connection, pool: StreamingTransport, read_timeout: float | None) -> None:
        self._connection = connection
        self._pool = pool
        self._read_timeout = read_timeout
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        chunks = connection.chunks
        timeout = self._read_timeout
        try:
            while True:
                if chunks:
                    # What came since the last look, in one piece: a held read brings several
                    # HTTP chunks (a vendor writes one per token), and each piece costs the
                    # reader a pass through its generators.
                    data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
                    chunks.clear()
                    connection.buffered = 0
                    if connection.reading_paused and not chunks:
                        connection.reading_paused = False
                        if connection.held is None:
                            connection._resume_reading()
                    yield data
                elif connection.complete:
                    break
                elif connection.error is not None:
                    raise connection.error
                else:
                    await connection.wait(timeout)
        finally:
            # Also on GeneratorExit (the reader stopped early) and on cancellation.
            self._release()

    async def aclose(self) -> None:
        self._release()

    def _release(self) -> None:
        if self._released:
            return
        self._released = True
        connection = self._connection
        if connection.complete and connection.keep_alive and not connection.closed and connection.error is None:
            self._pool._park(connection)
        else:
            connection.abort()


class StreamingTransport(httpx2.AsyncBaseTransport):
    """httpx2's transport interface over asyncio protocols, pooled per (scheme, host, port)."""

    def __init__(
        self, *, ssl_context: ssl.SSLContext | None = None, keepalive_expiry: float = KEEPALIVE_EXPIRY
    ) -> None:
        self._ssl_context = ssl_context
        self._keepalive_expiry = keepalive_expiry
        self._idle: dict[PoolKey, list[_Connection]] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        url = request.url
        scheme = url.raw_scheme
        if scheme not in DEFAULT_PORTS or not url.raw_host:
            raise httpx2.UnsupportedProtocol(f"Request URL has an unsupported protocol or no host: {url}")
        key: PoolKey = (scheme, url.raw_host.decode("ascii"), url.port or DEFAULT_PORTS[scheme])
        outgoing = _Outgoing.of(request)
        connection = self._checkout(key)
        if connection is not None:
            try:
                return await self._exchange(connection, outgoing)
            except _Stale:
                pass
        connection = await self._connect(key, outgoing.timeouts)
        return await self._exchange(connection, outgoing)

    async def aclose(self) -> None:
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()

    # --- Connections --------------------------------------------------------------------------
    async def _connect(self, key: PoolKey, timeouts: dict[str, float | None]) -> _Connection:
        scheme, host, port = key
        loop = asyncio.get_running_loop()
        context = (self._ssl_context or default_ssl_context()) if scheme == b"https" else None
        try:
            async with asyncio.timeout(timeouts.get("connect")):
                _, connection = await loop.create_connection(
                    lambda: _Connection(loop, key),
                    host,
                    port,
                    ssl=context,
                    server_hostname=host if context is not None else None,
                )
        except TimeoutError:
            raise httpx2.ConnectTimeout(f"Timed out connecting to {host}:{port}.") from None
        except OSError as error:  # refused, unreachable, no such host, TLS refused (ssl.SSLError)
            raise httpx2.ConnectError(str(error) or type(error).__name__) from error
        return connection

    def _checkout(self, key: PoolKey) -> _Connection | None:
        idle = self._idle.get(key)
        if not idle:
            return None
        loop = asyncio.get_running_loop()
        oldest = loop.time() - self._keepalive_expiry
        while idle:
            connection = idle.pop()  # the most recently used: the likeliest still open
            if connection.closed or connection.loop is not loop or connection.idle_since < oldest:
                connection.close()
                continue
            return connection
        return None

    def _park(self, connection: _Connection) -> None:
        if self._closed:
            connection.close()
            return
        connection.park()
        self._idle.setdefault(connection.key, []).append(connection)
        if self._sweeper is None:
            self._sweeper = connection.loop.call_later(self._keepalive_expiry, self._sweep)

    def _sweep(self) -> None:
        """Close the connections idle for longer than the expiry, so idle sockets don't linger."""
        self._sweeper = None
        loop: asyncio.AbstractEventLoop | None = None
        for key, idle in list(self._idle.items()):
            kept = []
            for connection in idle:
                oldest = connection.loop.time() - self._keepalive_expiry
                if connection.closed or connection.idle_since < oldest:
                    connection.close()
                else:
                    kept.append(connection)
                    loop = connection.loop
            if kept:
                self._idle[key] = kept
            else:
                del self._idle[key]
        if loop is not None:
            self._sweeper = loop.call_later(self._keepalive_expiry, self._sweep)

    # --- One request, one response ------------------------------------------------------------
    async def _exchange(self, connection: _Connection, outgoing: _Outgoing) -> httpx2.Response:
        connection.begin(outgoing.request, close_asked=outgoing.close_asked, head_only=outgoing.head_only)
        reused = connection.served > 1
        read_timeout = outgoing.timeouts.get("read")
        try:
            await outgoing.send(connection)
            while not connection.headers_done:
                if connection.error is not None:
                    if reused and not connection.answered and outgoing.body is not None:
                        raise _Stale
                    raise connection.error
                await connection.wait(read_timeout)
        except BaseException:
            connection.abort()
            raise
        stream = _Body(connection, self, read_timeout)
        return httpx2.Response(
            status_code=connection.status,
            headers=connection.headers,
            stream=stream,
            extensions={
                "http_version": connection.http_version,
                "reason_phrase": connection.reason,
                BODY_EXTENSION: stream,
            },
        )


@dataclass(frozen=True, slots=True)
class _Outgoing:
    """A request as this transport writes it."""

    request: httpx2.Request
    head: bytes  # the request line and headers
    body: bytes | None  # None: a stream, sent as it comes (and so never sent twice)
    chunked: bool
    close_asked: bool
    head_only: bool
    timeouts: dict[str, float | None]

    @classmethod
    def of(cls, request: httpx2.Request) -> _Outgoing:
        url = request.url
        lines = [request.method.encode("ascii"), b" ", url.raw_path, b" HTTP/1.1\r\n"]
        chunked = close_asked = False
        for name, value in request.headers.raw:
            if _ILLEGAL_IN_HEADER.search(name) or _ILLEGAL_IN_HEADER.search(value):
                raise httpx2.LocalProtocolError("Illegal header name or value.", request=request)
            lowered = name.lower()
            if lowered == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif lowered == b"connection":
                close_asked = b"close" in value.lower()
            lines += (name, b": ", value, b"\r\n")
        lines.append(b"\r\n")
        try:
            body: bytes | None = request.content
        except httpx2.RequestNotRead:
            body = None
        return cls(
            request=request,
            head=b"".join(lines),
            body=body,
            chunked=chunked,
            close_asked=close_asked,
            head_only=request.method == "HEAD",
            timeouts=request.extensions.get("timeout") or {},
        )

    async def send(self, connection: _Connection) -> None:
        """Write the request. As in httpcore2, a connection lost while writing is not reported
        here: the server may have answered early (a 413), and the read says what happened."""
        transport = connection.transport
        assert transport is not None
        write_timeout = self.timeouts.get("write")
        body = self.body
        if body is not None:
            if self.chunked:
                body = (b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)) if body else b"0\r\n\r\n"
            # One write, one segment, for a typical JSON body; a large one is not copied.
            if len(body) <= HIGH_WATER:
                transport.write(self.head + body)
            else:
                transport.write(self.head)
                transport.write(body)
            await connection.drain(write_timeout)
            return
        transport.write(self.head)
        async for part in self.request.stream:  # type: ignore[union-attr]
            if connection.closed:
                return
            if part:
                transport.write(b"%x\r\n%s\r\n" % (len(part), part) if self.chunked else part)
                await connection.drain(write_timeout)
        if self.chunked and not connection.closed:
            transport.write(b"0\r\n\r\n")
            await connection.drain(write_timeout)
