"""Disabling a user closes their sockets at once (through the real ASGI app and channel layer)
and refuses their requests; idle guests; the audit log."""

from __future__ import annotations

from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.utils import timezone

from accounts.models import User
from accounts.tests.factories import GuestFactory, UserFactory
from chat.consumers import CLOSE_DISABLED, CLOSE_UNAUTHENTICATED
from config.asgi import application
from usage.models import AuditEntry
from usage.services.operators import idle_guests, user_disable, user_enable
from usage.tests.factories import usage_row


def _socket(cookie: str) -> WebsocketCommunicator:
    headers = [
        (b"origin", b"http://localhost:8000"),
        (b"host", b"localhost"),
        (b"cookie", f"sessionid={cookie}".encode()),
    ]
    return WebsocketCommunicator(application, "/ws/chat/", headers=headers)


@database_sync_to_async
def _signed_in() -> tuple[User, User, str]:
    user, admin = UserFactory(), User.objects.create_superuser("root@example.com", "a-long-passphrase-42")
    client = Client()
    client.force_login(user)
    return user, admin, client.cookies["sessionid"].value


@pytest.mark.django_db(transaction=True)
async def test_disabling_a_user_closes_every_open_socket_of_theirs_at_once() -> None:
    user, admin, cookie = await _signed_in()
    tabs = [_socket(cookie), _socket(cookie)]
    for tab in tabs:
        connected, _ = await tab.connect()
        assert connected
    await tabs[0].send_json_to({"type": "ping", "req": 1})
    assert (await tabs[0].receive_json_from())["type"] == "pong"

    await database_sync_to_async(user_disable)(user=user, actor=admin)

    for tab in tabs:
        closed = await tab.receive_output(timeout=5)
        assert closed == {"type": "websocket.close", "code": CLOSE_DISABLED}
    entry = await database_sync_to_async(AuditEntry.objects.get)(action="user.disable")
    assert (entry.subject_user_id, entry.actor_label) == (user.pk, "root@example.com")


@pytest.mark.django_db(transaction=True)
async def test_a_disabled_users_new_socket_is_refused() -> None:
    user, admin, cookie = await _signed_in()
    await database_sync_to_async(user_disable)(user=user, actor=admin)
    tab = _socket(cookie)

    await tab.connect()

    closed = await tab.receive_output(timeout=5)
    assert closed["type"] == "websocket.close"
    assert closed["code"] in {CLOSE_UNAUTHENTICATED, CLOSE_DISABLED}  # Django no longer signs them in


@pytest.mark.django_db
def test_a_disabled_users_session_no_longer_signs_them_in_and_enabling_restores_it() -> None:
    user, admin = UserFactory(), UserFactory(is_staff=True)
    client = Client()
    client.force_login(user)

    user_disable(user=user, actor=admin)
    assert client.get("/api/chats").status_code in {401, 403}

    user_enable(user=user, actor=admin)
    assert User.objects.get(pk=user.pk).is_active
    assert [entry.action for entry in AuditEntry.objects.order_by("at")] == ["user.disable", "user.enable"]


@pytest.mark.django_db
def test_idle_guests_are_those_without_any_recent_activity() -> None:
    now = timezone.now()
    old = now - timedelta(days=60)
    idle = GuestFactory(date_joined=old, last_login=old)
    generated = GuestFactory(date_joined=old, last_login=old)
    usage_row(at=now - timedelta(days=1), user=generated)
    signed_in = GuestFactory(date_joined=old, last_login=now)
    GuestFactory()  # new
    UserFactory(date_joined=old)  # registered: never pruned

    assert list(idle_guests(days=30)) == [idle]
    assert signed_in not in idle_guests(days=30)
