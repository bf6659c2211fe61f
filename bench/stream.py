"""Streaming through Arbor at 1, 100 and 500 concurrent streams, next to calling the vendor directly.

A fake OpenAI server (its own process) writes every reply as `--tokens` words at `--rate` words
per second. Arbor runs as `make run` does (`manage.py serve`: daphne + a worker) on a fresh
database, with the fake as its OpenAI provider. At each concurrency N, two arrival patterns:
- burst: N sends at the same instant (the worst case: N turns queue for the same cores);
- steady: 2N sends spaced evenly over two replies' length, so N streams are live while the
  second half (the ones measured) start: the load N users streaming at once put on a server.
Each pattern runs twice, in the same run: the baseline reads N streams straight from the fake with
the official SDK (one client, warmed first, as Arbor's own pooled client is); then N WebSocket
clients, each a guest that sends one message and reads the reply.
Printed: time to first token (p50/p99) for both, so the difference is what Arbor adds; the lag of
each token behind the provider's steady pace (p50/p99; Arbor adds coalescing, ~30 ms, and its
hops); frames and bytes per reply; the web process's CPU share and peak memory.

    .venv/bin/python -m bench.stream [--levels 1,100,500] [--tokens 150] [--rate 30]
"""

from __future__ import annotations

import argparse
import asyncio
import http.cookiejar
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

BASE_DIR = Path(__file__).resolve().parents[1]
MODEL = "openai:gpt-5-mini"


@dataclass
class StreamResult:
    first_token: float = 0.0  # seconds after the request
    lags: list[float] = field(default_factory=list)  # per token, seconds behind the steady pace
    frames: int = 0
    bytes: int = 0


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else float("nan")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _lags(arrivals: list[tuple[float, int]], rate: float) -> list[float]:
    """(arrival, tokens in that frame) → for every token, how far behind first + k/rate it came."""
    lags, seen = [], 0
    start = arrivals[0][0]
    for arrival, count in arrivals:
        for _ in range(count):
            lags.append(max(0.0, arrival - (start + seen / rate)))
            seen += 1
    return lags


def _direct_client(fake_url: str) -> Any:
    from openai import AsyncOpenAI

    # Hundreds of connections opened at once queue in the fake's accept backlog: wait, this measures delay.
    return AsyncOpenAI(api_key="sk-bench", base_url=f"{fake_url}/v1", max_retries=0, timeout=120.0)


async def _direct(client: Any, rate: float) -> StreamResult:
    result, arrivals = StreamResult(), []
    started = time.perf_counter()
    stream = await client.chat.completions.create(
        model="gpt-5-mini", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            now = time.perf_counter()
            if not arrivals:
                result.first_token = now - started
            arrivals.append((now, chunk.choices[0].delta.content.count("token")))
            result.frames += 1
            result.bytes += len(chunk.model_dump_json())
    result.lags = _lags(arrivals, rate)
    return result


def _guest_session(base: str) -> str:
    cookies = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(cookies))
    opener.open(f"{base}/", timeout=30).read()
    return next(cookie.value for cookie in cookies if cookie.name == "sessionid")


async def _through_arbor(base: str, session: str, rate: float) -> StreamResult:
    from websockets.asyncio.client import connect

    result, arrivals = StreamResult(), []
    headers = {"Origin": base, "Cookie": f"sessionid={session}"}
    async with connect(f"{base.replace('http', 'ws')}/ws/chat/", additional_headers=headers, max_size=None) as ws:
        started = time.perf_counter()
        await ws.send(json.dumps({"type": "send", "chat_id": None, "parent_id": None, "content": "hi", "model": MODEL}))
        async for raw in ws:
            frame = json.loads(raw)
            result.frames += 1
            result.bytes += len(raw)
            if frame["type"] == "delta" and frame.get("text"):
                now = time.perf_counter()
                if not arrivals:
                    result.first_token = now - started
                arrivals.append((now, frame["text"].count("token")))
            elif frame["type"] == "done":
                break
            elif frame["type"] == "error":
                raise RuntimeError(frame)
    result.lags = _lags(arrivals, rate)
    return result


class Sampler:
    """CPU share and peak memory of one process while a level runs."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak_rss = max(self.peak_rss, self.process.memory_info().rss)

    def __enter__(self) -> Sampler:
        self.cpu_start, self.wall_start = sum(self.process.cpu_times()[:2]), time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.cpu_share = (sum(self.process.cpu_times()[:2]) - self.cpu_start) / (time.perf_counter() - self.wall_start)


def _start(command: list[str], environment: dict[str, str], ready: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(command, cwd=BASE_DIR, env=environment, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        if ready in line:
            # Keep draining so the child never blocks on a full pipe.
            threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()  # type: ignore[union-attr]
            return process, line.strip()
    raise RuntimeError(f"{command} exited before {ready!r}")


def _fresh_database() -> str:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    django.setup()
    import psycopg
    from django.conf import settings

    from conftest import database_url_named

    with psycopg.connect(database_url_named(settings.DATABASE_URL, "postgres"), autocommit=True) as connection:
        connection.execute('DROP DATABASE IF EXISTS "arbor_bench" WITH (FORCE)')
        connection.execute('CREATE DATABASE "arbor_bench"')
    return database_url_named(settings.DATABASE_URL, "arbor_bench")


def _report(level: int, mode: str, direct: list[StreamResult], arbor: list[StreamResult], sampler: Sampler) -> None:
    def ms(values: list[float], fraction: float) -> str:
        return f"{_percentile(values, fraction) * 1000:7.1f}"

    direct_first, arbor_first = [r.first_token for r in direct], [r.first_token for r in arbor]
    direct_lags = [lag for r in direct for lag in r.lags]
    arbor_lags = [lag for r in arbor for lag in r.lags]
    print(
        f"{level:>5} {mode:<6} | first token ms p50/p99 direct {ms(direct_first, 0.5)}/{ms(direct_first, 0.99)}"
        f"  arbor {ms(arbor_first, 0.5)}/{ms(arbor_first, 0.99)}"
        f" | token lag ms p50/p99 direct {ms(direct_lags, 0.5)}/{ms(direct_lags, 0.99)}"
        f"  arbor {ms(arbor_lags, 0.5)}/{ms(arbor_lags, 0.99)}"
        f" | frames/reply {statistics.mean(r.frames for r in arbor):6.1f}"
        f" bytes/reply {statistics.mean(r.bytes for r in arbor):8.0f}"
        f" | web CPU {sampler.cpu_share * 100:5.1f}% peak RSS {sampler.peak_rss / 2**20:6.1f} MB",
        flush=True,
    )


async def _scheduled(starts: list[float], run: Callable[[int], Awaitable[StreamResult]]) -> list[StreamResult]:
    """run(i) for every i, each begun `starts[i]` seconds after now."""
    origin = time.perf_counter()

    async def one(index: int) -> StreamResult:
        await asyncio.sleep(max(0.0, origin + starts[index] - time.perf_counter()))
        return await run(index)

    return list(await asyncio.gather(*[one(index) for index in range(len(starts))]))


def _arrivals(level: int, mode: str, reply_seconds: float) -> tuple[list[float], int]:
    """(start offsets, how many of the last ones are measured)."""
    if mode == "burst" or level == 1:
        return [0.0] * level, level
    spacing = reply_seconds / level
    return [index * spacing for index in range(2 * level)], level


async def _level(level: int, mode: str, *, fake_url: str, base: str, daphne_pid: int, rate: float, tokens: int) -> None:
    starts, measured = _arrivals(level, mode, tokens / rate)
    client = _direct_client(fake_url)
    await _direct(client, rate)  # warm: its connection pool and first parse are not measured
    direct = await _scheduled(starts, lambda _: _direct(client, rate))
    await client.close()
    sessions = await asyncio.gather(*[asyncio.to_thread(_guest_session, base) for _ in starts])
    with Sampler(daphne_pid) as sampler:
        arbor = await _scheduled(starts, lambda index: _through_arbor(base, sessions[index], rate))
    _report(level, mode, direct[-measured:], arbor[-measured:], sampler)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="1,100,500")
    parser.add_argument("--tokens", type=int, default=150)
    parser.add_argument("--rate", type=float, default=30.0)
    options = parser.parse_args()
    database_url = _fresh_database()
    from django.conf import settings

    from config.redis_urls import redis_url_with_db

    fake, fake_url = _start(
        [
            sys.executable,
            "-m",
            "providers.testing",
            "openai",
            "--tokens",
            str(options.tokens),
            "--rate",
            str(options.rate),
        ],
        dict(os.environ),
        "http://",
    )
    port = _free_port()
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url_with_db(settings.REDIS_URL, 7),
        "OPENAI_API_KEY": "sk-bench",
        "OPENAI_BASE_URL": f"{fake_url}/v1",
        "ARBOR_PORT": str(port),
        "ARBOR_VAR_DIR": tempfile.mkdtemp(prefix="arbor-bench-"),
        "GUEST_CREATE_BURST": "100000",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
    }
    serve, _ = _start([sys.executable, "manage.py", "serve"], environment, "Arbor is running")
    try:
        daphne = next(
            child
            for child in psutil.Process(serve.pid).children(recursive=True)
            if "daphne" in " ".join(child.cmdline())
        )
        print(f"{options.tokens} tokens per reply at {options.rate:.0f} tokens/s; web process pid {daphne.pid}")
        # A server in use is warm: one stream first pays for imports and the SDK's first client.
        base = f"http://127.0.0.1:{port}"
        asyncio.run(_through_arbor(base, _guest_session(base), options.rate))
        for level in (int(value) for value in options.levels.split(",")):
            for mode in ("burst", "steady") if level > 1 else ("burst",):
                asyncio.run(
                    _level(
                        level,
                        mode,
                        fake_url=fake_url,
                        base=base,
                        daphne_pid=daphne.pid,
                        rate=options.rate,
                        tokens=options.tokens,
                    )
                )
    finally:
        serve.send_signal(signal.SIGINT)
        serve.wait(timeout=60)
        fake.terminate()
        fake.wait(timeout=10)


if __name__ == "__main__":
    main()
