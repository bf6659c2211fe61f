"""The cost of an atomic token-bucket take (one Lua script in Redis) per request.

Baseline, in the same run against the same server: a plain INCR with EXPIRE in a pipeline, the
cheapest counter a rate limit could use (a fixed window, not a bucket). The gap is what the
bucket's smoother limit and exactness cost per checked request.

    .venv/bin/python -m bench.ratelimit [--calls 5000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import django


def _per_call_microseconds(call: Callable[[int], object], calls: int) -> list[float]:
    samples = []
    for index in range(calls):
        started = time.perf_counter()
        call(index)
        samples.append((time.perf_counter() - started) * 1_000_000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=5000)
    calls = parser.parse_args().calls

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    django.setup()
    from django_redis import get_redis_connection

    from accounts.ratelimit import BucketRule, bucket_take

    connection = get_redis_connection("default")
    rule = BucketRule(capacity=1_000_000, refill_per_second=1_000)

    def fixed_window(index: int) -> None:
        pipeline = connection.pipeline()
        pipeline.incr(f"bench:window:{index % 100}")
        pipeline.expire(f"bench:window:{index % 100}", 60)
        pipeline.execute()

    def token_bucket(index: int) -> None:
        bucket_take(key=f"bench:{index % 100}", rule=rule)

    token_bucket(0)  # load the script once, as a running process has
    rows = []
    for name, call in (("INCR+EXPIRE window (baseline)", fixed_window), ("token bucket (Lua)", token_bucket)):
        samples = sorted(_per_call_microseconds(call, calls))
        rows.append((name, statistics.median(samples), samples[int(len(samples) * 0.99)]))
    for pattern in ("bench:window:*", "arbor:bucket:bench:*"):
        for key in connection.scan_iter(match=pattern, count=1000):
            connection.delete(key)
    print(f"{calls} calls each against {connection.connection_pool.connection_kwargs.get('path') or 'TCP'} (µs)")
    print(f"{'case':<32}{'p50':>8}{'p99':>8}")
    for name, p50, p99 in rows:
        print(f"{name:<32}{p50:>8.0f}{p99:>8.0f}")


if __name__ == "__main__":
    main()
