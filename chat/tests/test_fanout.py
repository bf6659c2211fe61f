"""Following a reply that runs in this process: from memory, joined to Redis without a gap."""

from __future__ import annotations

import asyncio
from typing import Any

from django.conf import settings

from chat.fanout import Fanout, fanout, follow_reply
from chat.streambuffer import StreamBuffer


async def _store_and_publish(buffer: StreamBuffer, hub: Fanout, message_id: str, frame: dict[str, Any]) -> int:
    seq = await buffer.append(message_id, frame)
    hub.publish(message_id, {**frame, "message_id": message_id, "seq": seq})
    return seq


async def test_a_follower_gets_stored_frames_then_live_ones_once_each_in_order() -> None:
    buffer, hub = StreamBuffer(settings.REDIS_URL), fanout()
    await buffer.open("local")
    hub.open("local")
    for text in ("a", "b", "c"):
        await _store_and_publish(buffer, hub, "local", {"type": "delta", "text": text})
    follower = follow_reply(buffer, "local", after_seq=1)
    assert [(await anext(follower))["text"] for _ in range(2)] == ["b", "c"]
    # Stored before the follower read the buffer but published after: sent once, not twice.
    late = await buffer.append("local", {"type": "delta", "text": "d"})
    reading = asyncio.ensure_future(anext(follower))
    await asyncio.sleep(0.05)
    hub.publish("local", {"type": "delta", "text": "d", "message_id": "local", "seq": late})
    await _store_and_publish(buffer, hub, "local", {"type": "done", "status": "complete"})
    rest = [await reading] + [frame async for frame in follower]
    assert [(frame["seq"], frame["type"]) for frame in rest] == [(4, "delta"), (5, "done")]
    await buffer.aclose()


async def test_a_live_frame_reaches_a_local_follower_without_a_redis_read() -> None:
    buffer, hub = StreamBuffer(settings.REDIS_URL), fanout()
    await buffer.open("quiet")
    hub.open("quiet")
    follower = follow_reply(buffer, "quiet")
    reading = asyncio.ensure_future(anext(follower))
    await asyncio.sleep(0.05)
    # Published only, never stored: only the in-memory path can deliver it.
    hub.publish("quiet", {"type": "delta", "text": "hi", "message_id": "quiet", "seq": 1})
    assert (await asyncio.wait_for(reading, 2))["text"] == "hi"
    await follower.aclose()
    await buffer.aclose()


async def test_a_reply_not_running_here_is_followed_from_redis() -> None:
    buffer = StreamBuffer(settings.REDIS_URL)
    await buffer.open("elsewhere")
    await buffer.append("elsewhere", {"type": "delta", "text": "x"})
    await buffer.finish("elsewhere", {"type": "done", "status": "complete"})
    frames = [frame async for frame in follow_reply(buffer, "elsewhere")]
    assert [frame["type"] for frame in frames] == ["delta", "done"]
    await buffer.aclose()


async def test_a_generation_that_ends_without_publishing_done_hands_its_followers_to_redis() -> None:
    buffer, hub = StreamBuffer(settings.REDIS_URL), fanout()
    await buffer.open("cut")
    hub.open("cut")
    follower = follow_reply(buffer, "cut")
    reading = asyncio.ensure_future(anext(follower))
    await asyncio.sleep(0.05)
    hub.close("cut")
    await buffer.finish("cut", {"type": "done", "status": "error"})
    assert (await asyncio.wait_for(reading, 5))["status"] == "error"
    await buffer.aclose()


async def test_a_frame_stored_but_never_published_is_read_from_redis_so_nothing_is_missed() -> None:
    buffer, hub = StreamBuffer(settings.REDIS_URL), fanout()
    await buffer.open("hole")
    hub.open("hole")
    follower = follow_reply(buffer, "hole")
    reading = asyncio.ensure_future(anext(follower))
    await asyncio.sleep(0.05)
    await buffer.append("hole", {"type": "delta", "text": "stored only"})  # its writer was cancelled here
    await _store_and_publish(buffer, hub, "hole", {"type": "delta", "text": "next"})
    await _store_and_publish(buffer, hub, "hole", {"type": "done", "status": "stopped"})
    frames = [await reading] + [frame async for frame in follower]
    assert [(frame["seq"], frame.get("text")) for frame in frames] == [(1, "stored only"), (2, "next"), (3, None)]
    await buffer.aclose()
