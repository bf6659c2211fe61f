"""The SSRF guard: every refused form, what private mode admits, and the request-time client
(DNS rebinding, redirects, proxies). No DNS is needed: names go through a substituted resolver."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpcore2
import httpx2
import pytest

from providers import urlsafety
from providers.contract import Timeouts
from providers.urlsafety import UnsafeURL, check_base_url, guarded_http_client

FAST = Timeouts(connect=2.0, first_token=5.0, idle=5.0)

REFUSED_ALWAYS = [
    # Not http(s), credentials, no host, query strings, zone ids
    "ftp://93.184.216.34/",
    "file:///etc/passwd",
    "gopher://93.184.216.34/",
    "93.184.216.34/v1",
    "http://user:pass@93.184.216.34/",
    "http://user@93.184.216.34/",
    "http:///v1",
    "http://:8080/v1",
    "http://93.184.216.34/v1?api_key=secret",
    "http://93.184.216.34/v1#fragment",
    "http://93.184.216.34:0/",
    "http://93.184.216.34:99999/",
    "http://[fe80::1%25eth0]/",
    # Cloud metadata, unspecified, multicast, reserved
    "http://169.254.169.254/latest/meta-data/",
    "http://169.254.170.2/v2/credentials",
    "http://100.100.100.200/latest/meta-data/",
    "http://[fd00:ec2::254]/",
    "http://0.0.0.0:11434/",
    "http://0/",
    "http://0.1.2.3/",
    "http://[::]/",
    "http://224.0.0.1/",
    "http://239.255.255.250/",
    "http://[ff02::1]/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    # Metadata behind IPv6 forms and numeric encodings
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[2002:a9fe:a9fe::]/",
    "http://[64:ff9b::169.254.169.254]/",
    "http://2852039166/",
    "http://0xa9fea9fe/",
    "http://0251.0376.0251.0376/",
    # IPv4-compatible (deprecated) forms
    "http://[::127.0.0.1]/",
    "http://[::10.0.0.1]/",
]

REFUSED_UNLESS_PRIVATE = [
    # Loopback in every spelling
    "http://127.0.0.1:11434/v1",
    "http://127.0.0.2/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://017700000001/",
    "http://127.1/",
    "http://0x7f.1/",
    "http://[::1]:11434/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[2002:7f00:1::]/",
    "http://[64:ff9b::7f00:1]/",
    "http://localhost:11434/",
    "http://LOCALHOST/",
    "http://localhost./",
    "http://ollama.localhost/",
    "http://printer.local/",
    "http://metadata.google.internal/",
    "http://host.docker.internal:11434/",
    # Private, shared and link-local networks
    "http://10.0.0.1/",
    "http://10.255.255.255/",
    "http://172.16.0.1/",
    "http://172.31.255.254/",
    "http://192.168.1.10/",
    "http://100.64.0.1/",
    "http://169.254.1.1/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[fd12:3456::1]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[::ffff:192.168.1.1]/",
    "http://[2002:a00:1::1]/",
    "http://[2002:c0a8:101::]/",
    "http://[64:ff9b::a00:1]/",
    "http://[64:ff9b::c0a8:101]/",
    "http://167772161/",
]

REFUSED_NEVER_PUBLIC = [
    "http://[fec0::1]/",  # site-local (deprecated)
    "http://[2001::1]/",  # Teredo
    "http://[64:ff9b:1::a00:1]/",  # local-use NAT64
    "http://192.0.2.1/",  # documentation
    "http://198.18.0.1/",  # benchmarking
]


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Names resolve to what a test puts here (the resolver both checks use); unknown names fail."""
    table: dict[str, list[str]] = {
        "localhost": ["127.0.0.1", "::1"],
        "host.docker.internal": ["172.17.0.1"],
        "metadata.google.internal": ["169.254.169.254"],
        "ollama.localhost": ["127.0.0.1"],
        "printer.local": ["192.168.1.50"],
    }

    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"unknown host {host}")
        return list(table[host])

    monkeypatch.setattr(urlsafety, "resolve_host", resolve)
    return table


# --- check_base_url --------------------------------------------------------------------------
@pytest.mark.parametrize("url", REFUSED_ALWAYS + REFUSED_UNLESS_PRIVATE + REFUSED_NEVER_PUBLIC)
def test_unsafe_urls_are_refused_by_default(url: str, resolver: dict[str, list[str]]) -> None:
    with pytest.raises(UnsafeURL) as refusal:
        check_base_url(url, allow_private=False)
    assert refusal.value.message


@pytest.mark.parametrize("url", REFUSED_ALWAYS + REFUSED_NEVER_PUBLIC)
def test_metadata_unspecified_and_malformed_urls_are_refused_even_with_private_urls_allowed(
    url: str, resolver: dict[str, list[str]]
) -> None:
    with pytest.raises(UnsafeURL):
        check_base_url(url, allow_private=True)


@pytest.mark.parametrize("url", [u for u in REFUSED_UNLESS_PRIVATE if "metadata" not in u])
def test_private_and_loopback_urls_are_allowed_when_the_operator_allows_them(
    url: str, resolver: dict[str, list[str]]
) -> None:
    assert check_base_url(url, allow_private=True).startswith("http://")


def test_a_name_resolving_to_the_metadata_address_is_refused_even_with_private_urls_allowed(
    resolver: dict[str, list[str]],
) -> None:
    with pytest.raises(UnsafeURL, match="metadata"):
        check_base_url("http://metadata.google.internal/computeMetadata/v1/", allow_private=True)


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("https://93.184.216.34/v1/", "https://93.184.216.34/v1"),
        ("HTTP://93.184.216.34:8080/v1", "http://93.184.216.34:8080/v1"),
        ("https://[2606:4700::1]/v1", "https://[2606:4700::1]/v1"),
        ("https://[2606:4700:0000::0001]:443/", "https://[2606:4700::1]:443"),
        ("http://1572395042/v1", "http://93.184.216.34/v1"),
        ("https://[64:ff9b::5db8:d822]/", "https://[64:ff9b::5db8:d822]"),
        ("https://[2002:5db8:d822::1]/", "https://[2002:5db8:d822::1]"),
        ("HTTPS://API.Example.COM/v1/", "https://api.example.com/v1"),
    ],
)
def test_public_urls_are_allowed_and_normalised(url: str, normalised: str, resolver: dict[str, list[str]]) -> None:
    resolver["api.example.com"] = ["93.184.216.34", "2606:4700::1"]
    assert check_base_url(url, allow_private=False) == normalised


def test_a_name_with_one_private_address_among_public_ones_is_refused(resolver: dict[str, list[str]]) -> None:
    resolver["mixed.example.com"] = ["93.184.216.34", "10.0.0.7"]
    with pytest.raises(UnsafeURL, match="does not resolve to a public address"):
        check_base_url("https://mixed.example.com/v1", allow_private=False)


def test_refusing_a_name_does_not_say_what_it_resolved_to(resolver: dict[str, list[str]]) -> None:
    resolver["db.example.com"] = ["10.1.2.3"]
    with pytest.raises(UnsafeURL) as refusal:
        check_base_url("https://db.example.com/", allow_private=False)
    assert "10.1.2.3" not in refusal.value.message


def test_a_name_that_does_not_resolve_is_refused(resolver: dict[str, list[str]]) -> None:
    with pytest.raises(UnsafeURL):
        check_base_url("https://nowhere.example.com/", allow_private=False)


# --- The guarded client --------------------------------------------------------------------------
class LocalServer:
    """A tiny HTTP server on 127.0.0.1 that records requests; `redirect_to` makes it answer 302."""

    def __init__(self, redirect_to: str | None = None) -> None:
        self.redirect_to = redirect_to
        self.requests: list[dict[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append({"path": self.path, "host": self.headers.get("Host", "")})
                if server.redirect_to:
                    self.send_response(302)
                    self.send_header("Location", server.redirect_to)
                    body = b""
                else:
                    self.send_response(200)
                    body = b"ok"
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def local_server() -> Iterator[Callable[..., LocalServer]]:
    servers: list[LocalServer] = []

    def start(redirect_to: str | None = None) -> LocalServer:
        servers.append(LocalServer(redirect_to))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


async def test_the_guarded_client_refuses_to_connect_to_loopback_by_default(
    local_server: Callable[..., LocalServer],
) -> None:
    server = local_server()
    async with guarded_http_client(allow_private=False, timeouts=FAST) as client:
        with pytest.raises(httpx2.ConnectError, match="refused"):
            await client.get(server.url + "/v1/models")
    assert server.requests == []


@pytest.mark.parametrize("host", ["[::ffff:127.0.0.1]", "2130706433", "0x7f000001", "127.1", "[::1]"])
async def test_the_guarded_client_refuses_loopback_in_any_spelling(
    host: str, local_server: Callable[..., LocalServer]
) -> None:
    server = local_server()
    async with guarded_http_client(allow_private=False, timeouts=FAST) as client:
        with pytest.raises(httpx2.ConnectError, match="refused"):
            await client.get(f"http://{host}:{server.port}/")
    assert server.requests == []


async def test_the_guarded_client_reaches_a_local_server_when_private_urls_are_allowed(
    local_server: Callable[..., LocalServer],
) -> None:
    server = local_server()
    async with guarded_http_client(allow_private=True, timeouts=FAST) as client:
        response = await client.get(server.url + "/v1/models")
    assert response.status_code == 200
    assert server.requests == [{"path": "/v1/models", "host": f"127.0.0.1:{server.port}"}]


async def test_the_guarded_client_still_refuses_metadata_when_private_urls_are_allowed() -> None:
    anything = httpcore2.AsyncMockBackend([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"])
    client = guarded_http_client(allow_private=True, timeouts=FAST, network_backend=anything)
    async with client:
        with pytest.raises(httpx2.ConnectError, match="metadata"):
            await client.get("http://169.254.169.254/latest/meta-data/")


async def test_dns_rebinding_is_refused_when_the_url_is_used(
    resolver: dict[str, list[str]], local_server: Callable[..., LocalServer]
) -> None:
    server = local_server()
    resolver["rebind.example.com"] = ["93.184.216.34"]
    url = check_base_url(f"http://rebind.example.com:{server.port}/v1", allow_private=False)
    resolver["rebind.example.com"] = ["127.0.0.1"]  # the attacker's DNS answers differently now
    async with guarded_http_client(allow_private=False, timeouts=FAST) as client:
        with pytest.raises(httpx2.ConnectError, match="refused"):
            await client.get(url + "/models")
    assert server.requests == []


async def test_the_guarded_client_connects_to_the_address_it_checked_and_keeps_the_host_name(
    resolver: dict[str, list[str]], local_server: Callable[..., LocalServer]
) -> None:
    server = local_server()
    resolver["ollama.example.com"] = ["127.0.0.1"]
    async with guarded_http_client(allow_private=True, timeouts=FAST) as client:
        response = await client.get(f"http://ollama.example.com:{server.port}/api/tags")
    assert response.status_code == 200
    assert server.requests == [{"path": "/api/tags", "host": f"ollama.example.com:{server.port}"}]


async def test_redirects_are_returned_not_followed_even_when_a_caller_asks(
    local_server: Callable[..., LocalServer],
) -> None:
    target = local_server()
    redirecting = local_server(redirect_to=target.url + "/secret")
    async with guarded_http_client(allow_private=True, timeouts=FAST) as client:
        response = await client.get(redirecting.url + "/v1/models", follow_redirects=True)
    assert response.status_code == 302
    assert target.requests == []


async def test_a_public_endpoint_redirecting_to_metadata_is_not_followed(resolver: dict[str, list[str]]) -> None:
    resolver["evil.example.com"] = ["93.184.216.34"]
    redirect = b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest/meta-data/\r\nContent-Length: 0\r\n\r\n"
    backend = httpcore2.AsyncMockBackend([redirect])
    async with guarded_http_client(allow_private=False, timeouts=FAST, network_backend=backend) as client:
        response = await client.get("http://evil.example.com/v1/models", follow_redirects=True)
        assert response.status_code == 302
        with pytest.raises(httpx2.ConnectError, match="refused"):
            await client.get(response.headers["Location"])


async def test_proxies_from_the_environment_are_ignored(
    monkeypatch: pytest.MonkeyPatch, local_server: Callable[..., LocalServer]
) -> None:
    proxy = local_server()
    server = local_server()
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with guarded_http_client(allow_private=True, timeouts=FAST) as client:
        response = await client.get(server.url + "/")
    assert response.status_code == 200
    assert proxy.requests == []
    assert len(server.requests) == 1
