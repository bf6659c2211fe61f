"""The process's watchers end when cancelled, even when Redis's client swallows the cancellation
(a web process's event loop, or a test's, must be able to close)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio.client import PubSub

from chat.generation.watch import _listen_for_stops
from chat.streambuffer import stream_buffer


async def test_the_stop_listener_ends_when_cancelled_though_redis_swallows_it(monkeypatch: pytest.MonkeyPatch) -> None:
    original = PubSub.get_message
    subscribed = asyncio.Event()

    async def swallowing(self: PubSub, *args: Any, **kwargs: Any) -> Any:
        subscribed.set()
        try:
            return await original(self, *args, **kwargs)
        except asyncio.CancelledError:
            return None  # as redis-py's read can when a cancellation lands as it times out

    monkeypatch.setattr(PubSub, "get_message", swallowing)
    listener = asyncio.create_task(_listen_for_stops(stream_buffer()))
    await asyncio.wait_for(subscribed.wait(), timeout=10)

    listener.cancel()

    done, _ = await asyncio.wait([listener], timeout=10)  # generous: it ends at once
    assert listener in done and listener.cancelled()
