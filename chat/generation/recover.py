"""Recover: a reply whose generation's process died ends as `interrupted`, its text kept."""

from __future__ import annotations

import contextlib
from typing import Any

from channels.db import database_sync_to_async
from django.db import transaction
from django.utils import timezone

from chat.generation.finish import SettledTurn, turn_settle
from chat.generation.pool import sync_db
from chat.generation.watch import HEARTBEAT_PREFIX, RUNNING
from chat.models import Message, Status
from chat.reply import Reply
from chat.streambuffer import BufferExpired, stream_buffer
from providers.contract import ErrorCode, ProviderError, TextDelta

INTERRUPTED = "The server restarted while this reply was being written."
INTERRUPTED_CODE = "interrupted"


async def _recover(message: Message) -> bool:
    """Fail one orphaned reply; False when it is in fact still running in a live process."""
    from chat.selectors import message_tree_entry_read

    buffer = stream_buffer()
    if await buffer.client.exists(HEARTBEAT_PREFIX + str(message.pk)):
        return False
    text: list[str] = []
    reasoning: list[str] = []
    with contextlib.suppress(BufferExpired):
        for frame in await buffer.replay(message.pk):
            if frame.get("type") == "delta":
                text.append(frame.get("text", ""))
                reasoning.append(frame.get("reasoning", ""))
    parts = []
    if "".join(reasoning):
        parts.append({"type": "reasoning", "text": "".join(reasoning)})
    if "".join(text):
        parts.append({"type": "text", "text": "".join(text)})
    await sync_db(_fail_orphan)(message, parts, "".join(text))
    frame: dict[str, Any] = {
        "type": "done",
        "status": Status.ERROR,
        "error": {"code": "interrupted", "message": INTERRUPTED},
    }
    with contextlib.suppress(Exception):  # gone meanwhile (its chat deleted): a done without it
        frame["message"] = await sync_db(message_tree_entry_read)(message.pk)
    with contextlib.suppress(Exception):
        await buffer.finish(message.pk, frame)
    return True


def _fail_orphan(message: Message, parts: list[dict[str, Any]], text: str) -> None:
    """Save what an orphan had written as an `interrupted` error and settle its turn like a
    reply that failed without reported usage: charged an estimate, the rest of what it
    reserved given back, a usage row written."""
    with transaction.atomic():
        orphan = (
            Message.objects.select_for_update(of=("self",))
            .select_related("chat__owner")
            .filter(pk=message.pk, status=Status.STREAMING)
            .first()
        )
        if orphan is None:
            return  # saved meanwhile by its own generation
        reservation = orphan.reservation
        Message.objects.filter(pk=message.pk).update(
            content=parts,
            text=text,
            status=Status.ERROR,
            reservation={},
            usage={"input_tokens": 0, "output_tokens": 0, "reasoning_tokens": 0},
            error_code=INTERRUPTED_CODE,
            error_message=INTERRUPTED,
        )
        reply = Reply()
        reply.frame_for(TextDelta(text))
        failure = ProviderError(ErrorCode.PROVIDER_UNAVAILABLE, INTERRUPTED)
        owner = orphan.chat.owner
        turn = SettledTurn(
            str(orphan.pk), str(orphan.chat_id), owner.pk, owner.tier_id, orphan.model_id, orphan.provider, reservation
        )
        turn_settle(
            turn,
            reply,
            status=Status.ERROR,
            error=failure,
            ttft_ms=None,
            total_ms=0,
            outcome=INTERRUPTED_CODE,
        )


async def generations_recover_orphans() -> int:
    """Mark replies left `streaming` by a dead process as failed, keeping the text they had."""
    orphans = await database_sync_to_async(list)(
        Message.objects.filter(status=Status.STREAMING, created_at__lt=timezone.now()).only("id")
    )
    recovered = 0
    for message in orphans:
        if str(message.pk) not in RUNNING:
            recovered += int(await _recover(message))
    return recovered
