"""Token buckets in Redis: a burst of `capacity`, refilled at `refill_per_second`.

One Lua script reads, refills and takes atomically, with the server's clock, so every process
shares each bucket exactly and no clock skew between web processes matters.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from django_redis import get_redis_connection
from redis.commands.core import Script

_TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local allowed = 0
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  wait = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 1)
return {allowed, tostring(wait), tostring(tokens)}
"""

KEY_PREFIX = "arbor:bucket:"


@dataclass(frozen=True)
class BucketRule:
    capacity: float
    refill_per_second: float

    @classmethod
    def per_hour(cls, *, burst: int, per_hour: int) -> BucketRule:
        return cls(capacity=burst, refill_per_second=per_hour / 3600)


@dataclass(frozen=True)
class BucketDecision:
    allowed: bool
    retry_after_seconds: float
    remaining: float


@lru_cache(maxsize=1)
def _take_script() -> Script:
    """Registered once per process; redis-py sends EVALSHA and falls back to EVAL when needed."""
    return get_redis_connection("default").register_script(_TAKE)


def bucket_take(*, key: str, rule: BucketRule, cost: float = 1.0) -> BucketDecision:
    """Take `cost` tokens if the bucket holds them; otherwise say how long until it will."""
    allowed, wait, tokens = _take_script()(keys=[KEY_PREFIX + key], args=[rule.capacity, rule.refill_per_second, cost])
    return BucketDecision(allowed=bool(allowed), retry_after_seconds=float(wait), remaining=float(tokens))
