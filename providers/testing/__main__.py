"""Run a fake vendor server on 127.0.0.1 until interrupted, answering every request with a long
reply at a steady pace: for the benchmarks, and to try Arbor with no key and no network.

    .venv/bin/python -m providers.testing openai --port 9100 --tokens 300 --rate 30
    OPENAI_API_KEY=sk-fake OPENAI_BASE_URL=http://127.0.0.1:9100/v1 make run

A prompt that says "reply in N tokens" gets N words instead (the benchmark's one-token turns), and
"reply at once in N tokens" gets them as fast as the server writes them. A prompt whose last
message says `fault:<name>` (or every request, with `--fault <name>`) gets that fault: endless,
drop, cut, stall-first, stall, malformed, 429 or 500 (`providers.testing.base.FAULTS`).
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import threading

from django.utils.module_loading import import_string

from providers.testing.base import (
    FAULTS,
    Behaviour,
    Count,
    End,
    FakeVendorServer,
    RecordedRequest,
    Reply,
    Say,
    with_fault,
)

SERVERS = {
    "openai": "providers.testing.openai_server.OpenAIServer",
    "anthropic": "providers.testing.anthropic_server.AnthropicServer",
    "google": "providers.testing.gemini_server.GeminiServer",
}


def steady_reply(tokens: int, rate: float, *, limit: int | None = None) -> Reply:
    """`tokens` words at `rate`, or as a vendor does, the first `limit` of them (the request's
    max tokens) ending for that length."""
    count = tokens if limit is None else min(tokens, limit)
    words = tuple(Say(f"token{index} ") for index in range(count))
    end = End("length") if count < tokens else End()
    return Reply(events=(*words, Count(20, count), end), delay=1 / rate if rate > 0 else 0.0)


def _max_tokens(body: dict[str, object] | None) -> int | None:
    """The output limit a request sets, in each vendor's spelling."""
    if not body:
        return None
    generation = body.get("generationConfig")
    for value in (
        body.get("max_completion_tokens"),
        body.get("max_tokens"),
        generation.get("maxOutputTokens") if isinstance(generation, dict) else None,
    ):
        if isinstance(value, int) and value > 0:
            return value
    return None


SIZED = re.compile(r"reply (at once )?in (\d{1,6}) tokens")


def sized_by_prompt(server: FakeVendorServer, tokens: int, rate: float) -> None:
    """Answer a prompt that asks for "reply in N tokens" with N words at `rate` ("reply at once in
    N tokens": as fast as the server writes them), others with `tokens` words; either cut at the
    request's max tokens, as a vendor does (a title asks for a few)."""
    default = server.behaviour_for

    def behaviour_for(request: RecordedRequest) -> Behaviour:
        asked = SIZED.search(json.dumps(request.body)) if request.body else None
        limit = _max_tokens(request.body)
        if asked is not None:
            sized = steady_reply(int(asked.group(2)), 0.0 if asked.group(1) else rate, limit=limit)
        elif limit is not None and limit < tokens and not server.behaviours:  # nothing scripted
            sized = steady_reply(tokens, rate, limit=limit)
        else:
            return default(request)
        return with_fault(sized, server.fault_for(request))

    server.behaviour_for = behaviour_for  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("vendor", choices=sorted(SERVERS))
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    parser.add_argument("--tokens", type=int, default=300, help="words per reply")
    parser.add_argument("--rate", type=float, default=30.0, help="words per second (0: as fast as possible)")
    parser.add_argument("--fault", choices=sorted(FAULTS), help="bend every reply by this fault")
    options = parser.parse_args()
    server = import_string(SERVERS[options.vendor])(port=options.port)
    server.fault = options.fault
    server.default_reply = steady_reply(options.tokens, options.rate)
    sized_by_prompt(server, options.tokens, options.rate)
    server.start()
    print(server.url, flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    server.stop()


if __name__ == "__main__":
    main()
