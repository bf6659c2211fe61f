"""The process's watch over its generations: stops from any process, and heartbeats."""

from __future__ import annotations

import asyncio
import logging
import time
import weakref

from chat.generation.owner import HEARTBEAT_PREFIX, HEARTBEAT_SECONDS, owner_claim
from chat.streambuffer import StreamBuffer

logger = logging.getLogger(__name__)

RUNNING: dict[str, asyncio.Task[None]] = {}
STOP_PREFIX = "arbor:stop:"
STOP_CHANNEL = "arbor:stops"
HEARTBEAT_EVERY = 5.0
STOP_CHECK_EVERY = 1.0  # the flag is the fallback: the channel stops a generation at once

__all__ = [
    "HEARTBEAT_PREFIX",
    "HEARTBEAT_SECONDS",
    "RUNNING",
    "STOP_CHANNEL",
    "STOP_PREFIX",
    "raise_if_cancelled",
    "watchers_ensure",
]


def raise_if_cancelled() -> None:
    """For a watcher's loop, after each Redis call: end it if it was cancelled. A cancellation
    that lands as redis-py's read times out can be swallowed (the call returns None, or raises
    an error of its own), and a loop going on would never end: its event loop could not close
    (seen as tests hanging at teardown in `pubsub.get_message`)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


_watchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[asyncio.Task[None], ...]] = (
    weakref.WeakKeyDictionary()
)


def watchers_ensure(buffer: StreamBuffer) -> None:
    """Start this loop's two watcher tasks (once): the stop listener and the flag-and-heartbeat
    round. They cover a generation whatever it is doing (streaming, or running a tool)."""
    loop = asyncio.get_running_loop()
    running = _watchers.get(loop)
    if running is None or any(task.done() for task in running):
        for task in running or ():
            task.cancel()
        _watchers[loop] = (
            loop.create_task(_listen_for_stops(buffer), name="generation stops"),
            loop.create_task(_watch_running(buffer), name="generation flags and heartbeats"),
        )


async def _watch_running(buffer: StreamBuffer) -> None:
    """Every STOP_CHECK_EVERY seconds, one pipeline for all generations running here: cancel
    those whose stop flag is set, and (every HEARTBEAT_EVERY) refresh their heartbeats."""
    last_beat = time.monotonic()
    while True:
        await asyncio.sleep(STOP_CHECK_EVERY)
        raise_if_cancelled()
        running = list(RUNNING)
        if not running:
            continue
        beat = time.monotonic() - last_beat >= HEARTBEAT_EVERY
        try:
            async with buffer.client.pipeline(transaction=False) as pipe:
                for message_id in running:
                    pipe.exists(STOP_PREFIX + message_id)
                if beat:
                    owner_claim(pipe, running)  # the process's alive key, and each heartbeat
                answers = await pipe.execute()
        except Exception:
            raise_if_cancelled()
            logger.warning("generations: checking stop flags failed; retrying", exc_info=True)
            continue
        if beat:
            last_beat = time.monotonic()
        for message_id, flagged in zip(running, answers, strict=False):
            task = RUNNING.get(message_id)
            if flagged and task is not None:
                task.cancel()


async def _listen_for_stops(buffer: StreamBuffer) -> None:
    """Cancel the generations running here that another process was asked to stop. A stop
    sent while this is reconnecting is caught by the flag round (`_watch_running`)."""
    while True:
        try:
            async with buffer.client.pubsub(ignore_subscribe_messages=True) as pubsub:
                await pubsub.subscribe(STOP_CHANNEL)
                while True:
                    message = await pubsub.get_message(timeout=HEARTBEAT_SECONDS / 2)
                    raise_if_cancelled()
                    task = RUNNING.get(str(message["data"])) if message else None
                    if task is not None:
                        task.cancel()
        except asyncio.CancelledError:
            raise
        except Exception:
            raise_if_cancelled()
            logger.warning("generation stops: listening failed; retrying", exc_info=True)
            await asyncio.sleep(1.0)
