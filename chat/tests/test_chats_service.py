"""Chat-level writes: every one bumps updated_at (for sync); share tokens; tombstones; votes."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import User
from accounts.tests.factories import UserFactory
from chat.models import Chat, Message, Role, Visibility
from chat.services.chats import (
    NotVotable,
    chat_archive,
    chat_copy,
    chat_pin,
    chat_rename,
    chat_share,
    chat_soft_delete,
    chat_unshare,
    message_vote,
)
from chat.services.tree import chat_create, message_append

pytestmark = pytest.mark.django_db


@pytest.fixture
def user() -> User:
    return UserFactory()


def _aged(chat: Chat) -> Chat:
    Chat.objects.filter(pk=chat.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    return Chat.objects.get(pk=chat.pk)


def _bumped(chat: Chat) -> bool:
    return Chat.objects.get(pk=chat.pk).updated_at > timezone.now() - timedelta(minutes=1)


@pytest.mark.parametrize(
    "write",
    [
        lambda chat: chat_rename(chat=chat, title="new"),
        lambda chat: chat_pin(chat=chat, pinned=True),
        lambda chat: chat_archive(chat=chat, archived=True),
        lambda chat: chat_share(chat=chat),
        lambda chat: chat_unshare(chat=chat),
        lambda chat: chat_soft_delete(chat=chat),
    ],
)
def test_every_write_bumps_updated_at_for_the_changes_feed(user: User, write: object) -> None:
    chat = _aged(chat_create(owner=user))
    write(chat)  # type: ignore[operator]
    assert _bumped(chat)


def test_a_share_token_carries_at_least_128_random_bits_and_survives_a_second_share(user: User) -> None:
    chat = chat_share(chat=chat_create(owner=user))
    token = chat.share_token
    assert token is not None
    assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) * 8 >= 128
    assert chat_share(chat=chat).share_token == token
    assert chat_share(chat=chat_create(owner=user)).share_token != token


def test_revoking_clears_the_token_and_sharing_again_makes_a_new_one(user: User) -> None:
    chat = chat_share(chat=chat_create(owner=user))
    old = chat.share_token
    chat_unshare(chat=chat)
    stored = Chat.objects.get(pk=chat.pk)
    assert (stored.share_token, stored.visibility) == (None, Visibility.PRIVATE)
    assert chat_share(chat=stored).share_token not in (None, old)


def test_soft_delete_leaves_a_tombstone_and_revokes_the_link(user: User) -> None:
    chat = chat_share(chat=chat_create(owner=user))
    chat_soft_delete(chat=chat)
    stored = Chat.objects.get(pk=chat.pk)
    assert stored.deleted_at is not None
    assert stored.share_token is None


def test_only_assistant_messages_take_votes(user: User) -> None:
    chat = chat_create(owner=user)
    question = message_append(chat=chat, parent=None, role=Role.USER, content=[], text="q")
    answer = message_append(chat=chat, parent=question, role=Role.ASSISTANT, content=[], text="a")
    assert message_vote(message=answer, value=1).vote == 1
    assert message_vote(message=answer, value=0).vote == 0
    with pytest.raises(NotVotable):
        message_vote(message=question, value=1)
    with pytest.raises(ValueError, match="a vote is one of"):
        message_vote(message=answer, value=5)
    assert list(Message.objects.order_by("depth").values_list("vote", flat=True)) == [0, 0]


def test_copying_an_empty_chat_gives_an_empty_chat_with_its_settings(user: User) -> None:
    source = chat_create(owner=user, title="Preset", default_model="arbor:demo", instructions="Be brief.")
    reader = UserFactory()
    copy = chat_copy(chat=source, owner=reader)
    assert (copy.owner, copy.title, copy.default_model, copy.instructions) == (
        reader,
        "Preset",
        "arbor:demo",
        "Be brief.",
    )
    assert copy.forked_from_chat_id == source.pk
    assert copy.message_count == 0
