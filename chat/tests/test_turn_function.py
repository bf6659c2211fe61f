"""`chat_turn_send`, the one statement a common turn is (migration chat 0006), through its only
caller `turn_send`: what it writes is what the ORM would have, and every refusal writes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.limits import MESSAGES, TOKENS
from accounts.models import Tier, UsageBucket
from accounts.tests.factories import UserFactory
from chat.models import Chat, Message, Role, Status
from chat.services.turns import TurnRefused, turn_send
from providers.catalog import catalog_seed

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_platform_keys")]


@pytest.fixture
def user() -> Any:
    user = UserFactory()  # first: it restores the default tiers the seed grants models to
    catalog_seed()
    return user


def _send(user: Any, chat: Any = None, parent: Any = None, **fields: Any) -> Any:
    return turn_send(user=user, chat_id=chat, parent_id=parent, content="Hello", model_id=None, **fields)


def _levels(user: Any) -> dict[str, float]:
    return dict(UsageBucket.objects.filter(user=user).values_list("kind", "tokens"))


def _defaults_kept(instance: Any, given: set[str]) -> None:
    for field in type(instance)._meta.concrete_fields:
        if field.attname not in given:
            assert getattr(instance, field.attname) == field.get_default(), field.attname


def test_the_rows_it_writes_hold_the_models_defaults_where_it_gives_nothing(user: Any) -> None:
    started = _send(user)

    chat = Chat.objects.get(pk=started.chat.pk)
    given = {"id", "owner_id", "default_model", "selected_root_id", "active_leaf_id", "root_count", "message_count"}
    _defaults_kept(chat, given | {"created_at", "updated_at", "last_activity_at"})
    question, reply = (Message.objects.get(pk=m.pk) for m in (started.user_message, started.assistant_message))
    placed = {"id", "chat_id", "parent_id", "path", "depth", "rank", "created_at"}
    _defaults_kept(question, placed | {"child_count", "selected_child_id", "selected_rank", "role", "content", "text"})
    _defaults_kept(reply, placed | {"role", "model_id", "reservation", "status"})


def test_the_objects_it_returns_are_the_rows_it_wrote(user: Any) -> None:
    first = _send(user)
    started = _send(user, first.chat.pk, first.assistant_message.pk)

    for built in (started.user_message, started.assistant_message):
        saved = Message.objects.get(pk=built.pk)
        for field in Message._meta.concrete_fields:
            assert getattr(built, field.attname) == getattr(saved, field.attname), field.attname
    assert started.assistant_message.parent is started.user_message
    assert started.chat.active_leaf is started.assistant_message
    assert started.chat.message_count == Chat.objects.get(pk=first.chat.pk).message_count == 4


def test_a_reply_at_the_end_of_a_chat_is_one_statement(user: Any) -> None:
    first = _send(user)

    model = first.assistant_message.model_id

    with CaptureQueriesContext(connection) as captured:
        turn_send(user=user, chat_id=first.chat.pk, parent_id=first.assistant_message.pk, content="Hi", model_id=model)

    # Inside the test's transaction the statement gets a savepoint (a race on client_id must
    # not abort the caller's transaction); on a socket's autocommit connection it is alone.
    statements = [query["sql"] for query in captured.captured_queries if "SAVEPOINT" not in query["sql"]]
    assert len(statements) == 1 and "chat_turn_send" in statements[0]


def test_a_turn_short_of_tokens_is_refused_with_the_wait_and_keeps_its_message(user: Any) -> None:
    Tier.objects.filter(pk=user.tier_id).update(token_capacity=2_000, tokens_per_minute=60)
    _send(user)  # about 1,010 of the 2,000 tokens reserved
    before = _levels(user)

    with pytest.raises(TurnRefused) as refused:
        _send(user)

    assert refused.value.code == "rate_limited"
    assert refused.value.retry_after is not None and refused.value.retry_after > 0
    after = _levels(user)
    assert after[MESSAGES] == before[MESSAGES]
    assert after[TOKENS] == pytest.approx(before[TOKENS], abs=1)  # the refill only
    assert Message.objects.count() == 2


def test_another_users_chat_is_not_found_and_takes_nothing(user: Any) -> None:
    theirs = _send(UserFactory(tier_id=user.tier_id))
    before = _levels(user)

    with pytest.raises(TurnRefused) as refused:
        _send(user, theirs.chat.pk, theirs.assistant_message.pk)

    assert refused.value.code == "not_found"
    assert _levels(user) == before
    assert Message.objects.filter(chat__owner=user).count() == 0


def test_a_reply_under_an_earlier_message_is_placed_as_a_branch(user: Any) -> None:
    first = _send(user)
    second = _send(user, first.chat.pk, first.assistant_message.pk)

    branch = _send(user, first.chat.pk, first.assistant_message.pk)  # again under the first reply

    question = Message.objects.get(pk=branch.user_message.pk)
    assert (question.parent_id, question.rank) == (first.assistant_message.pk, 1)
    chat = Chat.objects.get(pk=first.chat.pk)
    assert chat.active_leaf_id == branch.assistant_message.pk
    assert Message.objects.get(pk=first.assistant_message.pk).selected_child_id == question.pk
    assert Message.objects.filter(pk=second.user_message.pk).exists()
    capacity = Tier.objects.get(pk=user.tier_id).message_capacity
    assert _levels(user)[MESSAGES] == pytest.approx(capacity - 3, abs=0.1)  # taken once each


def test_a_repeated_client_id_is_answered_with_its_turn_and_writes_nothing(user: Any) -> None:
    first = _send(user, client_id="abc")
    before = _levels(user)

    again = _send(user, client_id="abc")

    assert not again.created
    assert (again.user_message.pk, again.assistant_message.pk) == (first.user_message.pk, first.assistant_message.pk)
    assert _levels(user) == before
    assert Message.objects.count() == 2


def test_a_repeated_send_is_answered_even_when_its_model_is_no_longer_offered(user: Any) -> None:
    first = _send(user, client_id="abc")

    again = turn_send(user=user, chat_id=None, parent_id=None, content="Hello", model_id="no:such", client_id="abc")

    assert not again.created and again.assistant_message.pk == first.assistant_message.pk
    assert again.assistant_message.role == Role.ASSISTANT and again.assistant_message.status == Status.STREAMING


def test_a_new_chats_first_request_is_prepared_without_a_query(user: Any, django_assert_num_queries: Any) -> None:
    from chat.generation import generation_prepare_for

    started = _send(user)
    reply = started.assistant_message

    with django_assert_num_queries(0):
        prepared = generation_prepare_for(
            reply=reply, chat=started.chat, user=user, parent=reply.parent, route=started.route
        )

    assert [message.role for message in prepared.request.messages] == ["user"]
    assert prepared.request.messages[0].parts[0].text == "Hello"
