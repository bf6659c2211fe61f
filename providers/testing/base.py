"""The HTTP machinery every fake vendor server shares, and the vendor-neutral script.

A server runs in a background thread (so sync and async tests can both use it), answers each
request with the next scripted behaviour (or its default reply), and records every request.
Subclasses say how requests route and how events are written on their wire.

Named faults (`FAULTS`) bend whatever a request would get, on every wire: set `server.fault`, or
write `fault:<name>` in the last message of a prompt (for the fault suite, and to try a running
Arbor against `python -m providers.testing`). A scripted `Fail` is never bent.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar


# --- The script --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Say:
    """Text the model writes."""

    text: str


@dataclass(frozen=True)
class Think:
    """Reasoning the model writes (thinking blocks, thoughts, reasoning fields)."""

    text: str


@dataclass(frozen=True)
class Call:
    """A tool call; `arguments` (JSON text) is sent in `chunks` pieces."""

    id: str
    name: str
    arguments: str
    chunks: int = 2


@dataclass(frozen=True)
class Count:
    """Token usage, reported where the vendor reports it."""

    input: int
    output: int
    reasoning: int = 0


@dataclass(frozen=True)
class End:
    """How the reply ends: stop, length, tool_calls or content_filter."""

    reason: str = "stop"


ScriptEvent = Say | Think | Call | Count | End


@dataclass(frozen=True)
class Reply:
    """A streamed answer. The faults apply at event positions (0 = before the first event)."""

    events: tuple[ScriptEvent, ...]
    delay: float = 0.0  # seconds between events
    drop_after: int | None = None  # close the connection after this many events
    # End the body cleanly after this many events, closing chunks included: the HTTP response is
    # complete, but the reply stops half-way (no finish, no [DONE], no message_stop).
    cut_after: int | None = None
    stall_after: int | None = None  # send nothing more after this many events, keep the connection
    malformed_at: int | None = None  # send a chunk that does not parse at this position
    # Never finish: after the events (End left out) the same text chunk follows forever, until the
    # client hangs up or the server stops (a vendor that ignores max_tokens, a looping local model).
    endless: bool = False


@dataclass(frozen=True)
class Fail:
    """An HTTP error answer in the vendor's error format."""

    status: int
    message: str = "fake failure"
    retry_after: float | None = None


Behaviour = Reply | Fail

ENDLESS_TEXT = "on and on "


def reply(*events: ScriptEvent, **faults: Any) -> Reply:
    """`reply(Say("Hi"), Count(3, 1), End())`: a Reply, with End() added when missing."""
    if not any(isinstance(event, End) for event in events):
        events = (*events, End())
    return Reply(events=tuple(events), **faults)


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, or None


# --- Named faults ------------------------------------------------------------------------------
def _midway(reply: Reply) -> int:
    """A position past the first event and before the end: where a mid-reply fault strikes."""
    return max(1, len(reply.events) // 2)


FAULTS: dict[str, Callable[[Reply], Behaviour]] = {
    "endless": lambda reply: dataclasses.replace(reply, endless=True),
    # The connection reset half-way: no finish, no [DONE] / message_stop.
    "drop": lambda reply: dataclasses.replace(reply, drop_after=_midway(reply)),
    # The body ends cleanly half-way: a complete HTTP response without the reply's terminal event.
    "cut": lambda reply: dataclasses.replace(reply, cut_after=_midway(reply)),
    "stall-first": lambda reply: dataclasses.replace(reply, stall_after=0),
    "stall": lambda reply: dataclasses.replace(reply, stall_after=_midway(reply)),
    "malformed": lambda reply: dataclasses.replace(reply, malformed_at=_midway(reply)),
    "429": lambda reply: Fail(429, "fake rate limit", retry_after=1),
    "500": lambda reply: Fail(500, "fake server error"),
}
_FAULT_IN_PROMPT = re.compile(r"\bfault:(" + "|".join(re.escape(name) for name in FAULTS) + r")(?![\w-])")


def fault_in_prompt(request: RecordedRequest) -> str | None:
    """The fault the request's last message names (`fault:drop`), on any vendor's body shape.
    Only the last message: a fault named earlier in a chat does not haunt its later turns."""
    body = request.body if isinstance(request.body, dict) else {}
    messages = body.get("messages") or body.get("contents")
    if not isinstance(messages, list) or not messages:
        return None
    named = _FAULT_IN_PROMPT.search(json.dumps(messages[-1]))
    return named.group(1) if named else None


def with_fault(behaviour: Behaviour, fault: str | None) -> Behaviour:
    """`behaviour` bent by the named fault (a failure stays as it is)."""
    if fault is None or isinstance(behaviour, Fail):
        return behaviour
    return FAULTS[fault](behaviour)


# --- The server --------------------------------------------------------------------------------
class FakeVendorServer:
    """Subclasses set `name` and implement `route`, `stream_chunks`, `malformed_chunk`,
    `error_response` and `models_body`; `content_type` is the streaming body's type."""

    name: ClassVar[str] = "fake"
    content_type: ClassVar[str] = "text/event-stream"
    default_reply: ClassVar[Reply] = Reply(events=(Say("Hello from the fake server."), Count(5, 6), End()))
    models: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, port: int = 0) -> None:
        self.port = port
        self.behaviours: deque[Behaviour] = deque()
        self.requests: list[RecordedRequest] = []
        # A name in FAULTS: every streamed answer is bent by it (a prompt's `fault:<name>` wins).
        self.fault: str | None = None
        # Wire chunks of every streamed reply pass through this when set: tests of a client's
        # parsing bend the wire itself (a missing [DONE], an error event, trailing bytes).
        self.rewrite: Callable[[list[bytes]], list[bytes]] | None = None
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Scripting -----------------------------------------------------------------------------
    def script(self, *behaviours: Behaviour) -> FakeVendorServer:
        self.behaviours.extend(behaviours)
        return self

    def next_behaviour(self) -> Behaviour:
        return self.behaviours.popleft() if self.behaviours else self.default_reply

    def behaviour_for(self, request: RecordedRequest) -> Behaviour:
        """What answers `request`: the next scripted behaviour, bent by the fault the prompt or
        the server names. A subclass may look at the request (the benchmark's server sizes each
        reply by what the prompt asks for)."""
        return with_fault(self.next_behaviour(), self.fault_for(request))

    def fault_for(self, request: RecordedRequest) -> str | None:
        return fault_in_prompt(request) or self.fault

    # Vendor specifics ---------------------------------------------------------------------
    def route(self, method: str, path: str) -> str | None:
        """'stream', 'models', 'images', or None (404)."""
        raise NotImplementedError

    def stream_chunks(self, events: tuple[ScriptEvent, ...], request: RecordedRequest) -> list[bytes]:
        """One wire chunk per script event (an event may need none: return b"" for it), then
        any closing chunks after the last event."""
        raise NotImplementedError

    def malformed_chunk(self) -> bytes:
        return b"data: {not json\n\n"

    def error_response(self, fail: Fail) -> tuple[dict[str, str], bytes]:
        raise NotImplementedError

    def models_body(self) -> bytes:
        raise NotImplementedError

    def images_body(self, request: RecordedRequest) -> bytes:
        """A generated picture, for vendors with an images endpoint (route → "images")."""
        raise NotImplementedError

    # Lifecycle -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "start() the server first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeVendorServer:
        self._server = _QuietServer(("127.0.0.1", self.port), _handler_for(self))
        # A short poll interval: stop() waits up to one interval for the serving loop to notice.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name=f"{self.name}-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeVendorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Serving -------------------------------------------------------------------------------
    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        request = RecordedRequest(
            method=handler.command, path=handler.path, headers=dict(handler.headers.items()), body=body
        )
        self.requests.append(request)
        kind = self.route(handler.command, handler.path.split("?", 1)[0])
        if kind is None:
            self._send(handler, 404, {"Content-Type": "application/json"}, b'{"error": "not found"}')
            return
        # Listings and pictures answer at once; only a scripted failure at the head is theirs.
        if kind in ("models", "images") and not (self.behaviours and isinstance(self.behaviours[0], Fail)):
            body = self.models_body() if kind == "models" else self.images_body(request)
            self._send(handler, 200, {"Content-Type": "application/json"}, body)
            return
        # A scripted failure answers whatever comes next (a rejected key fails a listing too).
        behaviour = self.behaviour_for(request)
        if isinstance(behaviour, Fail):
            headers, payload = self.error_response(behaviour)
            if behaviour.retry_after is not None:
                headers["Retry-After"] = str(behaviour.retry_after)
            self._send(handler, behaviour.status, headers, payload)
            return
        self._stream(handler, behaviour, request)

    def _send(self, handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes) -> None:
        handler.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(body))}.items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(body)

    def _stream(self, handler: BaseHTTPRequestHandler, reply: Reply, request: RecordedRequest) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", self.content_type)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.send_header("Cache-Control", "no-cache")
        handler.end_headers()
        for position, chunk in enumerate(self._with_faults(reply, request)):
            if self._stopping.is_set():  # an endless reply outlives no server
                _drop(handler)
                return
            if chunk is _DROP:
                _drop(handler)
                return
            if chunk is _CUT:
                break
            if chunk is _STALL:
                self._stopping.wait(timeout=120)
                _drop(handler)
                return
            if position and reply.delay:
                time.sleep(reply.delay)
            if chunk:
                _write_chunk(handler, chunk)
        handler.wfile.write(b"0\r\n\r\n")
        handler.wfile.flush()

    def _with_faults(self, reply: Reply, request: RecordedRequest) -> Iterator[bytes | object]:
        chunks: list[bytes] | Iterator[bytes]
        if reply.endless:
            chunks = self._endless_chunks(reply, request)
        else:
            chunks = self.stream_chunks(reply.events, request)
            if self.rewrite is not None:
                chunks = self.rewrite(chunks)
        for position, chunk in enumerate(chunks):
            if reply.malformed_at == position:
                yield self.malformed_chunk()
            if reply.drop_after == position:
                yield _DROP
            if reply.cut_after == position:
                yield _CUT
            if reply.stall_after == position:
                yield _STALL
            yield chunk
        if reply.drop_after is not None and isinstance(chunks, list) and reply.drop_after >= len(chunks):
            yield _DROP

    def _endless_chunks(self, reply: Reply, request: RecordedRequest) -> Iterator[bytes]:
        """The reply's events without its end, then one text chunk over and over. Rendered by the
        vendor's own `stream_chunks` (two filler events, so the repeated one is a middle chunk: a
        block already open, no role, nothing that only a first chunk carries); the closing chunks
        are never sent."""
        events = tuple(event for event in reply.events if not isinstance(event, End))
        filler = Say(ENDLESS_TEXT)
        chunks = self.stream_chunks((*events, filler, filler), request)
        if self.rewrite is not None:
            chunks = self.rewrite(chunks)
        head, again = chunks[: len(events) + 1], chunks[len(events) + 1]
        return itertools.chain(head, itertools.repeat(again))


_DROP = object()
_STALL = object()
_CUT = object()


def _write_chunk(handler: BaseHTTPRequestHandler, chunk: bytes) -> None:
    handler.wfile.write(f"{len(chunk):X}\r\n".encode() + chunk + b"\r\n")
    handler.wfile.flush()


def _drop(handler: BaseHTTPRequestHandler) -> None:
    """Close the connection mid-body, as a crashed or cut-off server would."""
    handler.wfile.flush()
    handler.connection.shutdown(socket.SHUT_RDWR)
    handler.close_connection = True


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # benchmarks open hundreds of connections at once

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client hanging up mid-stream (after a timeout or a malformed chunk) is expected."""
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError):
            super().handle_error(request, client_address)


def _handler_for(server: FakeVendorServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            server._serve(self)

        def do_POST(self) -> None:
            server._serve(self)

        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read their own output
            pass

    return Handler


def sse(payload: Any, event: str | None = None) -> bytes:
    """One server-sent event with a JSON payload."""
    prefix = f"event: {event}\n" if event else ""
    return f"{prefix}data: {json.dumps(payload)}\n\n".encode()


__all__ = [
    "ENDLESS_TEXT",
    "FAULTS",
    "Behaviour",
    "Call",
    "Count",
    "End",
    "Fail",
    "FakeVendorServer",
    "RecordedRequest",
    "Reply",
    "Say",
    "ScriptEvent",
    "Think",
    "fault_in_prompt",
    "reply",
    "sse",
    "with_fault",
]
