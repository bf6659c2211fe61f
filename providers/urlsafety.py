"""The SSRF guard: a user's custom base URL makes the server send requests on the user's behalf.

Two checks, one rule (`address_refusal`):
- `check_base_url` when a URL is saved and again when it is used: scheme, no credentials, no
  query, and every address the host resolves to must be public.
- `guarded_http_client` at request time: its network backend resolves each connection's host
  itself, checks every address with the same rule and connects to the checked address, so a
  name that resolved publicly when saved and privately now (DNS rebinding) is still refused.
  It never follows redirects and ignores proxy settings from the environment.

`allow_private` is the operator's ALLOW_PRIVATE_PROVIDER_URLS (self-hosters running Ollama beside
Arbor): it admits loopback, private, link-local and shared addresses, never cloud metadata,
unspecified, multicast or reserved ones.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import anyio
import httpcore2
import httpx2

from providers.contract import Timeouts

if TYPE_CHECKING:
    from httpx2._client import UseClientDefault

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Instance metadata services hand out cloud credentials: refused even when private URLs are allowed.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle
        "169.254.170.2",  # AWS ECS task credentials
        "100.100.100.200",  # Alibaba Cloud
        "fd00:ec2::254",  # AWS over IPv6
    )
)
# What ALLOW_PRIVATE_PROVIDER_URLS admits: a self-hoster's own machines and networks.
PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(network)
    for network in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "100.64.0.0/10",  # shared address space (carrier-grade NAT, Tailscale)
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    )
)
THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
SITE_LOCAL = ipaddress.ip_network("fec0::/10")
LOCAL_NAME_SUFFIXES = (".localhost", ".local", ".internal")

# Numeric IPv4 forms that inet_aton accepts besides dotted quads: 2130706433, 0x7f000001, 0177.0.0.1, 127.1.
_NUMERIC_IPV4 = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}$")
_HOST_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$")


class UnsafeURL(ValueError):
    """A URL the server must not call; `message` is safe to show the user."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class RefusedConnection(httpcore2.ConnectError):
    """A connection the guard refused. A ConnectError, so SDKs and adapters see a connection failure."""


def resolve_host(host: str, port: int) -> list[str]:
    """Every address `host` resolves to. The one resolver both checks use (tests substitute it)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


# --- The rule ----------------------------------------------------------------------------------
def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries (mapped, 6to4, NAT64), which is where it really goes."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _special_refusal(address: IPAddress) -> str | None:
    """Refusals that hold even when private addresses are allowed."""
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_unspecified or address in THIS_NETWORK:
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv6Address) and int(address) >> 32 == 0:
        return "an IPv4-compatible IPv6 address"  # ::a.b.c.d (deprecated); :: and ::1 never get here
    return None


def address_refusal(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why the server may not connect to `address`, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address):
        address = ipaddress.IPv6Address(int(address))  # without a scope id (fe80::1%eth0)
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return address_refusal(embedded, allow_private=allow_private)
    if address.is_loopback and address.version == 6:
        return None if allow_private else "not a public address"
    reason = _special_refusal(address)
    if reason is not None:
        return reason
    if allow_private and any(address in network for network in PRIVATE_NETWORKS):
        return None
    public = address.is_global and not address.is_reserved and address not in SITE_LOCAL and address not in NAT64_LOCAL
    return None if public else "not a public address"


def literal_address(host: str) -> IPAddress | None:
    """The address `host` spells, in any numeric form a resolver accepts; None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _NUMERIC_IPV4.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            raise UnsafeURL("The host is not a valid address.") from None
    return None


# --- Saving and using a base URL ------------------------------------------------------------
def _clean_host(raw: str, *, allow_private: bool) -> str:
    host = raw.lower().removesuffix(".")
    if not host:
        raise UnsafeURL("The URL needs a host.")
    if literal_address(host) is not None:
        return host
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise UnsafeURL("The host name is not valid.") from None
    if not _HOST_NAME.match(host):
        raise UnsafeURL("The host name is not valid.")
    if not allow_private and (host == "localhost" or host.endswith(LOCAL_NAME_SUFFIXES)):
        raise UnsafeURL("Local host names are not allowed; use the provider's public address.")
    return host


def _host_addresses(host: str, port: int) -> list[IPAddress]:
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    try:
        return [ipaddress.ip_address(address) for address in resolve_host(host, port)]
    except (OSError, UnicodeError, ValueError):
        return []


def _refuse_unsafe_addresses(host: str, port: int, *, allow_private: bool) -> None:
    literal = literal_address(host)
    addresses = _host_addresses(host, port)
    if not addresses:
        raise UnsafeURL("The host name does not resolve to a public address.")
    for address in addresses:
        reason = address_refusal(address, allow_private=allow_private)
        if reason == "a cloud metadata address":
            raise UnsafeURL("Cloud metadata addresses are never allowed.")
        if reason is not None and literal is not None:
            raise UnsafeURL(f"{literal} is {reason}; only public addresses are allowed.")
        if reason is not None:
            # The resolved address is not named: that would let anyone map the internal network.
            raise UnsafeURL("The host name does not resolve to a public address.")


def check_base_url(url: str, *, allow_private: bool) -> str:
    """The URL normalised (lower-case scheme and host, canonical address, no trailing slash), or
    UnsafeURL. Resolves the host: every address must pass `address_refusal`."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise UnsafeURL("The URL is not valid.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeURL("The URL must start with http:// or https://.")
    if "@" in parts.netloc:
        raise UnsafeURL("Put credentials in the API key field, not in the URL.")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise UnsafeURL("A base URL has no query string or fragment; put keys in the API key field.")
    if port == 0 or "%" in (parts.hostname or ""):
        raise UnsafeURL("The URL is not valid.")
    host = _clean_host(parts.hostname or "", allow_private=allow_private)
    _refuse_unsafe_addresses(host, port or (443 if scheme == "https" else 80), allow_private=allow_private)
    literal = literal_address(host)
    netloc = host if literal is None else f"[{literal}]" if literal.version == 6 else str(literal)
    if port is not None:
        netloc = f"{netloc}:{port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


# --- At request time --------------------------------------------------------------------------
class GuardedNetworkBackend(httpcore2.AsyncNetworkBackend):
    """Resolves each connection's host, refuses it unless every address passes the rule, and
    connects to a checked address (TLS SNI and Host stay the original name: httpcore sets those
    from the URL, not from what this connects to)."""

    def __init__(self, *, allow_private: bool, inner: httpcore2.AsyncNetworkBackend | None = None) -> None:
        self.allow_private = allow_private
        self._inner = inner if inner is not None else httpcore2.AnyIOBackend()

    async def _checked_addresses(self, host: str, port: int, timeout: float | None) -> list[IPAddress]:
        try:
            literal = literal_address(host)
        except UnsafeURL:
            raise RefusedConnection(f"refused to connect to {host!r}: not a valid address") from None
        if literal is not None:
            addresses = [literal]
        else:
            try:
                with anyio.fail_after(timeout):
                    found = await anyio.to_thread.run_sync(partial(resolve_host, host, port), abandon_on_cancel=True)
                addresses = [ipaddress.ip_address(address) for address in found]
            except TimeoutError:
                raise httpcore2.ConnectTimeout(f"resolving {host!r} timed out") from None
            except (OSError, UnicodeError, ValueError):
                raise httpcore2.ConnectError(f"cannot resolve {host!r}") from None
        if not addresses:
            raise httpcore2.ConnectError(f"cannot resolve {host!r}")
        for address in addresses:
            reason = address_refusal(address, allow_private=self.allow_private)
            if reason is not None:
                raise RefusedConnection(f"refused to connect to {host!r} ({address}): {reason}")
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        deadline = None if timeout is None else time.monotonic() + timeout
        addresses = await self._checked_addresses(host, port, timeout)
        error: Exception = httpcore2.ConnectError(f"cannot connect to {host!r}")
        for address in addresses:
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0.001)
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout=remaining, local_address=local_address, socket_options=socket_options
                )
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as failure:
                error = failure
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise RefusedConnection("refused to connect to a unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx2.AsyncHTTPTransport):
    """httpx2's transport, connecting through GuardedNetworkBackend and never through a proxy."""

    def __init__(self, *, allow_private: bool, network_backend: httpcore2.AsyncNetworkBackend | None = None) -> None:
        super().__init__(trust_env=False)
        limits = httpx2.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)
        # AsyncHTTPTransport takes no network backend, so its pool is replaced by one that has ours
        # (`_pool` is what handle_async_request uses; tests/test_urlsafety.py fails if that changes).
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=httpx2.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedNetworkBackend(allow_private=allow_private, inner=network_backend),
        )


class GuardedAsyncClient(httpx2.AsyncClient):
    """Never follows a redirect, whatever a caller (an SDK) asks for: a 3xx is returned as is."""

    async def send(
        self,
        request: httpx2.Request,
        *,
        stream: bool = False,
        auth: httpx2.Auth | UseClientDefault | None = httpx2.USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = httpx2.USE_CLIENT_DEFAULT,
    ) -> httpx2.Response:
        return await super().send(request, stream=stream, auth=auth, follow_redirects=False)


def guarded_http_client(
    *,
    allow_private: bool,
    timeouts: Timeouts,
    network_backend: httpcore2.AsyncNetworkBackend | None = None,
) -> httpx2.AsyncClient:
    """The client adapters use for user-supplied URLs. `network_backend` is what really connects
    once an address passed (tests substitute httpcore2's mock backend). The caller closes it."""
    return GuardedAsyncClient(
        transport=GuardedTransport(allow_private=allow_private, network_backend=network_backend),
        timeout=httpx2.Timeout(
            connect=timeouts.connect,
            read=max(timeouts.first_token, timeouts.idle),
            write=timeouts.idle,
            pool=timeouts.connect,
        ),
        follow_redirects=False,
        trust_env=False,
    )
