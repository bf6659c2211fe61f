"""Per-token cost of streaming through an adapter, and whether it stays flat as replies grow.

Both sides read the same reply from the OpenAI fake server on 127.0.0.1:
- baseline: httpx2 reads the SSE lines and parses each chunk's JSON (the least any client does);
- adapter: the full path, OpenAIAdapter through the official SDK, the <think> splitter and the
  first-token/idle timeouts, counting TextDelta events.
A per-token cost that does not grow from 1,000 to 5,000 tokens shows no O(n²) work per token.

    .venv/bin/python -m bench.providers_stream [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time

import django


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    django.setup()


async def _baseline(url: str) -> int:
    import httpx2

    body = {"model": "bench", "stream": True, "messages": [{"role": "user", "content": "go"}]}
    count = 0
    async with (
        httpx2.AsyncClient() as client,
        client.stream("POST", f"{url}/v1/chat/completions", json=body) as response,
    ):
        async for line in response.aiter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                chunk = json.loads(line[6:])
                if chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
                    count += 1
    return count


async def _adapter(url: str) -> int:
    from providers.adapters import adapter_for
    from providers.contract import ChatMessage, ChatRequest, Endpoint, TextDelta

    adapter = adapter_for("openai", Endpoint(base_url=f"{url}/v1", api_key="sk-bench", provider="bench"))
    request = ChatRequest(model="bench", messages=(ChatMessage.text("user", "go"),))
    return sum([1 async for event in adapter.stream(request) if isinstance(event, TextDelta)])


def _measure(server: object, tokens: int, reader: object, runs: int) -> float:
    from providers.testing.base import Say, reply

    timings = []
    for _ in range(runs):
        server.script(reply(*[Say(f"t{index} ") for index in range(tokens)]))  # type: ignore[attr-defined]
        started = time.perf_counter()
        count = asyncio.run(reader(server.url))  # type: ignore[attr-defined,operator]
        timings.append(time.perf_counter() - started)
        if count != tokens:
            raise RuntimeError(f"expected {tokens} tokens, read {count}")
    return statistics.median(timings) / tokens * 1_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    _setup()
    from providers.testing.openai_server import OpenAIServer

    print(f"µs per streamed token (median of {runs} runs), OpenAI fake on 127.0.0.1")
    print(f"{'reply length':<14}{'baseline: httpx2 + json':>26}{'adapter: SDK + contract':>26}")
    with OpenAIServer() as server:
        for tokens in (1_000, 5_000):
            baseline = _measure(server, tokens, _baseline, runs)
            adapter = _measure(server, tokens, _adapter, runs)
            print(f"{tokens:<14}{baseline:>26.1f}{adapter:>26.1f}")


if __name__ == "__main__":
    main()
