"""One pooled HTTP client per event loop for calls to the platform's own endpoints.

An SDK client made per call builds its own httpx2 client: a fresh SSL context loading the CA
bundle (milliseconds of CPU and about a megabyte) and a connection pool that dies with the call.
With hundreds of replies starting together that is most of a stream's start-up cost and of the
web process's memory. So platform calls share one client per loop, which also keeps connections
to the vendor alive between replies. A user's own endpoint never uses it: its route brings its
own SSRF-guarded client.

Its transport is `StreamingTransport` (asyncio protocols and llhttp): a streamed token costs a
fraction of the CPU it costs through httpx2's own transport. Proxies named in the environment
still get httpx2's proxy transports.

The SDKs pass their timeouts with every request, so the shared client's own are never used.
It lives as long as its loop; adapters must not close it.

It never follows a redirect, although the SDKs ask it to on every request: a key goes to its own
provider's URL only, and on a redirect to another origin httpx drops `Authorization` but keeps
Anthropic's `x-api-key` and Google's `x-goog-api-key`. No vendor API redirects; a 3xx is an error.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

import httpx2
from httpx2._utils import get_environment_proxies

from providers.adapters.transport import StreamingTransport
from providers.urlsafety import GuardedAsyncClient

# For proxied URLs only (StreamingTransport has no cap of its own). No cap on connections: every
# concurrent reply holds one for its whole stream, and a cap would queue replies behind each other
# (httpx's default is 100). Idle ones are kept for a while.
LIMITS = httpx2.Limits(max_connections=None, max_keepalive_connections=256, keepalive_expiry=30.0)

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx2.AsyncClient] = weakref.WeakKeyDictionary()


def shared_http_client() -> httpx2.AsyncClient:
    """The running loop's shared client (made on first use)."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        # The guarded client's class without its guard: the operator chose these URLs (they may be
        # private on purpose); it is only the redirect refusal that is wanted here.
        client = _clients[loop] = GuardedAsyncClient(
            transport=StreamingTransport(), mounts=_environment_proxies(), follow_redirects=False
        )
    return client


def _environment_proxies() -> dict[str, httpx2.AsyncBaseTransport | None]:
    """The mounts httpx2 makes from HTTP_PROXY / HTTPS_PROXY / ALL_PROXY / NO_PROXY when it makes
    its own transport. Given one (`transport=`), it skips them and would go direct, so they are
    made here as it makes them; None (a NO_PROXY host) means the client's own transport."""
    return {
        pattern: None if url is None else httpx2.AsyncHTTPTransport(proxy=url, limits=LIMITS)
        for pattern, url in get_environment_proxies().items()
    }


T = TypeVar("T")
# SDK clients kept per loop, by what they are made of (an LRU: BYOK keys make many).
SDK_CLIENTS_KEPT = 256
_sdk_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, OrderedDict[Hashable, object]] = (
    weakref.WeakKeyDictionary()
)


def sdk_client(key: Hashable, make: Callable[[], T]) -> T:
    """The running loop's SDK client for `key` (everything the client is made of: kind, key,
    URL, timeouts), made once. An SDK client made per call costs its constructor and, on its
    first request, a thread hop to read the platform for its telemetry headers (the openai and
    anthropic SDKs both do), a tenth of a turn's web CPU. Only for clients on the shared HTTP
    client: one on a route's own client dies with the route."""
    clients = _sdk_clients.get(asyncio.get_running_loop())
    if clients is None:
        clients = _sdk_clients[asyncio.get_running_loop()] = OrderedDict()
    client = clients.get(key)
    if client is None:
        client = clients[key] = make()
        if len(clients) > SDK_CLIENTS_KEPT:
            clients.popitem(last=False)
    else:
        clients.move_to_end(key)
    return client  # type: ignore[return-value]
