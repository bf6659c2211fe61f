"""Disabling a user refuses their requests and announces it (`user_disabled`: chat closes their
sockets and stops their replies, tested in chat/tests/test_receivers.py); idle guests; the audit
log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import User
from accounts.tests.factories import GuestFactory, UserFactory
from usage.models import AuditEntry
from usage.services.operators import idle_guests, user_disable, user_enable
from usage.signals import user_disabled
from usage.tests.factories import usage_row


@pytest.fixture
def disabled_signals() -> Iterator[list[dict[str, Any]]]:
    received: list[dict[str, Any]] = []
    user_disabled.connect(lambda **kwargs: received.append(kwargs), weak=False, dispatch_uid="test.user_disabled")
    yield received
    user_disabled.disconnect(dispatch_uid="test.user_disabled")


@pytest.mark.django_db
def test_disabling_a_user_is_audited_and_announced_to_the_apps_above(disabled_signals: list[dict[str, Any]]) -> None:
    """The apps above usage stop what the user has running (chat: chat/tests/test_receivers.py)."""
    user, admin = UserFactory(), UserFactory(is_staff=True)

    user_disable(user=user, actor=admin)

    assert [(signal["sender"], signal["user_id"]) for signal in disabled_signals] == [(User, user.pk)]
    assert not User.objects.get(pk=user.pk).is_active
    entry = AuditEntry.objects.get(action="user.disable")
    assert (entry.subject_user_id, entry.actor_label) == (user.pk, str(admin))


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
