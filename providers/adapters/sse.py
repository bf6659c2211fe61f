"""Server-sent events parsed from raw bytes, for adapters that read a vendor's stream themselves.

The vendor SDKs turn every event into typed objects, which costs about as much CPU per streamed
token as the whole rest of a reply's path. An adapter that reads the stream itself feeds the
response's bytes to `SSEDecoder` and parses each event's `data` (left as bytes, so orjson reads it
with no decoding step).

The event-stream rules followed (WHATWG HTML, "Server-sent events"): a line ends in LF, CRLF or
CR, also when the pair is split across reads; a line starting with `:` is a comment; an event's
`data` lines are joined with LF; a blank line dispatches the event, and only if it had data; an
`event:` line names it; `id` and `retry` are read and ignored; a leading byte-order mark is
dropped. An event the stream ends in the middle of is never dispatched.
"""

from __future__ import annotations

from typing import NamedTuple

BOM = b"\xef\xbb\xbf"


class ServerSentEvent(NamedTuple):
    event: str | None  # the `event:` field; None when the event has none
    data: bytes


class SSEDecoder:
    """Bytes in, complete events out, in order. Holds at most one unfinished line between reads."""

    def __init__(self) -> None:
        self._partial: list[bytes] = []  # an unfinished line, in the pieces it came in
        self._event: str | None = None
        self._data: list[bytes] = []
        self._head = b""  # the stream's first bytes, while they may still be a byte-order mark
        self._started = False

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """The events that `chunk` completes (often exactly one: vendors write one per read)."""
        if not self._started:
            chunk = self._start(chunk)
        if self._partial:
            if b"\n" not in chunk and b"\r" not in chunk:
                # Pieces of a long line are joined once, when it ends: joining on every read
                # would copy the line over and over.
                self._partial.append(chunk)
                return []
            self._partial.append(chunk)
            chunk = b"".join(self._partial)
            self._partial.clear()
        if b"\r" in chunk:
            chunk = _normalise_line_ends(chunk)
        lines = chunk.split(b"\n")
        rest = lines.pop()
        if rest:
            self._partial.append(rest)
        events: list[ServerSentEvent] = []
        for line in lines:
            if line.startswith(b"data:"):
                # The common line first: one per token.
                self._data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif not line:
                if self._data:
                    events.append(self._dispatch())
                else:
                    self._event = None
            elif line[0] != 0x3A:  # not a comment (":"): another field
                self._field(line)
        return events

    def end(self) -> list[ServerSentEvent]:
        """The events the end of the stream completes: only one whose last line ended in a CR
        (held until now in case an LF followed). A begun event is dropped, as the rules say."""
        events = self.feed(b"\n") if self._partial and self._partial[-1].endswith(b"\r") else []
        self._partial.clear()
        self._event = None
        self._data = []
        return events

    def _start(self, chunk: bytes) -> bytes:
        head = self._head + chunk
        if len(head) < len(BOM) and BOM.startswith(head):
            self._head = head  # too short to tell yet
            return b""
        self._started = True
        self._head = b""
        return head[len(BOM) :] if head.startswith(BOM) else head

    def _field(self, line: bytes) -> None:
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"data":
            self._data.append(value)  # a bare `data` line: an empty line of data

    def _dispatch(self) -> ServerSentEvent:
        data = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
        event = ServerSentEvent(self._event, data)
        self._event = None
        self._data = []
        return event


def _normalise_line_ends(chunk: bytes) -> bytes:
    """CRLF and CR as LF. A CR that ends the read is kept as it is: it may be the first half of a
    CRLF, and the line it ends is only complete once the next read says which."""
    if chunk.endswith(b"\r"):
        return chunk[:-1].replace(b"\r\n", b"\n").replace(b"\r", b"\n") + b"\r"
    return chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
