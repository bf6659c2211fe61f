"""Per-token cost of streaming through an adapter, and whether it stays flat as replies grow.

For each vendor (OpenAI, Anthropic), both sides read the same reply from its fake server on
127.0.0.1, through one warmed httpx2 client (the pooled client an adapter is given in Arbor):
- baseline: httpx2 reads the SSE lines and parses each event's JSON with the standard library
  (the least any client does);
- adapter: the full path, the adapter with the first-token/idle timeouts of `Adapter.stream`
  (and for OpenAI the <think> splitter), counting TextDelta events.
Two figures per side: wall-clock time, and the CPU time of the thread that reads. The fake server
runs in a thread of the same process, so the wall clock also carries its work and the hand-offs
of the GIL between the two (and swings with them); the reading thread's CPU is the client's cost
alone, and the steadier figure on a noisy machine.
A per-token cost that does not grow from 1,000 to 5,000 tokens shows no O(n²) work per token.

    .venv/bin/python -m bench.providers_stream [--runs 5] [--vendors openai,anthropic]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import django

Reader = Callable[[Any, str], Awaitable[int]]  # (httpx2 client, server URL) → text deltas read


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    django.setup()
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # a line per request would bury the table


# --- Readers -------------------------------------------------------------------------------
async def _sse_payloads(client: Any, url: str, body: dict[str, Any]) -> list[Any]:
    """Every `data:` payload of a streamed POST, parsed (what the baselines share)."""
    payloads = []
    async with client.stream("POST", url, json=body) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                payloads.append(json.loads(line[6:]))
    return payloads


async def _openai_baseline(client: Any, url: str) -> int:
    body = {"model": "bench", "stream": True, "messages": [{"role": "user", "content": "go"}]}
    payloads = await _sse_payloads(client, f"{url}/v1/chat/completions", body)
    return sum(1 for chunk in payloads if chunk.get("choices") and chunk["choices"][0]["delta"].get("content"))


async def _anthropic_baseline(client: Any, url: str) -> int:
    body = {"model": "bench", "max_tokens": 10, "stream": True, "messages": [{"role": "user", "content": "go"}]}
    payloads = await _sse_payloads(client, f"{url}/v1/messages", body)
    return sum(
        1 for event in payloads if event["type"] == "content_block_delta" and event["delta"]["type"] == "text_delta"
    )


def _adapter_reader(protocol: str, path: str) -> Reader:
    async def read(client: Any, url: str) -> int:
        from providers.adapters import adapter_for
        from providers.contract import ChatMessage, ChatRequest, Endpoint, TextDelta

        endpoint = Endpoint(base_url=f"{url}{path}", api_key="sk-bench", http_client=client, provider="bench")
        request = ChatRequest(model="bench", messages=(ChatMessage.text("user", "go"),))
        adapter = adapter_for(protocol, endpoint)
        return sum([1 async for event in adapter.stream(request) if isinstance(event, TextDelta)])

    return read


FAKES = "providers.testing"
VENDORS: dict[str, tuple[str, Reader, Reader]] = {
    # vendor: (fake server, baseline, adapter)
    "openai": (f"{FAKES}.openai_server.OpenAIServer", _openai_baseline, _adapter_reader("openai", "/v1")),
    "anthropic": (f"{FAKES}.anthropic_server.AnthropicServer", _anthropic_baseline, _adapter_reader("anthropic", "")),
}


# --- Measuring -----------------------------------------------------------------------------
def _measure(server: Any, tokens: int, reader: Reader, runs: int) -> tuple[float, float]:
    """Median µs per token over `runs` replies: (wall clock, the reading thread's CPU)."""
    from providers.testing.base import Say, reply

    async def series() -> tuple[list[float], list[float]]:
        import httpx2

        from providers.adapters.clients import LIMITS

        walls, cpus = [], []
        async with httpx2.AsyncClient(limits=LIMITS) as client:
            await reader(client, server.url)  # warm: the connection, the imports, the first calls
            for _ in range(runs):
                server.script(reply(*[Say(f"t{index} ") for index in range(tokens)]))
                wall, cpu = time.perf_counter(), time.thread_time()
                count = await reader(client, server.url)
                cpus.append(time.thread_time() - cpu)
                walls.append(time.perf_counter() - wall)
                if count != tokens:
                    raise RuntimeError(f"expected {tokens} tokens, read {count}")
        return walls, cpus

    walls, cpus = asyncio.run(series())
    return statistics.median(walls) / tokens * 1_000_000, statistics.median(cpus) / tokens * 1_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--vendors", default=",".join(VENDORS), help="comma-separated: " + ", ".join(VENDORS))
    options = parser.parse_args()
    _setup()
    from django.utils.module_loading import import_string

    print(f"µs per streamed token (median of {options.runs} runs), fake servers on 127.0.0.1")
    print(f"{'':<22}{'wall clock':^28}{'reading thread CPU':^28}")
    print(f"{'vendor':<10}{'tokens':>12}{'baseline':>14}{'adapter':>14}{'baseline':>14}{'adapter':>14}")
    for vendor in options.vendors.split(","):
        server_path, baseline, adapter = VENDORS[vendor.strip()]
        with import_string(server_path)() as server:
            for tokens in (1_000, 5_000):
                base_wall, base_cpu = _measure(server, tokens, baseline, options.runs)
                adapter_wall, adapter_cpu = _measure(server, tokens, adapter, options.runs)
                print(
                    f"{vendor:<10}{tokens:>12,}{base_wall:>14.1f}{adapter_wall:>14.1f}{base_cpu:>14.1f}{adapter_cpu:>14.1f}"
                )


if __name__ == "__main__":
    main()
