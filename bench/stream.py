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
hops); frames and bytes per reply; the web processes' CPU share and peak memory.

First, the headline figures, which hold on a noisy machine where latency does not: the web
processes' **CPU per turn** (over turns whose replies are one token, on sockets opened before
the clock starts) and **CPU per streamed token** (100 long replies at once less 100 one-token
replies at once, over the extra tokens), each beside the direct SDK client's own CPU for the
same work in the same run; the phases run `--cpu-rounds` times and each figure is the rounds'
median. At the end, one summary table of every target.

    .venv/bin/python -m bench.stream [--levels 1,100,300,500] [--tokens 150] [--rate 30]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.cookiejar
import json
import logging
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
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, fields
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
    chat: tuple[str, str] | None = None  # (chat id, reply id) of the turn, for a reply after it


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


async def _direct(client: Any, rate: float, content: str = "hi", *, measure_bytes: bool = True) -> StreamResult:
    """One call straight to the fake through the SDK. `measure_bytes`: also count each chunk's
    JSON size (a re-encoding per chunk: left out where the client's CPU is the figure)."""
    result, arrivals = StreamResult(), []
    started = time.perf_counter()
    stream = await client.chat.completions.create(
        model="gpt-5-mini", messages=[{"role": "user", "content": content}], stream=True
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            now = time.perf_counter()
            if not arrivals:
                result.first_token = now - started
            arrivals.append((now, chunk.choices[0].delta.content.count("token")))
            result.frames += 1
            if measure_bytes:
                result.bytes += len(chunk.model_dump_json())
    result.lags = _lags(arrivals, rate) if arrivals else []
    return result


def _guest_session(base: str) -> str:
    cookies = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(cookies))
    opener.open(f"{base}/", timeout=30).read()
    return next(cookie.value for cookie in cookies if cookie.name == "sessionid")


def _connect(base: str, session: str) -> Any:
    from websockets.asyncio.client import connect

    headers = {"Origin": base, "Cookie": f"sessionid={session}"}
    return connect(f"{base.replace('http', 'ws')}/ws/chat/", additional_headers=headers, max_size=None)


async def _turn(
    ws: Any, rate: float, content: str = "hi", chat: tuple[str, str] | None = None, *, titled: bool = False
) -> StreamResult:
    """One send on an open socket, read through its `done`. `chat`: (chat id, parent id) to reply
    in, else a new chat. Sets `result.chat` to (chat id, the reply's id) for the next turn.
    `titled`: a new chat's turn is read on until its title arrives, so a CPU phase holds the whole
    of what its turns cost (a title's arrival costs the web process too) and none of another's."""
    result, arrivals = StreamResult(), []
    chat_id, parent_id = chat or (None, None)
    started = time.perf_counter()
    await ws.send(
        json.dumps({"type": "send", "chat_id": chat_id, "parent_id": parent_id, "content": content, "model": MODEL})
    )
    async for raw in ws:
        frame = json.loads(raw)
        result.frames += 1
        result.bytes += len(raw)
        if frame["type"] == "delta" and frame.get("text"):
            now = time.perf_counter()
            if not arrivals:
                result.first_token = now - started
            arrivals.append((now, frame["text"].count("token")))
        elif frame["type"] == "ack":
            result.chat = (frame["chat_id"], frame["assistant_message_id"])
        elif frame["type"] == "done":
            break
        elif frame["type"] == "error":
            raise RuntimeError(frame)
        elif _titles(frame, result):
            titled = False  # came first: nothing to wait for
    if titled and chat is None and result.chat is not None:
        async with asyncio.timeout(TITLE_WAIT_SECONDS):
            async for raw in ws:
                if _titles(json.loads(raw), result):
                    break
    result.lags = _lags(arrivals, rate) if arrivals else []
    return result


def _titles(frame: dict[str, Any], result: StreamResult) -> bool:
    """Whether `frame` is the title of the chat `result`'s turn made."""
    return (frame["type"] == "chat" and result.chat is not None and frame.get("chat_id") == result.chat[0]) and bool(
        frame.get("title")
    )


async def _through_arbor(base: str, session: str, rate: float) -> StreamResult:
    async with _connect(base, session) as ws:
        return await _turn(ws, rate)


class Sampler:
    """CPU (seconds and share of one core) and peak memory per process of the web processes
    while a phase runs."""

    def __init__(self, pids: list[int]) -> None:
        self.processes = [psutil.Process(pid) for pid in pids]
        self.peak_rss = 0  # the largest of any one web process
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _cpu(self) -> float:
        return sum(sum(process.cpu_times()[:2]) for process in self.processes)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak_rss = max(self.peak_rss, *(process.memory_info().rss for process in self.processes))

    def __enter__(self) -> Sampler:
        self.cpu_start, self.wall_start = self._cpu(), time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.cpu_seconds = self._cpu() - self.cpu_start
        self.cpu_share = self.cpu_seconds / (time.perf_counter() - self.wall_start)


class OwnCpu:
    """This process's CPU seconds over a block (the direct SDK baseline runs alone in it)."""

    def __enter__(self) -> OwnCpu:
        self.start = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.process_time() - self.start


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


def _fresh_redis(url: str) -> None:
    """Empty the benchmark's Redis database, as its PostgreSQL database is made anew: an earlier
    run's keys (its sockets' group memberships, queued tasks) would be this run's work."""
    import redis

    with redis.Redis.from_url(url) as client:
        client.flushdb()


@dataclass
class LevelFigures:
    level: int
    mode: str
    direct_first: list[float]
    arbor_first: list[float]
    direct_lags: list[float]
    arbor_lags: list[float]
    completed: int
    started: int
    peak_rss: int


def _ms(values: list[float], fraction: float) -> float:
    return _percentile(values, fraction) * 1000


def _report(level: int, mode: str, direct: list[StreamResult], arbor: list[StreamResult], sampler: Sampler) -> None:
    def ms(values: list[float], fraction: float) -> str:
        return f"{_ms(values, fraction):7.1f}"

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
        f" | web CPU {sampler.cpu_share * 100:5.1f}% peak RSS/process {sampler.peak_rss / 2**20:6.1f} MB",
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


async def _level(
    level: int, mode: str, *, fake_url: str, base: str, pids: list[int], rate: float, tokens: int
) -> LevelFigures:
    starts, measured = _arrivals(level, mode, tokens / rate)
    client = _direct_client(fake_url)
    await _direct(client, rate)  # warm: its connection pool and first parse are not measured
    direct = await _scheduled(starts, lambda _: _direct(client, rate))
    await client.close()
    sessions = await asyncio.gather(*[asyncio.to_thread(_guest_session, base) for _ in starts])

    async def through_arbor(index: int) -> StreamResult:
        try:
            return await _through_arbor(base, sessions[index], rate)
        except Exception as error:  # noqa: BLE001 - counted: an incomplete reply is a failed target
            print(f"      stream {index} failed: {type(error).__name__}: {str(error)[:120]}", flush=True)
            return StreamResult(first_token=float("nan"))

    with Sampler(pids) as sampler:
        arbor = await _scheduled(starts, through_arbor)
    completed = [result for result in arbor[-measured:] if result.frames]
    _report(level, mode, direct[-measured:], completed or [StreamResult()], sampler)
    return LevelFigures(
        level=level,
        mode=mode,
        direct_first=[r.first_token for r in direct[-measured:]],
        arbor_first=[r.first_token for r in completed],
        direct_lags=[lag for r in direct[-measured:] for lag in r.lags],
        arbor_lags=[lag for r in completed for lag in r.lags],
        completed=sum(1 for result in arbor if result.frames),
        started=len(arbor),
        peak_rss=sampler.peak_rss,
    )


# --- CPU per turn and per token -----------------------------------------------------------------
IDLE_SECONDS = 10.0
# A title that has not arrived by then fails the run: something is wrong, not slow.
TITLE_WAIT_SECONDS = 120.0
FAST = "reply at once in 2000 tokens"  # the fake writes these as fast as it can: many per read


@dataclass
class CpuFigures:
    turn_ms: float
    turn_ms_direct: float
    token_us: float
    token_us_direct: float
    turns: int
    tokens: int
    batched_us: float = float("nan")  # per token when the vendor writes them as fast as it can
    batched_us_direct: float = float("nan")


async def _direct_cpu(client: Any, count: int, content: str, rate: float, concurrency: int) -> tuple[float, int]:
    """(CPU seconds of this process, tokens read) for `count` direct calls, `concurrency` at a time."""
    results: list[StreamResult] = []

    async def worker(calls: int) -> None:
        for _ in range(calls):
            results.append(await _direct(client, rate, content, measure_bytes=False))

    with OwnCpu() as cpu:
        await asyncio.gather(*[worker(count // concurrency) for _ in range(concurrency)])
    return cpu.seconds, sum(len(result.lags) for result in results)


def _per_token(long: tuple[float, int], short: tuple[float, int]) -> float:
    """Seconds of CPU per token: what the long replies cost beyond the same number of one-token
    replies made the same way, over the tokens they streamed beyond them."""
    return (long[0] - short[0]) / max(1, long[1] - short[1])


async def _cpu_figures(
    *,
    fake_url: str,
    base: str,
    pids: list[int],
    rate: float,
    tokens: int,
    rounds: int = 3,
    profile: str | None = None,
) -> CpuFigures:
    """CPU per turn from `sockets` x `turns_each` one-token turns (the first of each socket in a new
    chat, the rest replying in it). CPU per streamed token by difference: `replies` long replies at
    once less `replies` one-token replies at once, each in a new chat on the same warm sockets, so
    the turns' own cost (a new chat's, at that concurrency) cancels out. Every socket has made a
    turn before the clock starts. The phases run `rounds` times, the direct client's beside
    Arbor's in each round; each figure is the median of the rounds' (this shared machine's speed
    swings by a third from one minute to the next). `profile`: py-spy's stacks of each phase of
    the first round, in PROFILE.turn.<pid>, PROFILE.long.<pid>, PROFILE.short.<pid> and
    PROFILE.fast.<pid>."""
    sockets, turns_each, replies = 20, 10, 100
    short = "reply in 1 tokens"
    client = _direct_client(fake_url)
    await _direct(client, rate)
    sessions = await asyncio.gather(*[asyncio.to_thread(_guest_session, base) for _ in range(replies)])
    measured: list[CpuFigures] = []
    async with contextlib.AsyncExitStack() as stack:
        sockets_open = [await stack.enter_async_context(_connect(base, session)) for session in sessions]
        # Warm every socket, and let the titles land: the idle phase then measures idleness.
        await asyncio.gather(*[_turn(ws, rate, short, titled=True) for ws in sockets_open])
        with _profiled(pids, profile and f"{profile}.idle"), Sampler(pids) as idle:
            await asyncio.sleep(IDLE_SECONDS)
        print(
            f"Idle: {replies} open sockets and nothing sent cost the web processes"
            f" {idle.cpu_seconds / IDLE_SECONDS * 1000:.1f} ms of CPU a second",
            flush=True,
        )

        async def conversation(ws: Any) -> None:
            chat = None
            for _ in range(turns_each):
                chat = (await _turn(ws, rate, short, chat, titled=True)).chat

        async def at_once(phase: str, count: int, content: str) -> tuple[float, int]:
            with _profiled(pids, phase_profile and f"{phase_profile}.{phase}"), Sampler(pids) as cpu:
                results = await asyncio.gather(*[_turn(ws, rate, content, titled=True) for ws in sockets_open[:count]])
            return cpu.cpu_seconds, sum(len(result.lags) for result in results)

        for round_number in range(1, rounds + 1):
            phase_profile = profile if round_number == 1 else None
            direct_turn_cpu, _ = await _direct_cpu(client, sockets * turns_each, short, rate, sockets)
            direct_long = await _direct_cpu(client, replies, "hi", rate, replies)
            direct_short = await _direct_cpu(client, replies, short, rate, replies)
            direct_fast = await _direct_cpu(client, sockets, FAST, rate, sockets)
            with _profiled(pids, phase_profile and f"{phase_profile}.turn"), Sampler(pids) as turn_cpu:
                await asyncio.gather(*[conversation(ws) for ws in sockets_open[:sockets]])
            long = await at_once("long", replies, "hi")
            short_replies = await at_once("short", replies, short)
            fast = await at_once("fast", sockets, FAST)
            new_chat_turn = short_replies[0] / replies  # a one-token reply in a new chat, 100 at once
            figures = CpuFigures(
                turn_cpu.cpu_seconds / (sockets * turns_each) * 1000,
                direct_turn_cpu / (sockets * turns_each) * 1000,
                _per_token(long, short_replies) * 1e6,
                _per_token(direct_long, direct_short) * 1e6,
                sockets * turns_each,
                long[1],
                (fast[0] - sockets * new_chat_turn) / max(1, fast[1]) * 1e6,
                (direct_fast[0] - sockets * direct_short[0] / replies) / max(1, direct_fast[1]) * 1e6,
            )
            measured.append(figures)
            print(
                f"round {round_number}: per turn {figures.turn_ms:5.2f} ms (direct {figures.turn_ms_direct:4.2f})"
                f" | per streamed token {figures.token_us:5.1f} µs (direct {figures.token_us_direct:5.1f})"
                f" | per token, many a read {figures.batched_us:4.1f} µs (direct {figures.batched_us_direct:4.1f})",
                flush=True,
            )
    await client.close()
    median = CpuFigures(
        *(statistics.median(getattr(round_, field.name) for round_ in measured) for field in fields(CpuFigures))
    )
    median.turns, median.tokens = sockets * turns_each, measured[0].tokens
    spread = {
        name: f"{min(getattr(r, name) for r in measured):.1f} to {max(getattr(r, name) for r in measured):.1f}"
        for name in ("turn_ms", "token_us")
    }
    print(
        f"CPU per turn: web {median.turn_ms:6.2f} ms (direct SDK client {median.turn_ms_direct:5.2f} ms)"
        f" over {median.turns} one-token turns | CPU per streamed token: web {median.token_us:6.1f} µs"
        f" (direct SDK client {median.token_us_direct:5.1f} µs) over {median.tokens} tokens"
        f" ({replies} replies at once, less {replies} one-token replies at once);"
        f" medians of {rounds} rounds (web: {spread['turn_ms']} ms, {spread['token_us']} µs)",
        flush=True,
    )
    print(
        f"CPU per token written as fast as the vendor can (many per read): web {median.batched_us:6.1f} µs"
        f" (direct SDK client {median.batched_us_direct:5.1f} µs)",
        flush=True,
    )
    return median


# --- Summary ------------------------------------------------------------------------------------
def _summary(cpu: CpuFigures | None, levels: list[LevelFigures]) -> None:
    def find(level: int, mode: str) -> LevelFigures | None:
        return next((f for f in levels if f.level == level and f.mode == mode), None)

    rows: list[tuple[str, str, str, float | None, float]] = []
    if cpu is not None:
        rows.append(("web CPU per turn (ms)", f"{cpu.turn_ms_direct:.2f}", f"{cpu.turn_ms:.2f}", cpu.turn_ms, 5.0))
        token = ("web CPU per streamed token (µs)", f"{cpu.token_us_direct:.1f}", f"{cpu.token_us:.1f}")
        rows.append((*token, cpu.token_us, 60.0))
    for level, required_first in ((100, 100.0), (300, 500.0)):
        figures = find(level, "steady")
        if figures is None:
            continue
        complete = figures.completed == figures.started
        added = _ms(figures.arbor_first, 0.5) - _ms(figures.direct_first, 0.5)
        name = f"{level} steady streams: first token p50 added (ms)"
        if not complete:
            name += f" [only {figures.completed}/{figures.started} complete]"
        direct, arbor = f"{_ms(figures.direct_first, 0.5):.0f}", f"{_ms(figures.arbor_first, 0.5):.0f}"
        rows.append((name, direct, arbor, added if complete else None, required_first))
        if level == 100:
            lag = _ms(figures.arbor_lags, 0.99) - _ms(figures.direct_lags, 0.99)
            direct_lag, arbor_lag = f"{_ms(figures.direct_lags, 0.99):.0f}", f"{_ms(figures.arbor_lags, 0.99):.0f}"
            rows.append(("100 steady streams: token lag p99 added (ms)", direct_lag, arbor_lag, lag, 150.0))
    memory = [f for f in levels if f.level == 500]
    if memory:
        peak = max(f.peak_rss for f in memory) / 2**20
        rows.append(("peak memory per web process at 500 streams (MB)", "—", f"{peak:.0f}", peak, 300.0))
    print("\n| figure | direct | Arbor | figure | required | holds |\n| --- | ---: | ---: | ---: | ---: | --- |")
    for name, direct, arbor, value, required in rows:
        shown = "—" if value is None else f"{value:.1f}"
        holds = "yes" if value is not None and value <= required else "NO"
        print(f"| {name} | {direct} | {arbor} | {shown} | ≤ {required:g} | {holds} |", flush=True)


@contextlib.contextmanager
def _profiled(pids: list[int], path: str | None) -> Iterator[None]:
    """py-spy sampling the web processes (one file each, FILE.<pid>) while the block runs."""
    if not path:
        yield
        return
    spies = [
        subprocess.Popen(
            [
                "py-spy",
                "record",
                "--nonblocking",
                "--gil",
                "--pid",
                str(pid),
                "--format",
                "raw",
                "--rate",
                "1000",
                "-o",
                f"{path}.{pid}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in pids
    ]
    try:
        yield
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=30)


def _guests_unlimited(database_url: str) -> None:
    """Guests' limits so high that no turn is refused, kept on the path (the checks still run)."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(
            "UPDATE accounts_tier SET message_capacity = 10000000, messages_per_minute = 10000000,"
            " token_capacity = 2000000000, tokens_per_minute = 2000000000 WHERE is_guest_default"
        )
        connection.execute(
            "UPDATE usage_tierquota SET daily_limit = 99999999, monthly_limit = 99999999"
            " WHERE tier_id IN (SELECT id FROM accounts_tier WHERE is_guest_default)"
        )


def _web_pids(serve_pid: int) -> list[int]:
    return [
        child.pid
        for child in psutil.Process(serve_pid).children(recursive=True)
        if "daphne" in " ".join(child.cmdline())
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="1,100,300,500")
    parser.add_argument("--modes", default="steady", help="burst, steady or both (comma-separated)")
    parser.add_argument("--tokens", type=int, default=150)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--no-cpu", action="store_true", help="skip the CPU-per-turn and per-token phase")
    parser.add_argument(
        "--cpu-rounds", type=int, default=3, help="rounds of the CPU phases; each figure is their median"
    )
    parser.add_argument(
        "--profile", metavar="FILE", help="py-spy's stacks of the web processes in each CPU phase (FILE.turn.<pid>, …)"
    )
    options = parser.parse_args()
    database_url = _fresh_database()
    # The direct client's requests are not logged: a log line per call would be its CPU too.
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    from django.conf import settings

    from config.redis_urls import redis_url_with_db

    redis_url = redis_url_with_db(settings.REDIS_URL, 7)
    _fresh_redis(redis_url)
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
        "REDIS_URL": redis_url,
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
        _guests_unlimited(database_url)
        pids = _web_pids(serve.pid)
        print(
            f"{options.tokens} tokens per reply at {options.rate:.0f} tokens/s;"
            f" {len(pids)} web process(es) {pids}; {os.cpu_count()} cores",
            flush=True,
        )
        # A server in use is warm: one stream first pays for imports and the SDK's first client.
        base = f"http://127.0.0.1:{port}"
        for _ in range(2 * len(pids)):
            asyncio.run(_through_arbor(base, _guest_session(base), options.rate))
        common = {"fake_url": fake_url, "base": base, "pids": pids, "rate": options.rate, "tokens": options.tokens}
        cpu = (
            None
            if options.no_cpu
            else asyncio.run(_cpu_figures(**common, rounds=options.cpu_rounds, profile=options.profile))
        )
        levels = []
        modes = [mode.strip() for mode in options.modes.split(",")]
        for level in (int(value) for value in options.levels.split(",") if value):
            for mode in modes if level > 1 else ("burst",):
                levels.append(asyncio.run(_level(level, mode, **common)))
        _summary(cpu, levels)
    finally:
        serve.send_signal(signal.SIGINT)
        serve.wait(timeout=60)
        fake.terminate()
        fake.wait(timeout=10)


if __name__ == "__main__":
    main()
