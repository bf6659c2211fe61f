from __future__ import annotations

import asyncio
import time

from chat.looplag import PROBE_EVERY, loop_lag


async def test_a_blocked_loop_is_read_as_lagging() -> None:
    lag = loop_lag()
    await asyncio.sleep(PROBE_EVERY * 2)
    before = lag.seconds
    time.sleep(0.3)  # a callback that holds the loop, as a burst of work does
    await asyncio.sleep(PROBE_EVERY * 2)
    assert lag.seconds > before + 0.03
