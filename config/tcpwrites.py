"""Twisted's TCP writes sent at once when nothing is queued, as asyncio's transports do.

Twisted queues every write and asks the reactor to tell it when the socket is writable: on the
asyncio reactor that is an `add_writer` (an epoll_ctl), a loop iteration later the send, then a
`remove_writer` (another epoll_ctl). A streamed reply writes a small WebSocket frame every few
tens of milliseconds to each socket, which is nearly always writable: those steps cost about
as much as the frame's whole trip through Channels and daphne. Here a write with nothing queued
before it goes to the socket at once; only what the socket does not take is queued, and the
queued path (with its error handling, producers and closing) is Twisted's own. A send that
fails is left to that path too: it queues the bytes, and its own send finds the error.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import tcp

_queued_write = tcp.Connection.write


def _write_at_once(self: Any, data: bytes) -> None:
    if (
        data
        and type(data) is bytes
        and self.connected
        and not self.disconnecting
        and not self._writeDisconnected
        and not self._tempDataLen
        and self.offset == len(self.dataBuffer)
    ):
        try:
            sent = self.socket.send(data)
        except OSError:  # would block, interrupted, or broken: the queued path decides
            sent = 0
        if sent == len(data):
            return
        data = data[sent:]
    _queued_write(self, data)


def tcp_writes_at_once_install() -> None:
    tcp.Connection.write = _write_at_once  # type: ignore[method-assign]


def tcp_writes_at_once_remove() -> None:
    tcp.Connection.write = _queued_write  # type: ignore[method-assign]
