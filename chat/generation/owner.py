"""Owner: which process runs a generation, and whether that process is still alive.

A generation's heartbeat (`arbor:gen:<message id>`, HEARTBEAT_SECONDS, refreshed while it runs)
holds the id of the process running it, and that process keeps a key of its own
(`arbor:proc:<process id>`, PROCESS_ALIVE_SECONDS) alive while it runs generations. A process
killed outright refreshes neither, and its own key is the shorter-lived: within
PROCESS_ALIVE_SECONDS its replies are known orphaned although their heartbeats still live, so a
restart that comes back sooner than a heartbeat's TTL cannot take them for running.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from common.redisline import RedisLine

HEARTBEAT_PREFIX = "arbor:gen:"
HEARTBEAT_SECONDS = 30
PROCESS_PREFIX = "arbor:proc:"
# Refreshed every HEARTBEAT_EVERY (5 s) by the watcher: three rounds may fail (a busy loop, a
# Redis blip) before a live process is taken for dead.
PROCESS_ALIVE_SECONDS = 15
# Random, not the pid: a restarted process may get a dead one's pid (in a container, always).
PROCESS_ID = uuid.uuid4().hex
# What a heartbeat held before it named its process: its owner cannot be told, so it counts as
# alive until the heartbeat expires (replies of an older release, during an upgrade).
UNNAMED = "1"


class Owner(StrEnum):
    ALIVE = "alive"  # its process is alive (or cannot be told: an unnamed heartbeat)
    DEAD = "dead"  # its heartbeat names a process that is gone
    NONE = "none"  # no heartbeat: never claimed (not started yet) or expired


def owner_claim(pipe: Any, message_ids: Iterable[str]) -> None:
    """Queue on a Redis pipeline: this process is alive, and it runs these generations."""
    pipe.set(PROCESS_PREFIX + PROCESS_ID, "1", ex=PROCESS_ALIVE_SECONDS)
    for message_id in message_ids:
        pipe.set(HEARTBEAT_PREFIX + message_id, PROCESS_ID, ex=HEARTBEAT_SECONDS)


async def generation_claim(client: Any, message_id: str, line: RedisLine | None = None) -> None:
    """A generation's first heartbeat, with its process's alive key in the same round trip (a
    heartbeat must never name a process whose key is not there yet). On `line`, the two are
    sent in that order on one connection, which Redis runs in order: the same guarantee."""
    if line is not None:
        await line.execute_in_order(
            (b"SET", PROCESS_PREFIX + PROCESS_ID, b"1", b"EX", PROCESS_ALIVE_SECONDS),
            (b"SET", HEARTBEAT_PREFIX + message_id, PROCESS_ID, b"EX", HEARTBEAT_SECONDS),
        )
        return
    async with client.pipeline(transaction=True) as pipe:
        owner_claim(pipe, [message_id])
        await pipe.execute()


async def owners_read(client: Any, message_ids: list[str]) -> dict[str, Owner]:
    """Each generation's owner as Redis tells it, in two round trips whatever their number."""
    if not message_ids:
        return {}
    async with client.pipeline(transaction=False) as pipe:
        for message_id in message_ids:
            pipe.get(HEARTBEAT_PREFIX + message_id)
        heartbeats: list[str | None] = await pipe.execute()
    processes = sorted({value for value in heartbeats if value and value != UNNAMED})
    alive: dict[str, bool] = {}
    if processes:
        async with client.pipeline(transaction=False) as pipe:
            for process in processes:
                pipe.exists(PROCESS_PREFIX + process)
            alive = dict(zip(processes, map(bool, await pipe.execute()), strict=True))
    owners: dict[str, Owner] = {}
    for message_id, value in zip(message_ids, heartbeats, strict=True):
        if not value:
            owners[message_id] = Owner.NONE
        elif value == UNNAMED or alive.get(value, False):
            owners[message_id] = Owner.ALIVE
        else:
            owners[message_id] = Owner.DEAD
    return owners
