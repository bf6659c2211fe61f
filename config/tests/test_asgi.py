"""The WebSocket entry, through the real ASGI application (origin check, session auth)."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from accounts.models import User
from accounts.selectors import tier_registered_default
from config.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def _session_cookie() -> str:
    user = User.objects.create_user("ws@example.com", "a-long-password-1", tier=tier_registered_default())
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def _communicator(origin: str, cookie: str | None = None) -> WebsocketCommunicator:
    headers = [(b"origin", origin.encode()), (b"host", b"localhost")]
    if cookie:
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    return WebsocketCommunicator(application, "/ws/chat/", headers=headers)


async def test_a_signed_in_socket_from_an_allowed_origin_is_accepted() -> None:
    communicator = _communicator("http://localhost:8000", await _session_cookie())
    connected, _ = await communicator.connect()
    assert connected
    await communicator.disconnect()


async def test_a_socket_from_a_foreign_origin_is_refused_at_handshake() -> None:
    communicator = _communicator("https://evil.example", await _session_cookie())
    connected, _ = await communicator.connect()
    assert not connected


async def test_a_socket_without_a_session_is_closed_with_4401() -> None:
    communicator = _communicator("http://localhost:8000")
    connected, _ = await communicator.connect()
    assert connected
    closed = await communicator.receive_output()
    assert closed == {"type": "websocket.close", "code": 4401}


async def test_an_unknown_frame_gets_an_error_frame_echoing_its_req_and_the_socket_stays_open() -> None:
    communicator = _communicator("http://localhost:8000", await _session_cookie())
    await communicator.connect()
    await communicator.send_json_to({"type": "teleport", "req": 7})
    assert await communicator.receive_json_from() == {
        "type": "error",
        "req": 7,
        "code": "unknown_type",
        "message": "Unknown frame type 'teleport'.",
    }
    await communicator.send_to(text_data="not json")
    reply = await communicator.receive_json_from()
    assert reply["code"] == "bad_frame"
    await communicator.disconnect()
