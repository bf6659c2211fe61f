"""One pipelined Redis connection per event loop, for the commands a streamed reply makes per frame.

redis-py spends about 90 µs of CPU on every command, pipelined or not: a pool checkout with a
health read of the socket, retry and deprecation wrappers, packing, a stream reader per reply.
With hundreds of replies streaming, a frame's append to its stream buffer was the largest single
cost of a streamed token. This client does one thing: it writes commands in order on one
connection, every command of one event-loop iteration in one write, and hands each caller its
own reply, parsed as it arrives, for about a tenth of that.

It speaks RESP2 over TCP or a unix socket, as the URL says (user and password, database); a TLS
URL (`rediss://`) is not served here (`RedisLine.serves`), and its callers use redis-py instead.
Errors are redis-py's classes, so callers handle one set: an error reply raises `ResponseError`
(`NoScriptError` for NOSCRIPT); a connection that is lost, or silent for `timeout` seconds while
commands wait, fails every waiting command with `ConnectionError` (`TimeoutError`), and the next
command connects again.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import weakref
from collections import deque
from typing import Any

from redis.asyncio.connection import SSLConnection, parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

Arg = bytes | str | int

CRLF = b"\r\n"


def command_encode(args: tuple[Arg, ...]) -> bytes:
    """A command as RESP: an array of bulk strings."""
    pieces = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        pieces.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(pieces)


@functools.cache
def _script_sha(script: str) -> str:
    return hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()


class _Incomplete(Exception):
    """The buffer ends inside a reply: wait for more bytes."""


def _reply_at(buffer: bytearray, start: int) -> tuple[Any, int]:
    """The reply that begins at `start` and where the next one begins; raises `_Incomplete`."""
    end = buffer.find(CRLF, start)
    if end < 0:
        raise _Incomplete
    kind, line = buffer[start], bytes(buffer[start + 1 : end])
    after = end + 2
    if kind == 0x3A:  # ':' an integer: the append's seq, the commonest reply by far
        return int(line), after
    if kind == 0x24:  # '$' a bulk string
        return _bulk(buffer, int(line), after)
    if kind == 0x2A:  # '*' an array
        return _array(buffer, int(line), after)
    if kind == 0x2B:  # '+' a simple string
        return line.decode(), after
    if kind == 0x2D:  # '-' an error: returned, not raised, so one error fails one command only
        message = line.decode(errors="replace")
        return (NoScriptError if message.startswith("NOSCRIPT") else ResponseError)(message), after
    raise RedisConnectionError(f"Redis sent a reply this client cannot read ({chr(kind)!r})")


def _bulk(buffer: bytearray, size: int, start: int) -> tuple[bytes | None, int]:
    if size < 0:
        return None, start
    if len(buffer) < start + size + 2:
        raise _Incomplete
    return bytes(buffer[start : start + size]), start + size + 2


def _array(buffer: bytearray, count: int, start: int) -> tuple[list[Any] | None, int]:
    if count < 0:
        return None, start
    items = []
    for _ in range(count):
        item, start = _reply_at(buffer, start)
        items.append(item)
    return items, start


class _Line(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float, gather: float = 0.0) -> None:
        self._loop = loop
        self._timeout = timeout
        self._gather = gather
        self._transport: asyncio.Transport | None = None
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self._out: list[bytes] = []
        self._write_due = False
        self._buffer = bytearray()
        self._heard_at = 0.0  # when Redis last answered, or was first asked after a quiet spell
        self._watch: asyncio.TimerHandle | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def request(self, command: bytes) -> asyncio.Future[Any]:
        if self.closed:
            raise RedisConnectionError("The Redis connection is closed.")
        future = self._loop.create_future()
        if not self._waiting:
            self._heard_at = self._loop.time()
        self._waiting.append(future)
        self._out.append(command)
        if not self._write_due:
            # Every command asked for in this loop iteration (or within `gather` seconds) goes
            # in one write.
            self._write_due = True
            if self._gather:
                self._loop.call_later(self._gather, self._write)
            else:
                self._loop.call_soon(self._write)
        return future

    def _write(self) -> None:
        self._write_due = False
        if self.closed or self._transport is None:
            return
        self._transport.write(b"".join(self._out))
        self._out.clear()
        if self._watch is None:
            self._watch = self._loop.call_later(self._timeout, self._check_heard)

    def _check_heard(self) -> None:
        self._watch = None
        if not self._waiting or self.closed:
            return
        silent = self._loop.time() - self._heard_at
        if silent < self._timeout:
            self._watch = self._loop.call_later(self._timeout - silent, self._check_heard)
            return
        self._fail(RedisTimeoutError(f"Redis did not answer for {self._timeout:g} s."))
        if self._transport is not None:
            self._transport.abort()

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        try:
            while start < len(buffer):
                reply, start = _reply_at(buffer, start)
                future = self._waiting.popleft()
                if not future.done():  # its caller may have been cancelled meanwhile
                    if isinstance(reply, ResponseError):
                        future.set_exception(reply)
                    else:
                        future.set_result(reply)
        except _Incomplete:
            pass
        except (RedisConnectionError, IndexError, ValueError) as error:
            self._fail(RedisConnectionError(f"Redis's reply could not be read: {error}"))
            if self._transport is not None:
                self._transport.abort()
            return
        del buffer[:start]
        self._heard_at = self._loop.time()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(RedisConnectionError("The Redis connection was lost."))

    def _fail(self, error: Exception) -> None:
        self.closed = True
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_exception(error)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._fail(RedisConnectionError("The Redis connection was closed."))


class RedisLine:
    """One connection to the Redis at `url`, made on first use and again after it is lost. Use
    it from one event loop. `gather`: seconds a command may wait for others to share its write
    (0: those of the same loop iteration only)."""

    def __init__(self, url: str, *, timeout: float = 30.0, gather: float = 0.0) -> None:
        if not self.serves(url):
            raise ValueError("RedisLine does not serve TLS URLs (rediss://)")
        options = parse_url(url)
        self._path: str | None = options.get("path")
        self._host: str = options.get("host") or "localhost"
        self._port: int = int(options.get("port") or 6379)
        self._db = int(options.get("db") or 0)
        self._username: str | None = options.get("username")
        self._password: str | None = options.get("password")
        self._timeout = timeout
        self._gather = gather
        self._line: _Line | None = None
        self._connecting = asyncio.Lock()

    @staticmethod
    @functools.cache
    def serves(url: str) -> bool:
        return parse_url(url).get("connection_class") is not SSLConnection

    async def execute(self, *args: Arg) -> Any:
        """The reply to one command (bytes for strings; ints; lists)."""
        line = self._line
        if line is None or line.closed:
            line = await self._connected()
        return await line.request(command_encode(args))

    async def run_script(self, script: str, keys: tuple[Arg, ...], args: tuple[Arg, ...]) -> Any:
        """A Lua script's reply, by its hash; sent whole once Redis says it forgot it (a restart
        or SCRIPT FLUSH), which loads it again. A script refused as unknown did not run."""
        sha = _script_sha(script)
        try:
            return await self.execute(b"EVALSHA", sha, len(keys), *keys, *args)
        except NoScriptError:
            return await self.execute(b"EVAL", script, len(keys), *keys, *args)

    async def execute_in_order(self, *commands: tuple[Arg, ...]) -> list[Any]:
        """The replies to several commands, sent together and run by Redis one after another,
        with nothing of this connection's between them; raises the first error among them."""
        line = self._line
        if line is None or line.closed:
            line = await self._connected()
        waiting = [line.request(command_encode(command)) for command in commands]
        return [await future for future in waiting]

    async def _connected(self) -> _Line:
        async with self._connecting:
            if self._line is not None and not self._line.closed:
                return self._line
            loop = asyncio.get_running_loop()
            timeout, gather = self._timeout, self._gather

            def protocol() -> _Line:
                return _Line(loop, timeout, gather)

            line: _Line | None = None
            try:
                async with asyncio.timeout(timeout):
                    if self._path:
                        _, line = await loop.create_unix_connection(protocol, self._path)
                    else:
                        _, line = await loop.create_connection(protocol, self._host, self._port)
                    if self._password is not None:
                        who = (self._username,) if self._username else ()
                        await line.request(command_encode(("AUTH", *who, self._password)))
                    if self._db:
                        await line.request(command_encode(("SELECT", self._db)))
            except BaseException as error:
                if line is not None:
                    line.close()
                if isinstance(error, TimeoutError):
                    raise RedisTimeoutError("Redis did not answer the connection in time.") from None
                if isinstance(error, OSError):
                    raise RedisConnectionError(f"Could not connect to Redis: {error}") from None
                raise
            self._line = line
            return line

    def close(self) -> None:
        if self._line is not None:
            self._line.close()
            self._line = None


# How long a command may wait for others to share its write to Redis: with hundreds of replies
# streaming, a write per frame (a system call, and a wakeup of Redis) was a sixth of a streamed
# token's CPU, and a tenth still with 2 ms; a command reaches Redis at most this much later.
GATHER_SECONDS = 0.005
TIMEOUT_SECONDS = 30.0

_lines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, RedisLine]] = weakref.WeakKeyDictionary()


def loop_line(url: str) -> RedisLine | None:
    """The running loop's line to the Redis at `url` (made on first use), or None for a URL it
    does not serve (TLS): the caller uses redis-py then. It lives as long as the loop."""
    if not RedisLine.serves(url):
        return None
    lines = _lines.setdefault(asyncio.get_running_loop(), {})
    line = lines.get(url)
    if line is None:
        line = lines[url] = RedisLine(url, timeout=TIMEOUT_SECONDS, gather=GATHER_SECONDS)
    return line
