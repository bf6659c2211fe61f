from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from config import tcpwrites


@dataclass
class Connection:
    """What the write reads of a Twisted TCP connection, on a real socket."""

    socket: socket.socket
    connected: bool = True
    disconnecting: bool = False
    _writeDisconnected: bool = False
    _tempDataLen: int = 0
    offset: int = 0
    dataBuffer: bytes = b""
    queued: list[bytes] = field(default_factory=list)


@pytest.fixture
def pair(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Connection, socket.socket]]:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    monkeypatch.setattr(tcpwrites, "_queued_write", lambda connection, data: connection.queued.append(data))
    yield Connection(ours), theirs
    ours.close()
    theirs.close()


def test_a_write_with_nothing_queued_goes_to_the_socket_at_once(pair: tuple[Connection, socket.socket]) -> None:
    connection, peer = pair
    tcpwrites._write_at_once(connection, b"frame")
    assert peer.recv(100) == b"frame"
    assert connection.queued == []


def test_a_write_behind_queued_bytes_is_queued_behind_them(pair: tuple[Connection, socket.socket]) -> None:
    connection, peer = pair
    connection._tempDataLen = 3
    tcpwrites._write_at_once(connection, b"frame")
    assert connection.queued == [b"frame"]
    peer.setblocking(False)
    with pytest.raises(BlockingIOError):
        peer.recv(100)


def test_what_a_full_socket_does_not_take_is_queued(pair: tuple[Connection, socket.socket]) -> None:
    connection, _ = pair
    data = b"x" * (8 * 1024 * 1024)  # more than any socket buffer holds
    tcpwrites._write_at_once(connection, data)
    assert len(connection.queued) == 1
    assert 0 < len(connection.queued[0]) < len(data)
    assert data.endswith(connection.queued[0])


def test_a_failed_send_leaves_the_whole_write_to_twisted(pair: tuple[Connection, socket.socket]) -> None:
    connection, peer = pair
    peer.close()
    connection.socket.shutdown(socket.SHUT_WR)  # sends now fail with a broken pipe
    tcpwrites._write_at_once(connection, b"frame")
    assert connection.queued == [b"frame"]


def test_a_closing_connection_writes_through_twisted(pair: tuple[Connection, socket.socket]) -> None:
    connection, _ = pair
    connection.disconnecting = True
    tcpwrites._write_at_once(connection, b"frame")
    assert connection.queued == [b"frame"]
