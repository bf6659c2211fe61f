"""Arbor's Redis pools make connections without redis-py's driver handshake (`driver_info=None`):
otherwise each new connection reads redis-py's package metadata from disk and sends CLIENT
SETINFO twice, and pools make new connections often (a cancelled blocking read closes its
connection)."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django_redis import get_redis_connection

from chat.streambuffer import StreamBuffer


def test_the_stream_buffers_connections_skip_the_driver_handshake(settings: Any) -> None:
    async def driver_info() -> Any:
        buffer = StreamBuffer(settings.REDIS_URL)
        try:
            connection = await buffer.client.connection_pool.get_connection()
            return connection.driver_info
        finally:
            await buffer.aclose()

    assert async_to_sync(driver_info)() is None


def test_the_channel_layers_connections_skip_the_driver_handshake() -> None:
    async def driver_info() -> Any:
        layer = get_channel_layer()
        async with layer.connection(0) as client:
            connection = await client.connection_pool.get_connection()
            await client.connection_pool.release(connection)
            return connection.driver_info

    assert async_to_sync(driver_info)() is None


def test_the_caches_connections_skip_the_driver_handshake() -> None:
    pool = get_redis_connection("default").connection_pool
    connection = pool.get_connection()
    pool.release(connection)
    assert connection.driver_info is None
