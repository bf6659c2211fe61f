"""Whether a user has other tabs open, asked before telling them anything.

A notice to a user's other tabs goes through the channel layer's group: a group send is three
Redis round trips, and every member's consumer, the sender's own included, wakes to read it
(the sender then skips it). Nearly always the sender is the only member, and that was a fifth of
a turn's web CPU. The group's members are a sorted set in Redis: one ZCARD on the loop's
pipelined connection says whether anyone else would hear.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from common.redisline import loop_line


async def others_listening(layer: Any, group: str) -> bool:
    """False only when the group's one member is the caller; True when it cannot be told (a
    layer of several Redis hosts, or not channels_redis, or a TLS URL). A member whose process
    died stays in the set until the layer expires it: then a notice is sent for nothing."""
    line = loop_line(settings.REDIS_URL)
    hosts = getattr(layer, "hosts", None)
    if line is None or not hasattr(layer, "_group_key") or hosts is None or len(hosts) != 1:
        return True
    if hosts[0].get("address") != settings.REDIS_URL:
        return True  # the layer's Redis is not the one the line talks to
    return int(await line.execute(b"ZCARD", layer._group_key(group))) > 1
