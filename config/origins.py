"""The WebSocket handshake's Origin check: the page that opens a socket must be this site's own
(or one in CSRF_TRUSTED_ORIGINS), matched by scheme, host and port, as Django's CSRF check
matches a POST's Origin. Host names alone (channels' AllowedHostsOriginValidator) let any port
and either scheme of an allowed host through: `http://127.0.0.1:9999`, another program on the
same machine, opened sockets with a visitor's cookies."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import is_same_domain, split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}
Scope = dict[str, Any]


def _origin(text: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin such as `https://example.com:8443`; None if malformed."""
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower(), port or DEFAULT_PORTS[parts.scheme]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin1")
    return None


def _allowed_hosts() -> list[str]:
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = [".localhost", "127.0.0.1", "[::1]"]  # as Django's HttpRequest.get_host does
    return hosts


def _scheme(scope: Scope) -> str:
    """The page's scheme: `https` for `wss`, or when the TLS proxy says so (SECURE_PROXY_SSL_HEADER,
    trusted only where production turns it on)."""
    if scope.get("scheme") == "wss":
        return "https"
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy:
        header, secure = proxy
        name = header.removeprefix("HTTP_").replace("_", "-").lower().encode()
        if (_header(scope, name) or "").split(",")[0].strip() == secure:
            return "https"
    return "http"


def _own_origin(scope: Scope) -> tuple[str, str, int] | None:
    """This site's origin as the socket's request names it: its scheme and a Host in ALLOWED_HOSTS."""
    host = _header(scope, b"host")
    if not host:
        return None
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, _allowed_hosts()):
        return None
    return _origin(f"{_scheme(scope)}://{host}")


def _trusted(origin: str, parsed: tuple[str, str, int]) -> bool:
    """In CSRF_TRUSTED_ORIGINS: exactly, or under a `scheme://*.domain` pattern (Django's rule)."""
    for trusted in settings.CSRF_TRUSTED_ORIGINS:
        if "*" not in trusted:
            if _origin(trusted) == parsed:
                return True
            continue
        scheme, _, pattern = trusted.partition("://")
        netloc = urlsplit(origin).netloc.lower()
        if scheme == parsed[0] and is_same_domain(netloc, pattern.replace("*", "", 1)):
            return True
    return False


def origin_allowed(scope: Scope) -> bool:
    origin = _header(scope, b"origin")
    parsed = _origin(origin) if origin else None
    if parsed is None:
        return False  # browsers always send one; a socket without it is not a page's
    return parsed == _own_origin(scope) or _trusted(origin, parsed)  # type: ignore[arg-type]


class SameOriginValidator:
    """ASGI middleware: a socket whose Origin is not this site's is refused at the handshake (403)."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        if scope["type"] != "websocket":
            raise ValueError("SameOriginValidator guards WebSocket connections only")
        if origin_allowed(scope):
            return await self.application(scope, receive, send)
        # A close before the accept: the server answers the handshake with 403. Plain ASGI, not
        # channels' denier consumer, which would take a channel-layer channel to say no.
        if (await receive())["type"] == "websocket.connect":
            await send({"type": "websocket.close"})
        return None
