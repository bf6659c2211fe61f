"""A circuit breaker per provider, its state in Redis so every process shares it.

closed: calls go through; `threshold` failures in a row open it.
open: calls are refused until `open_seconds` have passed since it opened.
half-open: one caller (the probe) may try; success closes it, failure opens it again.

Each transition is one Lua script on the server's clock, so processes never race. Calls come
once per generation (not per token): a synchronous Redis call of ~50 µs is cheaper than a
thread hop, so async callers use it directly.

A success resets the count only when the check before the call saw a record (`BreakerPass`):
nearly every call finds no record, and then costs one round trip, not two. A failure recorded
by another process while a call was running is left for the next call's success to clear.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum
from functools import lru_cache

from django.conf import settings
from django_redis import get_redis_connection
from redis.commands.core import Script

from common.redisline import loop_line

KEY_PREFIX = "arbor:breaker:"

# KEYS[1] state hash; ARGV: open_seconds. Returns 2 if the caller may call and there is no
# record, 1 if it may call, 0 if not.
_ALLOW = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return 2 end
if state == 'closed' then return 1 end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
if state == 'open' then
  local opened = tonumber(redis.call('HGET', KEYS[1], 'opened_at') or '0')
  if now - opened < tonumber(ARGV[1]) then return 0 end
  redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe_at', tostring(now))
  return 1
end
-- half_open: one probe at a time; a probe that vanished frees the slot after open_seconds
local probe_at = tonumber(redis.call('HGET', KEYS[1], 'probe_at') or '0')
if now - probe_at >= tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'probe_at', tostring(now))
  return 1
end
return 0
"""

# KEYS[1] state hash; ARGV: threshold. Returns the new state.
_FAILURE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'half_open' then
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', tostring(now), 'failures', ARGV[1])
  return 'open'
end
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
if failures >= tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', tostring(now))
  return 'open'
end
redis.call('HSET', KEYS[1], 'state', 'closed')
return 'closed'
"""


class BreakerPass(IntEnum):
    """What the check before a call found; false only when the call may not be made."""

    REFUSED = 0
    ALLOWED = 1  # there is a record (failures so far, or a probe): a success must clear it
    CLEAN = 2  # no record at all: a success has nothing to clear


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerPolicy:
    threshold: int
    open_seconds: float

    @classmethod
    def from_settings(cls) -> BreakerPolicy:
        return cls(threshold=settings.PROVIDER_BREAKER_THRESHOLD, open_seconds=settings.PROVIDER_BREAKER_OPEN_SECONDS)


@lru_cache(maxsize=1)
def _scripts() -> tuple[Script, Script]:
    connection = get_redis_connection("default")
    return connection.register_script(_ALLOW), connection.register_script(_FAILURE)


def breaker_allows(provider: str, policy: BreakerPolicy) -> BreakerPass:
    allow, _ = _scripts()
    return BreakerPass(int(allow(keys=[KEY_PREFIX + provider], args=[policy.open_seconds])))


async def breaker_check(provider: str, policy: BreakerPolicy) -> BreakerPass:
    """`breaker_allows` from the event loop, on the loop's pipelined Redis connection: no
    blocking read of Redis on the loop, at a tenth of redis-py's CPU (the check runs per reply)."""
    line = loop_line(settings.REDIS_URL)
    if line is None:
        return breaker_allows(provider, policy)
    return BreakerPass(int(await line.run_script(_ALLOW, (KEY_PREFIX + provider,), (policy.open_seconds,))))


def breaker_record_success(provider: str) -> None:
    allow, _ = _scripts()
    allow.registered_client.delete(KEY_PREFIX + provider)


def breaker_record_failure(provider: str, policy: BreakerPolicy) -> BreakerState:
    _, failure = _scripts()
    state = failure(keys=[KEY_PREFIX + provider], args=[policy.threshold])
    return BreakerState(state.decode() if isinstance(state, bytes) else state)


def breaker_state(provider: str) -> BreakerState:
    state = get_redis_connection("default").hget(KEY_PREFIX + provider, "state")
    return BreakerState(state.decode()) if state else BreakerState.CLOSED
