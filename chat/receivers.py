"""What chat does when an app below it signals (connected in ChatConfig.ready): usage may not
import chat, so it announces a disabled account and chat stops what the user has running."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.dispatch import receiver

from chat.generation import generation_stop
from chat.models import Message, Status
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
