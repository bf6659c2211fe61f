"""What chat does when an app below it signals (connected in ChatConfig.ready): usage may not
import chat, so it announces a disabled account and chat stops what the user has running; a
session that ends (Django's signals) or a changed password (accounts') closes its sockets."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.signals import user_logged_out
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.http import HttpRequest

from accounts.sessions import SESSION_ENDED_EVENT, session_group
from accounts.signals import guest_transfer_merging, password_changed
from chat.generation import generation_stop
from chat.models import Chat, Message, Status
from chat.services.titles import user_group
from usage.signals import user_disabled

logger = logging.getLogger(__name__)

# Every socket of a user joins `user_group(user_id)` and answers this event by closing with
# CLOSE_DISABLED (`ChatConsumer.user_disabled`).
DISABLED_EVENT = "user.disabled"


@receiver(user_disabled, dispatch_uid="chat.disabled_user_stopped")
def disabled_user_stopped(*, user_id: int, **_: Any) -> None:
    """A disabled user's sockets close and their replies stop at once, so spending stops too."""
    sockets_close(user_id=user_id)
    user_generations_stop(user_id=user_id)


def sockets_close(*, user_id: int) -> None:
    """Every open socket of the user closes (any process: through the channel layer). Best
    effort: the account is already inactive, so a socket that missed this is refused at its
    next turn."""
    try:
        async_to_sync(get_channel_layer().group_send)(user_group(user_id), {"type": DISABLED_EVENT})
    except Exception:  # a Redis failure must not fail the disabling
        logger.exception("could not close the sockets of user %s", user_id)


def user_generations_stop(*, user_id: int) -> int:
    """Stop the user's replies being written now (wherever they run); how many there were."""
    running = list(Message.objects.filter(chat__owner_id=user_id, status=Status.STREAMING).values_list("pk", flat=True))
    for message_id in running:
        try:
            async_to_sync(generation_stop)(message_id)
        except Exception:  # noqa: BLE001 - logged; recovery fails it later at worst
            logger.warning("could not stop generation %s", message_id)
    return len(running)


# --- Sockets outliving their session ----------------------------------------------------------
# Every socket joins `session_group(key)` of the session it was opened on, and answers
# SESSION_ENDED_EVENT by closing with 4401 (`ChatConsumer.session_ended`). The consumer also
# checks the session before each turn, which covers an event that is lost or still on its way.


@receiver(post_delete, sender=Session, dispatch_uid="chat.ended_session_sockets_closed")
def ended_session_sockets_closed(*, instance: Session, **_: Any) -> None:
    """A deleted session row: sign-out and `flush()` delete it, a password change (`cycle_key`)
    deletes the old key's, and so do operators and `clearsessions`."""
    key = instance.session_key
    transaction.on_commit(lambda: _group_close(session_group(key)))


@receiver(user_logged_out, dispatch_uid="chat.signed_out_sockets_closed")
def signed_out_sockets_closed(*, request: HttpRequest | None = None, **_: Any) -> None:
    """Sign-out, whatever the session engine (one keeping no rows sends no post_delete)."""
    key = getattr(getattr(request, "session", None), "session_key", None)
    if key:
        transaction.on_commit(lambda: _group_close(session_group(key)))


@receiver(password_changed, dispatch_uid="chat.password_changed_sockets_closed")
def password_changed_sockets_closed(*, user_id: int, **_: Any) -> None:
    """Every session of the user signed in with the old password is void: all their sockets close
    (the tab that changed it reconnects with its new session cookie)."""
    _group_close(user_group(user_id))


def _group_close(group: str) -> None:
    """Best effort, like `sockets_close`: the turn's own session check refuses what this misses."""
    try:
        async_to_sync(get_channel_layer().group_send)(group, {"type": SESSION_ENDED_EVENT})
    except Exception:  # a Redis failure must not fail a sign-out
        logger.exception("could not close the sockets of group %s", group)


@receiver(guest_transfer_merging, dispatch_uid="chat.guest_client_ids_merged")
def guest_client_ids_merged(*, guest: Any, target: Any, **_: Any) -> None:
    """A guest's chats join the account's: a client_id that started a chat of each (one tab's,
    before and after signing in) would collide on the chat's (owner, client_id) constraint, so
    the guest's chat forgets it (it only answers repeats of a send long since acknowledged)."""
    taken = Chat.objects.filter(owner=target, client_id__isnull=False).values("client_id")
    Chat.objects.filter(owner=guest, client_id__in=taken).update(client_id=None)
