"""Recover: a reply whose generation's process died ends as `interrupted`, its text kept.

A reply is an orphan when it is `streaming` in the database, not running in this process, and
its heartbeat names a process that is gone (`owner`), or it has no heartbeat at all. Recovery
saves what its buffer holds as an error, settles its turn, and closes its buffer with a `done`,
so a tab following or resuming it ends. It runs at start-up (`manage.py recover_streams`), from
every web process every SWEEP_EVERY seconds (`sweep`), and for a stop asked of an orphan.
"""

from __future__ import annotations

import contextlib
import datetime

from channels.db import database_sync_to_async
from django.db import transaction
from django.utils import timezone

from chat.frames import done
from chat.generation.finish import SettledTurn, turn_settle
from chat.generation.owner import Owner, owners_read
from chat.generation.pool import sync_db
from chat.generation.watch import RUNNING
from chat.models import Message, Status
from chat.parts import Part, written_parts
from chat.reply import Reply
from chat.streambuffer import BufferExpired, stream_buffer
from providers.contract import ErrorCode, ProviderError, TextDelta

INTERRUPTED = "The server restarted while this reply was being written."
INTERRUPTED_CODE = "interrupted"
# How old a reply with no heartbeat must be to count as an orphan while processes serve: its
# generation writes the first heartbeat within moments of its placeholder being saved.
UNCLAIMED_AFTER = 10.0


async def _recover(message_id: str) -> bool:
    """Fail one orphaned reply; False when it was saved meanwhile (by its generation, or by
    another process recovering it: the row lock decides, and only the winner writes `done`)."""
    from chat.selectors import message_tree_entry_read

    buffer = stream_buffer()
    text: list[str] = []
    reasoning: list[str] = []
    with contextlib.suppress(BufferExpired):
        for frame in await buffer.replay(message_id):
            if frame.get("type") == "delta":
                text.append(frame.get("text", ""))
                reasoning.append(frame.get("reasoning", ""))
    parts = written_parts(text="".join(text), reasoning="".join(reasoning))
    if not await sync_db(_fail_orphan)(message_id, parts, "".join(text)):
        return False
    frame = done(status=Status.ERROR, error={"code": INTERRUPTED_CODE, "message": INTERRUPTED})
    with contextlib.suppress(Exception):  # gone meanwhile (its chat deleted): a done without it
        frame["message"] = await sync_db(message_tree_entry_read)(message_id)
    with contextlib.suppress(Exception):
        await buffer.finish(message_id, frame)
    return True


def _fail_orphan(message_id: str, parts: list[Part], text: str) -> bool:
    """Save what an orphan had written as an `interrupted` error and settle its turn like a
    reply that failed without reported usage: charged an estimate, the rest of what it
    reserved given back, a usage row written. False when it is no longer `streaming`."""
    with transaction.atomic():
        orphan = (
            Message.objects.select_for_update(of=("self",))
            .select_related("chat__owner")
            .filter(pk=message_id, status=Status.STREAMING)
            .first()
        )
        if orphan is None:
            return False  # saved meanwhile by its own generation, or recovered by another process
        reservation = orphan.reservation
        Message.objects.filter(pk=message_id).update(
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
    return True


async def generations_recover_orphans(*, unclaimed_after: float = 0.0) -> int:
    """Fail the replies left `streaming` by a dead process, keeping the text they had; returns
    how many. A reply with no heartbeat counts only once `unclaimed_after` seconds old: while
    processes serve, a reply whose placeholder is saved but whose generation has not written its
    first heartbeat yet is starting, not orphaned. At start-up nothing is starting (0)."""
    streaming = await database_sync_to_async(list)(
        Message.objects.filter(status=Status.STREAMING).values_list("id", "created_at")
    )
    created = {str(pk): at for pk, at in streaming if str(pk) not in RUNNING}
    owners = await owners_read(stream_buffer().client, list(created))
    recovered = 0
    for message_id, owner in owners.items():
        if _orphaned(owner, created[message_id], unclaimed_after):
            recovered += int(await _recover(message_id))
    return recovered


async def generation_recover_if_orphaned(message_id: str, *, unclaimed_after: float = UNCLAIMED_AFTER) -> bool:
    """Fail one reply now if it is an orphan (judged as `generations_recover_orphans` does)."""
    if message_id in RUNNING:
        return False
    created = await database_sync_to_async(
        Message.objects.filter(pk=message_id, status=Status.STREAMING).values_list("created_at", flat=True).first
    )()
    if created is None:
        return False
    owner = (await owners_read(stream_buffer().client, [message_id]))[message_id]
    return _orphaned(owner, created, unclaimed_after) and await _recover(message_id)


def _orphaned(owner: Owner, created: datetime.datetime, unclaimed_after: float) -> bool:
    if owner == Owner.NONE:
        return created <= timezone.now() - datetime.timedelta(seconds=unclaimed_after)
    return owner == Owner.DEAD
