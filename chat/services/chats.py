"""Chat-level writes: rename, pin, archive, settings, soft delete, share and revoke, copy, votes.

Every write here bumps `Chat.updated_at` (saves name it in `update_fields`; `auto_now` sets it),
so the changes feed (`chat.queries.chat_changes`) reports it. Callers pass chats and messages
already scoped to their owner: these functions do not check access.
"""

from __future__ import annotations

import secrets

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from chat.models import Chat, Message, Role, Visibility
from chat.services.tree import chat_create, chat_fork
from chat.sharing import shared_title

# 24 random bytes: 192 bits, 32 URL-safe characters (Chat.share_token holds 64).
SHARE_TOKEN_BYTES = 24
VOTES = (-1, 0, 1)


class NotVotable(Exception):
    """Only assistant messages take votes."""


def chat_update(
    *,
    chat: Chat,
    title: str | None = None,
    pinned: bool | None = None,
    archived: bool | None = None,
    default_model: str | None = None,
    instructions: str | None = None,
) -> Chat:
    """Set the given fields (None leaves one as it is) in one UPDATE."""
    changes = {
        "title": title,
        "pinned": pinned,
        "archived": archived,
        "default_model": default_model,
        "instructions": instructions,
    }
    changed = [name for name, value in changes.items() if value is not None]
    for name in changed:
        setattr(chat, name, changes[name])
    chat.save(update_fields=[*changed, "updated_at"])
    return chat


def chat_rename(*, chat: Chat, title: str) -> Chat:
    return chat_update(chat=chat, title=title)


def chat_pin(*, chat: Chat, pinned: bool) -> Chat:
    return chat_update(chat=chat, pinned=pinned)


def chat_archive(*, chat: Chat, archived: bool) -> Chat:
    return chat_update(chat=chat, archived=archived)


def chat_soft_delete(*, chat: Chat) -> Chat:
    """A tombstone: the chat leaves lists and answers 404, but the changes feed keeps reporting
    it as deleted so other devices drop it. Its share link dies with it."""
    chat.deleted_at = timezone.now()
    chat.share_token = None
    chat.visibility = Visibility.PRIVATE
    chat.save(update_fields=["deleted_at", "share_token", "visibility", "updated_at"])
    return chat


def chat_share(*, chat: Chat) -> Chat:
    """Make the chat readable by anyone with its link. Sharing a shared chat keeps its link."""
    if chat.share_token and chat.visibility == Visibility.PUBLIC:
        return chat
    chat.share_token = secrets.token_urlsafe(SHARE_TOKEN_BYTES)
    chat.visibility = Visibility.PUBLIC
    chat.save(update_fields=["share_token", "visibility", "updated_at"])
    return chat


def chat_unshare(*, chat: Chat) -> Chat:
    """Revoke the link: the old token answers 404 from now on; sharing again makes a new one."""
    chat.share_token = None
    chat.visibility = Visibility.PRIVATE
    chat.save(update_fields=["share_token", "visibility", "updated_at"])
    return chat


def chat_copy(*, chat: Chat, owner: User, message: Message | None = None) -> Chat:
    """A fork of `chat` for `owner` at `message` (default: the active leaf); an empty chat is
    copied as an empty chat with the same title and settings."""
    if message is None and chat.active_leaf_id is not None:
        message = Message.objects.get(pk=chat.active_leaf_id)
    if message is not None:
        return chat_fork(message=message, owner=owner)
    copy = chat_create(owner=owner, title=chat.title, default_model=chat.default_model, instructions=chat.instructions)
    copy.forked_from_chat = chat
    copy.save(update_fields=["forked_from_chat", "updated_at"])
    return copy


@transaction.atomic
def chat_copy_shared(*, chat: Chat, owner: User) -> Chat:
    """A reader's copy of a shared chat's active branch, titled from that branch's words only
    (`chat.sharing`: the chat's own title may come from a branch that is not shared), without the
    owner's instructions: a private preset the share page never shows does not travel with it."""
    copy = chat_copy(chat=chat, owner=owner)
    first_question = (
        Message.objects.filter(chat=copy, role=Role.USER).order_by("depth").values_list("text", flat=True).first()
    )
    copy.title = shared_title(first_question)
    copy.instructions = ""
    copy.save(update_fields=["title", "instructions", "updated_at"])
    return copy


@transaction.atomic
def message_vote(*, message: Message, value: int) -> Message:
    """Up (1), down (-1) or no vote (0) on an assistant message; raises NotVotable otherwise."""
    if value not in VOTES:
        raise ValueError(f"a vote is one of {VOTES}")
    if message.role != Role.ASSISTANT:
        raise NotVotable
    Message.objects.filter(pk=message.pk).update(vote=value)
    Chat.objects.filter(pk=message.chat_id).update(updated_at=timezone.now())
    message.vote = value
    return message
