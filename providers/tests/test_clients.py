"""The shared client of platform calls: a key goes to its provider's URL and nowhere else."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from providers.adapters.clients import shared_http_client


class Recorder:
    """An HTTP server on 127.0.0.1 recording each request's headers; `redirect_to` answers 307."""

    def __init__(self, redirect_to: str | None = None) -> None:
        self.headers: list[dict[str, str]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                recorder.headers.append({name.lower(): value for name, value in self.headers.items()})
                self.send_response(307 if redirect_to else 200)
                if redirect_to:
                    self.send_header("Location", redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def elsewhere() -> Iterator[Recorder]:
    recorder = Recorder()
    yield recorder
    recorder.stop()


@pytest.fixture
def provider(elsewhere: Recorder) -> Iterator[Recorder]:
    recorder = Recorder(redirect_to=f"{elsewhere.url}/v1/messages")
    yield recorder
    recorder.stop()


async def test_a_redirect_is_not_followed_so_a_header_key_never_leaves_its_provider(
    provider: Recorder, elsewhere: Recorder
) -> None:
    # What the Anthropic SDK sends, and asks of the client (it passes follow_redirects=True).
    request = shared_http_client().build_request(
        "POST", f"{provider.url}/v1/messages", headers={"x-api-key": "sk-ant-secret"}, json={}
    )
    response = await shared_http_client().send(request, follow_redirects=True)
    assert response.status_code == 307
    assert provider.headers[0]["x-api-key"] == "sk-ant-secret"
    assert elsewhere.headers == []


def _endpoint(**fields: Any) -> Any:
    from providers.contract import Endpoint, Timeouts

    values: dict[str, Any] = {"base_url": "http://127.0.0.1:9/v1", "api_key": "sk-one", "timeouts": Timeouts()}
    return Endpoint(**(values | fields))


async def test_an_sdk_client_is_made_once_per_key_and_url_whatever_a_calls_timeouts() -> None:
    import dataclasses

    from providers.adapters.anthropic import AnthropicAdapter
    from providers.adapters.google import GoogleAdapter
    from providers.adapters.openai import OpenAIAdapter
    from providers.contract import Timeouts

    endpoint = _endpoint()
    # A call's first-token share of its budget changes its timeouts, not its client.
    shorter = dataclasses.replace(endpoint, timeouts=Timeouts(first_token=12.5))
    assert OpenAIAdapter(endpoint)._client() is OpenAIAdapter(shorter)._client()
    assert OpenAIAdapter(endpoint)._client() is not OpenAIAdapter(_endpoint(api_key="sk-two"))._client()
    async with AnthropicAdapter(endpoint)._client() as first, AnthropicAdapter(shorter)._client() as again:
        assert first is again
    async with GoogleAdapter(endpoint)._client() as first, GoogleAdapter(shorter)._client() as again:
        assert first is again


async def test_a_routes_own_http_client_gets_a_client_of_its_own_each_call() -> None:
    import httpx2

    from providers.adapters.openai import OpenAIAdapter

    async with httpx2.AsyncClient() as own:
        endpoint = _endpoint(http_client=own)
        first, second = OpenAIAdapter(endpoint)._client(), OpenAIAdapter(endpoint)._client()
        assert first is not second and first._client is own
