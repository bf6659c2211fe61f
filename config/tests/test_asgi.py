"""The WebSocket entry, through the real ASGI application (origin check, session auth)."""

from __future__ import annotations

from typing import Any

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
    headers = [(b"origin", origin.encode()), (b"host", b"localhost:8000")]
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
    await communicator.disconnect()  # the browser's side of the close: the consumer ends


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


@pytest.mark.parametrize(
    "origin",
    [
        "http://localhost:9999",  # another port of the same host: another program
        "https://localhost:8000",  # another scheme
        "http://127.0.0.1:8000",  # an allowed host, but not the one this socket asked for
        "http://localhost:8000.evil.example",
        "null",
        "",
    ],
)
async def test_a_socket_from_another_origin_of_an_allowed_host_is_refused(origin: str) -> None:
    communicator = _communicator(origin, await _session_cookie())
    connected, _ = await communicator.connect()
    assert not connected


async def test_a_socket_without_an_origin_is_refused() -> None:
    cookie = await _session_cookie()
    headers = [(b"host", b"localhost:8000"), (b"cookie", f"sessionid={cookie}".encode())]
    connected, _ = await WebsocketCommunicator(application, "/ws/chat/", headers=headers).connect()
    assert not connected


async def test_a_host_outside_allowed_hosts_is_refused_even_from_its_own_origin() -> None:
    headers = [(b"origin", b"http://evil.example"), (b"host", b"evil.example")]
    connected, _ = await WebsocketCommunicator(application, "/ws/chat/", headers=headers).connect()
    assert not connected


@pytest.mark.parametrize(
    ("trusted", "origin", "allowed"),
    [
        ("https://chat.example.com", "https://chat.example.com", True),
        ("https://chat.example.com", "https://chat.example.com:8443", False),
        ("https://chat.example.com", "http://chat.example.com", False),
        ("https://*.example.com", "https://eu.example.com", True),
        ("https://*.example.com", "http://eu.example.com", False),
    ],
)
async def test_csrf_trusted_origins_are_matched_by_scheme_host_and_port(
    trusted: str, origin: str, allowed: bool, settings: Any
) -> None:
    settings.CSRF_TRUSTED_ORIGINS = [trusted]
    connected, _ = await _communicator(origin, await _session_cookie()).connect()
    assert connected is allowed


async def test_behind_a_tls_proxy_the_page_origin_is_https(settings: Any) -> None:
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    cookie = await _session_cookie()
    headers = [
        (b"origin", b"https://localhost:8000"),
        (b"host", b"localhost:8000"),
        (b"x-forwarded-proto", b"https"),
        (b"cookie", f"sessionid={cookie}".encode()),
    ]
    connected, _ = await WebsocketCommunicator(application, "/ws/chat/", headers=headers).connect()
    assert connected
