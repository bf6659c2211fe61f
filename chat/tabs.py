"""Whether a user has other tabs open, asked before telling them anything.

A notice to a user's other tabs goes through the channel layer's group: a group send is three
Redis round trips, and every member's consumer, the sender's own included, wakes to read it
(the sender then skips it). Nearly always the sender is the only member, and that was a fifth of
a turn's web CPU. The group's members are a sorted set in Redis, asked on the loop's pipelined
connection.

A member may outlive its socket: a web process that stops (every restart: daphne cancels its
sockets' consumers, whose `disconnect` never runs; a crash) leaves its sockets in their groups
until the layer's group expiry, a day later. Counted as listeners, they cost each of their
users' turns a group send heard by nobody, for a day after every deploy (a third of a turn's
CPU, measured). So every web process keeps a key of its own in Redis while it runs
(`PRESENCE_PREFIX` + the channel layer's client prefix, which every channel name it makes
carries), and a member counts only while its process's key is there. Members are never removed
here: the user's group also carries the closes of a disabled account or an ended session, and a
live socket must not miss one because its process was late refreshing its key. A notice skipped
that way is all a late process can lose.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

from django.conf import settings

from common.redisline import RedisLine, loop_line

logger = logging.getLogger(__name__)

PRESENCE_PREFIX = "arbor:tabs:process:"
PRESENCE_SECONDS = 30
PRESENCE_EVERY = 10.0  # three refreshes may fail before a live process's sockets stop counting

# KEYS[1]: the group's sorted set. ARGV[1]: the asking socket's channel; ARGV[2]: PRESENCE_PREFIX.
# A channel name is `<kind>.<client prefix>!<id>`; a member whose name does not say its process
# counts (it cannot be told dead).
_OTHERS_SCRIPT = """
local others = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if member ~= ARGV[1] then
    local process = string.match(member, '([^.!]+)!')
    if not process or redis.call('EXISTS', ARGV[2] .. process) == 1 then
      others = others + 1
    end
  end
end
return others
"""


def _line_for(layer: Any) -> RedisLine | None:
    """The loop's line to the layer's Redis, or None where the group cannot be read on it (a
    layer of several Redis hosts, not channels_redis, another Redis than the line's, TLS)."""
    hosts = getattr(layer, "hosts", None)
    if not hasattr(layer, "_group_key") or not getattr(layer, "client_prefix", None):
        return None
    if hosts is None or len(hosts) != 1 or hosts[0].get("address") != settings.REDIS_URL:
        return None
    return loop_line(settings.REDIS_URL)


async def others_listening(layer: Any, group: str, channel: str) -> bool:
    """Whether a member of `group` other than `channel` (the caller's) has a live process; True
    when it cannot be told."""
    line = _line_for(layer)
    if line is None:
        return True
    others = await line.run_script(_OTHERS_SCRIPT, (layer._group_key(group),), (channel, PRESENCE_PREFIX))
    return int(others) > 0


_presence: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = weakref.WeakKeyDictionary()


async def presence_ensure(layer: Any) -> None:
    """Before this process's first socket joins a group: its presence key is set, and a task of
    the loop keeps it set. Once per loop; a no-op where `others_listening` cannot use it."""
    loop = asyncio.get_running_loop()
    running = _presence.get(loop)
    if running is not None and not running.done():
        return
    line = _line_for(layer)
    if line is None:
        return
    key = PRESENCE_PREFIX + layer.client_prefix
    await line.execute(b"SET", key, b"1", b"EX", PRESENCE_SECONDS)
    _presence[loop] = loop.create_task(_keep_present(line, key), name="tabs presence")


async def _keep_present(line: RedisLine, key: str) -> None:
    while True:
        await asyncio.sleep(PRESENCE_EVERY)
        try:
            await line.execute(b"SET", key, b"1", b"EX", PRESENCE_SECONDS)
        except Exception:  # Redis away: the next round sets it again
            logger.warning("tabs presence: refreshing %s failed; retrying", key, exc_info=True)
