"""Sweep: every web process looks for orphaned replies every SWEEP_EVERY seconds.

Start-up recovery alone is not enough: a process restarted sooner than a dead one's keys expire
finds its replies still claimed, and nothing would look again. So every web process's event
loop runs a sweep, one process at a time (a Redis lock). The bound, from a process's death to
its replies ending `interrupted`: its alive key expires within PROCESS_ALIVE_SECONDS (15 s),
then the next sweep of any live process (at most SWEEP_EVERY, 15 s, apart) recovers them:
30 s, whatever the timing of a restart. A reply that was never claimed waits UNCLAIMED_AFTER.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

from chat.generation.owner import PROCESS_ID
from chat.generation.recover import UNCLAIMED_AFTER, generations_recover_orphans
from chat.generation.watch import raise_if_cancelled, watchers_ensure
from chat.streambuffer import StreamBuffer, stream_buffer

logger = logging.getLogger(__name__)

SWEEP_EVERY = 15.0
SWEEP_LOCK = "arbor:recover:sweep"

_sweeps: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = weakref.WeakKeyDictionary()


async def generations_sweep(buffer: StreamBuffer) -> int | None:
    """Recover orphans unless another process did in the last half SWEEP_EVERY (None then).
    The lock is shorter than the period, so no process's turn is skipped twice in a row: sweeps
    are never further apart than SWEEP_EVERY while any process runs one."""
    if not await buffer.client.set(SWEEP_LOCK, PROCESS_ID, nx=True, px=int(SWEEP_EVERY * 500)):
        return None
    return await generations_recover_orphans(unclaimed_after=UNCLAIMED_AFTER)


async def _sweep_forever(buffer: StreamBuffer) -> None:
    while True:
        await asyncio.sleep(SWEEP_EVERY)
        try:
            recovered = await generations_sweep(buffer)
            raise_if_cancelled()
        except asyncio.CancelledError:
            raise
        except Exception:
            raise_if_cancelled()
            logger.warning("generations: looking for orphaned replies failed; trying again", exc_info=True)
            continue
        if recovered:
            logger.warning("generations: %d replies of a dead process ended as interrupted", recovered)


def generations_watch() -> None:
    """Start this event loop's watchers once: stops and heartbeats (`watch`) and the sweep.
    Called with every request a web process serves, so a restarted process sweeps from its first
    request (the supervisor's readiness probe), not from its first turn; cheap when started."""
    loop = asyncio.get_running_loop()
    sweeping = _sweeps.get(loop)
    if sweeping is not None and not sweeping.done():
        return
    buffer = stream_buffer()
    watchers_ensure(buffer)
    _sweeps[loop] = loop.create_task(_sweep_forever(buffer), name="generation orphans sweep")


class GenerationsWatched:
    """ASGI middleware: starts the process's generation watchers (stops, heartbeats, the sweep)
    with the first request of any kind. daphne sends no lifespan event, and a restarted process
    must sweep for a dead one's replies before anyone starts a turn on it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        generations_watch()
        return await self.app(scope, receive, send)
