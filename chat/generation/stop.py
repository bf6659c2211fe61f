"""Stop: end a generation wherever it runs, or at once when nothing runs it any more."""

from __future__ import annotations

from uuid import UUID

from chat.generation.recover import generation_recover_if_orphaned
from chat.generation.watch import RUNNING, STOP_CHANNEL, STOP_PREFIX
from chat.streambuffer import stream_buffer


async def generation_stop(message_id: UUID | str) -> None:
    """Stop a generation wherever it runs: cancel it here, tell every other process. One whose
    process died (an orphan) is recovered now, its text kept, rather than waiting for the sweep:
    no process would answer the stop."""
    key = str(message_id)
    buffer = stream_buffer()
    await buffer.client.set(STOP_PREFIX + key, "1", ex=600)
    task = RUNNING.get(key)
    if task is not None:
        task.cancel()
        return
    await buffer.client.publish(STOP_CHANNEL, key)
    await generation_recover_if_orphaned(key)
