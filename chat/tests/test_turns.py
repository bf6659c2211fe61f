"""A turn's cost in statements (the default model looked up included): what every message sent pays
before its reply can start (37 and 27 before the chat row was locked once per turn; 26 and 26
before routes came from the catalog snapshot and an exchange was appended in one INSERT; 15 and
12 before the admission, the chat's lock and the exchange became one statement, `chat_turn_send`).
Inside the test's transaction that statement has a savepoint around it (two more statements);
on a socket's autocommit connection it is alone."""

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


def test_the_first_turn_of_a_new_chat_takes_at_most_9_statements(
    user: Any, django_assert_max_num_queries: Counter
) -> None:
    with django_assert_max_num_queries(9):  # six of them load the catalog and the default model
        started = turn_send(user=user, chat_id=None, parent_id=None, content="Hello", model_id=None)

    chat = started.chat
    chat.refresh_from_db()
    assert chat.selected_root_id == started.user_message.pk
    assert chat.active_leaf_id == started.assistant_message.pk


def test_a_reply_at_the_end_of_a_chat_takes_at_most_4_statements(
    user: Any, django_assert_max_num_queries: Counter
) -> None:
    first = turn_send(user=user, chat_id=None, parent_id=None, content="Hello", model_id=None)
    Message.objects.filter(pk=first.assistant_message.pk).update(status="complete")

    with django_assert_max_num_queries(4):  # the chat's default model read, then the turn
        second = turn_send(
            user=user, chat_id=first.chat.pk, parent_id=first.assistant_message.pk, content="More", model_id=None
        )

    chat = second.chat
    chat.refresh_from_db()
    assert chat.active_leaf_id == second.assistant_message.pk
    assert second.user_message.role == Role.USER and second.user_message.parent_id == first.assistant_message.pk


def test_the_reservation_is_held_apart_from_usage_and_a_fork_copies_none_of_it(user: Any) -> None:
    from chat.services.tree import chat_fork

    started = turn_send(user=user, chat_id=None, parent_id=None, content="Hello", model_id=None)
    placeholder = Message.objects.get(pk=started.assistant_message.pk)
    assert placeholder.reservation["reserved_tokens"] > 0
    assert placeholder.usage == {}

    fork = chat_fork(message=placeholder, owner=user)
    copied = Message.objects.get(chat=fork, role=Role.ASSISTANT)
    assert copied.usage == {} and copied.reservation == {}


def test_an_exchange_is_placed_like_two_appends(user: Any) -> None:
    first = turn_send(user=user, chat_id=None, parent_id=None, content="Hello", model_id=None)
    Message.objects.filter(pk=first.assistant_message.pk).update(status="complete")
    second = turn_send(
        user=user, chat_id=first.chat.pk, parent_id=first.assistant_message.pk, content="More", model_id=None
    )
    rows = {m.pk: m for m in Message.objects.filter(chat=first.chat)}
    question, reply = rows[second.user_message.pk], rows[second.assistant_message.pk]
    parent = rows[first.assistant_message.pk]
    assert (question.depth, question.rank, reply.depth, reply.rank) == (3, 0, 4, 0)
    assert str(question.path) == str(parent.path) == str(reply.path)
    assert parent.selected_child_id == question.pk and parent.child_count == 1
    assert question.selected_child_id == reply.pk and question.child_count == 1
    first.chat.refresh_from_db()
    assert first.chat.message_count == 4 and first.chat.active_leaf_id == reply.pk
