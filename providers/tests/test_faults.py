"""The fake vendors' named faults (`providers.testing.base.FAULTS`), through each real SDK, and
what the adapters make of them: a stream that ends without its terminal event is
`provider_disconnected` (the text before it kept by the caller), on every wire."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

import pytest

from providers.adapters.anthropic import AnthropicAdapter
from providers.adapters.base import Adapter
from providers.adapters.google import GoogleAdapter
from providers.adapters.openai import OpenAIAdapter
from providers.contract import (
    ChatMessage,
    ChatRequest,
    Endpoint,
    ErrorCode,
    Event,
    Finish,
    FinishReason,
    ProviderError,
    TextDelta,
    Timeouts,
)
from providers.testing.__main__ import sized_by_prompt
from providers.testing.anthropic_server import AnthropicServer
from providers.testing.base import ENDLESS_TEXT, FakeVendorServer, Say, reply
from providers.testing.gemini_server import GeminiServer
from providers.testing.openai_server import OpenAIServer

WIRES = {
    "openai": (OpenAIServer, OpenAIAdapter, "gpt-4o", "/v1"),
    "anthropic": (AnthropicServer, AnthropicAdapter, "claude-sonnet-5-5", ""),
    "google": (GeminiServer, GoogleAdapter, "gemini-2.5-flash", ""),
}
TEXT = (Say("one "), Say("two "), Say("three "), Say("four"))


@pytest.fixture(params=sorted(WIRES))
def wire(request: pytest.FixtureRequest) -> Iterator[tuple[FakeVendorServer, Adapter, str]]:
    server_class, adapter_class, model, path = WIRES[request.param]
    with server_class() as server:
        endpoint = Endpoint(base_url=server.url + path, api_key="key-test", timeouts=Timeouts(connect=5))
        yield server, adapter_class(endpoint), model


def _ask(model: str, *earlier: str, text: str = "Hi") -> ChatRequest:
    turns = [ChatMessage.text("user" if index % 2 == 0 else "assistant", said) for index, said in enumerate(earlier)]
    return ChatRequest(model=model, messages=(*turns, ChatMessage.text("user", text)))


async def _partial(adapter: Adapter, request: ChatRequest) -> tuple[str, ProviderError]:
    """The text a failing stream yielded before its error, and the error."""
    text: list[str] = []
    with pytest.raises(ProviderError) as raised:
        async for event in adapter.stream(request):
            if isinstance(event, TextDelta):
                text.append(event.text)
    return "".join(text), raised.value


@pytest.mark.parametrize("fault", ["drop", "cut"])
async def test_a_stream_without_its_terminal_event_is_disconnected_with_the_text_before_it(
    wire: tuple[FakeVendorServer, Adapter, str], fault: str
) -> None:
    # drop: the connection reset half-way; cut: the HTTP body ends cleanly half-way. Either way
    # no finish reason, no [DONE], no message_stop.
    server, adapter, model = wire
    server.script(reply(*TEXT))
    text, error = await _partial(adapter, _ask(model, text=f"Count to four fault:{fault}"))
    assert text and "one ".startswith(text[:4]) and len(text) < len("one two three four")
    assert (error.code, error.retryable) == (ErrorCode.PROVIDER_DISCONNECTED, True)
    assert error.message == "The provider's connection ended before the reply finished."


async def test_an_endless_stream_keeps_writing_text_and_never_finishes(
    wire: tuple[FakeVendorServer, Adapter, str],
) -> None:
    server, adapter, model = wire
    server.fault = "endless"
    seen: list[Event] = []
    async with contextlib.aclosing(adapter.stream(_ask(model))) as events:
        async for event in events:
            seen.append(event)
            if len(seen) == 500:
                break  # far past anything scripted: the server would go on
    assert all(isinstance(event, TextDelta) for event in seen)
    text = "".join(event.text for event in seen)  # type: ignore[union-attr]
    first = "Hello from the fake server."
    assert text.startswith(first)
    endless = text[len(first) :]
    assert len(endless) >= (len(seen) - 1) * len(ENDLESS_TEXT)
    assert endless == ENDLESS_TEXT * (len(endless) // len(ENDLESS_TEXT))
    assert not any(isinstance(event, Finish) for event in seen)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("fault", "code"), [("stall-first", ErrorCode.TIMEOUT), ("stall", ErrorCode.TIMEOUT)])
async def test_stalls_before_and_after_the_first_token_time_out(
    wire: tuple[FakeVendorServer, Adapter, str], fault: str, code: ErrorCode
) -> None:
    server, adapter, model = wire
    server.script(reply(*TEXT))
    server.fault = fault
    adapter.endpoint = Endpoint(
        base_url=adapter.endpoint.base_url, api_key="key-test", timeouts=Timeouts(connect=5, first_token=0.5, idle=0.5)
    )
    text, error = await _partial(adapter, _ask(model))
    assert error.code == code
    assert bool(text) is (fault == "stall")


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ("malformed", ErrorCode.PROVIDER_UNAVAILABLE),
        ("429", ErrorCode.RATE_LIMITED),
        ("500", ErrorCode.PROVIDER_UNAVAILABLE),
    ],
)
async def test_failures_named_in_the_prompt(
    wire: tuple[FakeVendorServer, Adapter, str], fault: str, code: ErrorCode
) -> None:
    server, adapter, model = wire
    server.script(reply(*TEXT))
    _, error = await _partial(adapter, _ask(model, text=f"fault:{fault} please"))
    assert error.code == code
    if fault == "429":
        assert error.retry_after == 1


async def test_only_the_last_message_names_a_fault(wire: tuple[FakeVendorServer, Adapter, str]) -> None:
    server, adapter, model = wire
    server.script(reply(*TEXT))
    request = _ask(model, "Try fault:500", "Failed.", text="Again, please")
    text = "".join([event.text async for event in adapter.stream(request) if isinstance(event, TextDelta)])
    assert text == "one two three four"


async def test_the_standalone_fake_bends_a_reply_sized_by_the_prompt_too() -> None:
    with OpenAIServer() as server:
        sized_by_prompt(server, tokens=300, rate=0)
        adapter = OpenAIAdapter(Endpoint(base_url=server.url + "/v1", api_key="key-test"))
        text, error = await _partial(adapter, _ask("gpt-4o", text="reply in 10 tokens fault:cut"))
    assert error.code == ErrorCode.PROVIDER_DISCONNECTED
    assert text.startswith("token0 ") and "token9" not in text


async def test_the_standalone_fake_stops_at_the_requests_max_tokens_as_a_vendor_does() -> None:
    with OpenAIServer() as server:
        sized_by_prompt(server, tokens=300, rate=0)
        adapter = OpenAIAdapter(Endpoint(base_url=server.url + "/v1", api_key="key-test"))
        result = await adapter.complete(dataclasses.replace(_ask("gpt-4o", text="Title this"), max_tokens=5))
    assert result.text == "token0 token1 token2 token3 token4 "
    assert result.finish is FinishReason.LENGTH
