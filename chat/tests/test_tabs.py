from __future__ import annotations

import asyncio

import pytest
from channels.layers import get_channel_layer
from django_redis import get_redis_connection

from chat import tabs
from chat.tabs import PRESENCE_PREFIX, others_listening, presence_ensure

GROUP = "user.tabs-test"


@pytest.fixture
async def layer() -> object:
    layer = get_channel_layer()
    await presence_ensure(layer)
    return layer


async def _joined(layer: object) -> str:
    channel = await layer.new_channel()  # type: ignore[attr-defined]
    await layer.group_add(GROUP, channel)  # type: ignore[attr-defined]
    return channel


async def test_a_lone_socket_has_nobody_else_listening(layer: object) -> None:
    alone = await _joined(layer)
    assert await others_listening(layer, GROUP, alone) is False


async def test_a_second_socket_of_a_live_process_listens(layer: object) -> None:
    first = await _joined(layer)
    await _joined(layer)
    assert await others_listening(layer, GROUP, first) is True


async def test_a_socket_left_in_the_group_by_a_stopped_process_does_not_count(layer: object) -> None:
    mine = await _joined(layer)
    await layer.group_add(GROUP, "specific.0123456789abcdef!feed")  # type: ignore[attr-defined]
    assert await others_listening(layer, GROUP, mine) is False
    # ... until that process is alive again (its key set), and it is never removed from the group.
    get_redis_connection("default").set(PRESENCE_PREFIX + "0123456789abcdef", "1", ex=30)
    assert await others_listening(layer, GROUP, mine) is True


async def test_a_member_whose_name_does_not_say_its_process_counts(layer: object) -> None:
    mine = await _joined(layer)
    await layer.group_add(GROUP, "a-channel-of-another-layer")  # type: ignore[attr-defined]
    assert await others_listening(layer, GROUP, mine) is True


async def test_the_process_keeps_its_presence_key_set(layer: object, monkeypatch: pytest.MonkeyPatch) -> None:
    key = PRESENCE_PREFIX + layer.client_prefix  # type: ignore[attr-defined]
    connection = get_redis_connection("default")
    assert connection.ttl(key) > 0
    # Lost (a Redis restart): the next refresh sets it again.
    monkeypatch.setattr(tabs, "PRESENCE_EVERY", 0.01)
    tabs._presence.pop(asyncio.get_running_loop()).cancel()
    connection.delete(key)
    await presence_ensure(layer)
    connection.delete(key)
    for _ in range(200):
        if connection.exists(key):
            break
        await asyncio.sleep(0.01)
    assert connection.ttl(key) > 0
