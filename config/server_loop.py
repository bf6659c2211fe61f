"""Work a web process starts with its event loop, before any request reaches it.

daphne sends no ASGI lifespan event. It creates the event loop it will run (`twisted_loop`,
installed as Twisted's reactor) when its server module is imported, before it imports
`config.asgi`, and runs it only once the application is loaded: a callback handed to that loop
now runs first thing when it starts. Elsewhere (tests, a shell, another server) nothing happens
here, and the first request does the same work instead (`chat.generation.GenerationsWatched`).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable


def when_the_server_loop_starts(callback: Callable[[], object]) -> bool:
    """Run `callback` on daphne's event loop as soon as it runs; False when there is none to wait
    for (not under daphne, or its loop already running or closed)."""
    server = sys.modules.get("daphne.server")
    loop = getattr(server, "twisted_loop", None)
    if not isinstance(loop, asyncio.AbstractEventLoop) or loop.is_running() or loop.is_closed():
        return False
    loop.call_soon(callback)
    return True
