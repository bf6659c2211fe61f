"""The event loop a web process runs: uvloop's, unless `EVENT_LOOP=asyncio`.

A streamed token costs the web process a wakeup per vendor read, a Redis round trip and a socket
write per frame; on asyncio's pure-Python loop the loop's own work (select, handles, futures,
transports) was most of that. uvloop (libuv, the same loop API) does it in C: the benchmark's web
CPU per streamed token and per turn both fell with nothing else changed (docs/benchmarks.md).

It must be chosen before daphne imports its server module, which makes the loop Twisted's
reactor runs on (`daphne.server.twisted_loop`) as a side effect of the import. Read from the
environment, not settings: settings are not loaded yet when the loop is made.
"""

from __future__ import annotations

import asyncio
import os

CHOICES = ("uvloop", "asyncio")


def event_loop_policy_install() -> str:
    """Make new event loops uvloop's (or leave asyncio's, by `EVENT_LOOP`); the loop chosen."""
    choice = os.environ.get("EVENT_LOOP", "uvloop").strip().lower() or "uvloop"
    if choice not in CHOICES:
        raise ValueError(f"EVENT_LOOP must be one of {', '.join(CHOICES)}, not {choice!r}")
    if choice == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return choice
