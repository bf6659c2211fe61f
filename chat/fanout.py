"""Frames of the generations running in this process, handed straight to this process's followers.

Every frame is stored in the reply's Redis stream first (`chat.streambuffer`), which numbers it;
the runner then publishes the numbered frame here. A socket in the same process that follows
that reply (nearly always the tab that sent the message) reads it from an in-memory queue
instead of a blocking Redis read per frame: no Redis connection held per follower and no round
trip per frame. Other processes, and any reply that is not running here, are followed from
Redis as before (`StreamBuffer.follow`).

`follow_reply` joins the two without a gap or a duplicate: it subscribes first, then replays
from Redis what came after the client's seq, then reads the queue, skipping any seq it has
already sent. A frame stored before the subscription is in the replay; one stored after it
is published to the queue (publishing follows storing). A frame stored but not published
shows as a jump in seq, which is filled from Redis.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

from chat.streambuffer import StreamBuffer

Frame = dict[str, Any]
_CLOSED: Frame = {"type": "_closed"}  # the generation ended without a `done` reaching the queue


class Fanout:
    """One per event loop (see `fanout`). Not thread-safe: use it from its loop only."""

    def __init__(self) -> None:
        self._queues: dict[str, set[asyncio.Queue[Frame]]] = {}

    def open(self, message_id: str) -> None:
        self._queues.setdefault(message_id, set())

    def publish(self, message_id: str, frame: Frame) -> None:
        for queue in self._queues.get(message_id, ()):
            queue.put_nowait(frame)

    def close(self, message_id: str) -> None:
        for queue in self._queues.pop(message_id, ()):
            queue.put_nowait(_CLOSED)

    def is_open(self, message_id: str) -> bool:
        return message_id in self._queues

    @contextmanager
    def subscribed(self, message_id: str) -> Iterator[asyncio.Queue[Frame] | None]:
        """A queue of the reply's frames from now on; None when it is not running here."""
        queues = self._queues.get(message_id)
        if queues is None:
            yield None
            return
        queue: asyncio.Queue[Frame] = asyncio.Queue()
        queues.add(queue)
        try:
            yield queue
        finally:
            queues.discard(queue)


_fanouts: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Fanout] = weakref.WeakKeyDictionary()


def fanout() -> Fanout:
    """The running loop's fan-out."""
    loop = asyncio.get_running_loop()
    hub = _fanouts.get(loop)
    if hub is None:
        hub = _fanouts[loop] = Fanout()
    return hub


async def follow_reply(buffer: StreamBuffer, message_id: str, after_seq: int = 0) -> AsyncIterator[Frame]:
    """The reply's frames after `after_seq`, through `done`: from this process's queue when the
    reply is running here, else from Redis. Raises what `StreamBuffer.follow` raises."""
    seq = after_seq
    with fanout().subscribed(message_id) as queue:
        if queue is not None:
            for frame in await buffer.replay(message_id, seq):
                yield frame
                seq = frame["seq"]
                if frame["type"] == "done":
                    return
            while (frame := await queue.get()) is not _CLOSED:
                if frame["seq"] <= seq:
                    continue  # stored before the replay read it, published after
                # A frame stored but never published (its writer was cancelled between the two,
                # as a stop does) leaves a hole: Redis has it, so read the hole from there.
                frames = await buffer.replay(message_id, seq) if frame["seq"] > seq + 1 else [frame]
                for frame in frames:
                    yield frame
                    seq = frame["seq"]
                    if frame["type"] == "done":
                        return
    # Not running here, or it ended without publishing its `done` here: Redis has the rest.
    async for frame in buffer.follow(message_id, seq):
        yield frame
