"""A turn's cost in statements (the default model looked up included): what every message sent pays
before its reply can start (37 and 27 before the chat row was locked once per turn)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from accounts.tests.factories import UserFactory
from chat.models import Message, Role
from chat.services.turns import turn_send
from providers.catalog import catalog_seed

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_platform_keys")]

Counter = Callable[..., Any]


@pytest.fixture
def user() -> Any:
    user = UserFactory()  # first: it restores the default tiers the seed grants models to
    catalog_seed()
    return user


def test_the_first_turn_of_a_new_chat_takes_at_most_26_statements(
    user: Any, django_assert_max_num_queries: Counter
) -> None:
    with django_assert_max_num_queries(26):
        started = turn_send(user=user, chat_id=None, parent_id=None, content="Hello", model_id=None)

    chat = started.chat
    chat.refresh_from_db()
    assert chat.selected_root_id == started.user_message.pk
    assert chat.active_leaf_id == started.assistant_message.pk


def test_a_reply_at_the_end_of_a_chat_takes_at_most_26_statements(
    user: Any, django_assert_max_num_queries: Counter
) -> None:
    first = turn_send(user=user, chat_id=None, parent_id=None, content="Hello", model_id=None)
    Message.objects.filter(pk=first.assistant_message.pk).update(status="complete")

    with django_assert_max_num_queries(26):
        second = turn_send(
            user=user, chat_id=first.chat.pk, parent_id=first.assistant_message.pk, content="More", model_id=None
        )

    chat = second.chat
    chat.refresh_from_db()
    assert chat.active_leaf_id == second.assistant_message.pk
    assert second.user_message.role == Role.USER and second.user_message.parent_id == first.assistant_message.pk
