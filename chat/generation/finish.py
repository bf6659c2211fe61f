"""Finish: save the reply (partial text kept), settle its turn and bill it, then its `done`."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from chat import frames
from chat.fanout import Fanout
from chat.generation.pool import sync_db
from chat.generation.watch import HEARTBEAT_PREFIX, STOP_PREFIX
from chat.models import Chat, Message, Status
from chat.reply import Reply
from chat.selectors import TREE_FIELDS, message_tree_entry_of_row
from chat.streambuffer import Coalescer, StreamBuffer
from providers.contract import ProviderError, Usage
from usage.services.quotas import period_starts

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class SettledTurn:
    """What settling a reply needs of its turn, as its caller read it (a recovery: a reply's own
    save settles it in its statement)."""

    message_id: str
    chat_id: str
    owner_id: int
    tier_id: int | None
    model_id: str
    provider: str
    reservation: dict[str, Any]


_TREE_COLUMNS = ", ".join(f"m.{name}" for name in TREE_FIELDS)
# One statement saves the reply, settles its turn and bills it, in autocommit (no BEGIN, no
# COMMIT): the UPDATE reads the turn's reservation as it was (`old`: the same row before this
# update) and the chat's title, and `usage_call_bill` (migration usage 0004) settles it against
# what the reply used and writes its usage row, for the row the UPDATE returned only. Only a reply
# still `streaming`, tested on `m` (the row updated) and not only on `old`: a save that waited for
# the row's lock re-checks `m`'s new version, whereas `old` stays the version it first read. So a
# reply recovered meanwhile (its process taken for dead, e.g. its loop stalled past the alive key),
# or saved by a racing finish, is neither saved nor billed twice.
_SAVE_SQL = f"""
WITH saved AS (
    UPDATE {Message._meta.db_table} AS m SET
        content = %(content)s::jsonb, text = %(text)s, status = %(status)s, reservation = '{{}}'::jsonb,
        usage = %(usage)s::jsonb, finish_reason = %(finish_reason)s, time_to_first_token_ms = %(ttft)s,
        total_time_ms = %(total)s, error_code = %(error_code)s, error_message = %(error_message)s,
        provider = CASE WHEN %(provider)s = '' THEN m.provider ELSE %(provider)s END
    FROM {Message._meta.db_table} AS old
    JOIN {Chat._meta.db_table} AS c ON c.id = old.chat_id
    WHERE m.id = %(id)s AND m.status = 'streaming' AND old.id = m.id
    RETURNING old.reservation, c.owner_id, c.title, m.chat_id, m.provider, {_TREE_COLUMNS}
)
SELECT saved.title, saved.chat_id, {", ".join(f"saved.{name}" for name in TREE_FIELDS)}
FROM saved CROSS JOIN LATERAL usage_call_bill(
    saved.owner_id, NULL, false, 'chat', saved.chat_id, saved.id, saved.model_id, saved.provider,
    %(input_tokens)s::bigint, %(output_tokens)s::bigint, %(reasoning_tokens)s::bigint, %(written)s::integer,
    %(failed)s::boolean, 0, %(ttft)s::integer, %(total)s::integer, %(outcome)s::text, saved.reservation,
    %(now)s::timestamptz, %(day)s::date, %(month)s::date
) AS bill
"""


@sync_db
def reply_save(
    message_id: str, reply: Reply, status: str, *, started: float, error: ProviderError | None
) -> dict[str, Any] | None:
    """Save the reply, settle what its turn reserved and record its usage, all or nothing: one
    statement. Returns the saved message as the chat's tree holds it (for the `done` frame);
    None when the reply was no longer `streaming` (ended by a recovery, which wrote its `done`)
    or is gone."""
    ttft = None if reply.first_token_at is None else int((reply.first_token_at - started) * 1000)
    total = int((time.monotonic() - started) * 1000)
    usage = reply.usage
    text = reply.text
    now = timezone.now()
    today, month = period_starts(now)
    params = {
        "id": message_id,
        "content": json.dumps(reply.parts()),
        "text": text,
        "status": status,
        "usage": json.dumps(_usage_dict(usage)),
        "finish_reason": reply.finish_reason,
        "ttft": ttft,
        "total": total,
        "error_code": str(error.code) if error else "",
        "error_message": error.message if error else "",
        "provider": reply.provider,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "written": len(text),
        "failed": error is not None,
        "outcome": _outcome(status, error),
        "now": now,
        "day": today,
        "month": month,
    }
    with connection.cursor() as cursor:
        cursor.execute(_SAVE_SQL, params)
        saved = cursor.fetchone()
    if saved is None:
        logger.warning("generation %s: the reply was ended elsewhere meanwhile; not saved again", message_id)
        return None
    title, chat_id, *tree = saved
    row = dict(zip(TREE_FIELDS, tree, strict=True))
    if status == Status.COMPLETE and not title and settings.CHAT_TITLES_AUTO:
        from chat.tasks import title_chat_after_commit

        title_chat_after_commit(str(chat_id))
    return message_tree_entry_of_row({**row, "content": _json(row["content"]), "usage": _json(row["usage"])})


def _outcome(status: str, error: ProviderError | None) -> str:
    """The usage row's outcome: "stopped" for a reply the user stopped, else "complete" or the
    error's code."""
    if error is not None:
        return str(error.code)
    return "stopped" if status == Status.STOPPED else "complete"


def _json(value: Any) -> Any:
    """A jsonb column from a raw cursor (JSON text on Django's connections)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def _usage_dict(usage: Usage) -> dict[str, int]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
    }


def turn_settle(
    turn: SettledTurn,
    reply: Reply,
    *,
    status: str,
    error: ProviderError | None,
    ttft_ms: int | None,
    total_ms: int,
    outcome: str = "",
) -> None:
    """Bill the reply through the one billing path (`usage.services.model_call_bill`): the
    turn's reserved tokens settled against what the provider reported or, when it reported
    nothing (stopped or failed early), an estimate; its spend released; its usage row written."""
    from usage.services import ModelCall, model_call_bill

    call = ModelCall(
        text=reply.text,
        usage=reply.usage,
        provider=reply.provider or turn.provider,
        ttft_ms=ttft_ms,
        total_ms=total_ms,
        error=error,
    )
    model_call_bill(
        call,
        user_id=turn.owner_id,
        kind="chat",
        model_id=turn.model_id,
        chat_id=turn.chat_id,
        message_id=turn.message_id,
        reservation=turn.reservation,
        outcome=outcome or _outcome(status, error),
        tier_id=turn.tier_id,
    )


def done_frame(
    reply: Reply, status: str, error: ProviderError | None, message: dict[str, Any] | None = None
) -> frames.DoneFrame:
    """`message` is the saved reply as the tree holds it: a tab patches its tree with it instead
    of reading the whole chat again (a long chat's tree is megabytes)."""
    return frames.done(
        status=status,
        finish_reason=reply.finish_reason,
        usage=_usage_dict(reply.usage),
        message=message,
        error=None if error is None else {"code": str(error.code), "message": error.message},
    )


async def reply_finish(
    buffer: StreamBuffer,
    hub: Fanout,
    coalescer: Coalescer,
    message_id: str,
    *,
    reply: Reply,
    status: str,
    started: float,
    error: ProviderError | None,
) -> None:
    try:
        with contextlib.suppress(Exception):
            await coalescer.aclose()
        saved = await reply_save(message_id, reply, status, started=started, error=error)
        if saved is None:
            return  # ended elsewhere: its `done` is in the buffer already (local followers read it there)
        # The reply is saved; a Redis failure now only costs followers the live `done` (a resume
        # answers from the saved message).
        try:
            frame = done_frame(reply, status, error, saved)
            seq = await buffer.finish(message_id, frame)
            hub.publish(message_id, {**frame, "message_id": message_id, "seq": seq})
            await buffer.client.delete(HEARTBEAT_PREFIX + message_id, STOP_PREFIX + message_id)
        except Exception:  # noqa: BLE001 - logged; the saved message is the truth
            logger.warning("generation %s: could not close its stream buffer", message_id)
    finally:
        hub.close(message_id)
