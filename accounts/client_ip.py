"""The client's IP address, believing X-Forwarded-For only as far as it was written by our proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from functools import lru_cache

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=8)
def _networks(trusted_proxies: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(proxy, strict=False) for proxy in trusted_proxies)


def _parse(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    # An IPv4 client seen through an IPv6 socket is the IPv4 client.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_ip(meta: Mapping[str, str], trusted_proxies: Sequence[str]) -> str:
    """REMOTE_ADDR, unless a trusted proxy sent the request: then walk X-Forwarded-For from the
    right (the hops our proxies appended) past trusted addresses to the first untrusted one.
    Entries left of it are the client's own claims and are ignored."""
    networks = _networks(tuple(trusted_proxies))
    nearest = _parse(meta.get("REMOTE_ADDR", ""))
    if nearest is None:
        return meta.get("REMOTE_ADDR", "")

    def trusted(address: IPAddress) -> bool:
        return any(address in network for network in networks)

    if not trusted(nearest):
        return str(nearest)
    for hop in reversed(meta.get("HTTP_X_FORWARDED_FOR", "").split(",")):
        address = _parse(hop)
        if address is None:
            break  # garbage a trusted proxy would never write: stop at the last good hop
        nearest = address
        if not trusted(address):
            break
    return str(nearest)


def client_ip_bucket(ip: str) -> str:
    """The unit a rate limit counts: one IPv4 address, or one IPv6 /64 (what one subscriber gets)."""
    address = _parse(ip)
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address) if address is not None else ip
