"""How late this event loop runs its callbacks: the load signal that widens the coalescing window.

A probe sleeps `every` seconds and measures how much later than asked it woke. Under load (many
replies streaming, turns saved at once) callbacks queue and the probe wakes late; the reading is
smoothed so one slow callback does not swing it. Replies then send fewer, larger frames: each
frame costs the same CPU to store, fan out and write whatever its size, so a loop that lags
spends less per token exactly when it has least to spare (`chat.streambuffer.Coalescer`).
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref

PROBE_EVERY = 0.05
SMOOTHING = 0.3  # weight of the newest reading


class LoopLag:
    def __init__(self) -> None:
        self.seconds = 0.0  # the smoothed lateness
        self._task: asyncio.Task[None] | None = None

    def ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._probe(), name="loop lag probe")

    async def _probe(self) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                asked = loop.time() + PROBE_EVERY
                await asyncio.sleep(PROBE_EVERY)
                late = max(0.0, loop.time() - asked)
                self.seconds += SMOOTHING * (late - self.seconds)


_lags: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopLag] = weakref.WeakKeyDictionary()


def loop_lag() -> LoopLag:
    """The running loop's probe, started on first use."""
    loop = asyncio.get_running_loop()
    lag = _lags.get(loop)
    if lag is None:
        lag = _lags[loop] = LoopLag()
    lag.ensure_running()
    return lag
