"""The Anthropic adapter's reading of the raw event stream, against the fake Anthropic server: a
body that ends before `message_stop`, error events inside a 200 stream, and the wire's variants
(CRLF, comments, pings, unnamed events, any split into reads). The SSE rules themselves are tested
in test_sse.py; the common streams and HTTP errors in test_adapter_anthropic.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from providers.adapters.anthropic import AnthropicAdapter
from providers.contract import (
    ChatMessage,
    ChatRequest,
    Endpoint,
    ErrorCode,
    Event,
    Finish,
    FinishReason,
    ProviderError,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from providers.testing.anthropic_server import AnthropicServer
from providers.testing.base import Call, Count, Say, Think, reply, sse
from providers.tests.events import deltas_joined

Rewrite = Callable[[list[bytes]], list[bytes]]
HELLO = ChatRequest(model="claude-sonnet-5-5", messages=(ChatMessage.text("user", "Hi"),))


@pytest.fixture(scope="module")
def running_server() -> Iterator[AnthropicServer]:
    with AnthropicServer() as running:
        yield running


@pytest.fixture
def server(running_server: AnthropicServer) -> Iterator[AnthropicServer]:
    running_server.behaviours.clear()
    running_server.requests.clear()
    yield running_server
    running_server.rewrite = None


@pytest.fixture
def adapter(server: AnthropicServer) -> AnthropicAdapter:
    return AnthropicAdapter(Endpoint(base_url=server.url, api_key="sk-ant-test", provider="anthropic"))


async def error_of(adapter: AnthropicAdapter, seen: list[Event]) -> ProviderError:
    with pytest.raises(ProviderError) as raised:
        async for event in adapter.stream(HELLO):
            seen.append(event)
    return raised.value


async def test_a_body_that_ends_cleanly_before_message_stop_is_a_cut_off_reply(
    server: AnthropicServer, adapter: AnthropicAdapter
) -> None:
    server.script(reply(Say("one"), Say(" two"), Say(" three"), Count(3, 3), cut_after=2))
    seen: list[Event] = []
    error = await error_of(adapter, seen)
    assert (deltas_joined(seen), error.code) == ([TextDelta("one two")], ErrorCode.PROVIDER_DISCONNECTED)


def error_event_after_first_chunk(data: bytes) -> Rewrite:
    return lambda chunks: [chunks[0], b"event: error\ndata: " + data + b"\n\n"]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (
            b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}',
            ErrorCode.PROVIDER_UNAVAILABLE,
        ),
        (b'{"type": "error", "error": {"type": "rate_limit_error", "message": "Slow"}}', ErrorCode.RATE_LIMITED),
        (b'{"type": "error", "error": {"type": "invalid_request_error", "message": "No"}}', ErrorCode.BAD_REQUEST),
        (b'{"type": "error", "error": {"type": "timeout_error", "message": "Late"}}', ErrorCode.TIMEOUT),
        (b'{"type": "error"}', ErrorCode.PROVIDER_UNAVAILABLE),
        (b"not json", ErrorCode.PROVIDER_UNAVAILABLE),
        (b"", ErrorCode.PROVIDER_UNAVAILABLE),
    ],
)
async def test_an_error_event_raises_by_its_type_after_the_events_before_it(
    server: AnthropicServer, adapter: AnthropicAdapter, data: bytes, code: ErrorCode
) -> None:
    server.rewrite = error_event_after_first_chunk(data)
    server.script(reply(Say("Half a"), Say(" sentence")))
    seen: list[Event] = []
    error = await error_of(adapter, seen)
    assert (seen, error.code) == ([TextDelta("Half a")], code)


def crlf(chunks: list[bytes]) -> list[bytes]:
    return [chunk.replace(b"\n", b"\r\n") for chunk in chunks]


def with_pings_comments_and_unnamed_events(chunks: list[bytes]) -> list[bytes]:
    extra = sse({"type": "ping"}, event="ping") + b": keep-alive\n\n" + sse({"type": "content_block_delta"})
    return [extra + chunk for chunk in chunks]


def one_read(chunks: list[bytes]) -> list[bytes]:
    return [b"".join(chunks)]


def byte_by_byte(chunks: list[bytes]) -> list[bytes]:
    whole = b"".join(chunks)
    return [whole[index : index + 1] for index in range(len(whole))]


@pytest.mark.parametrize("rewrite", [crlf, with_pings_comments_and_unnamed_events, one_read, byte_by_byte])
async def test_every_wire_variant_reads_as_the_same_reply(
    server: AnthropicServer, adapter: AnthropicAdapter, rewrite: Rewrite
) -> None:
    server.rewrite = rewrite
    call = Call("toolu_1", "get_weather", '{"city": "Paris"}', chunks=2)
    server.script(reply(Think("hmm"), Say("Checking."), call, Count(9, 7, reasoning=2)))
    events = [event async for event in adapter.stream(HELLO)]
    assert events == [
        ReasoningDelta("hmm"),
        TextDelta("Checking."),
        ToolCallStart(0, "toolu_1", "get_weather"),
        ToolCallDelta(0, '{"city": '),
        ToolCallDelta(0, '"Paris"}'),
        ToolCallEnd(0),
        Usage(9, 7, 2),
        Finish(FinishReason.STOP),
    ]


async def test_cache_reads_and_writes_count_as_input(server: AnthropicServer, adapter: AnthropicAdapter) -> None:
    cached = b'"input_tokens": 3, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 1000'
    server.rewrite = lambda chunks: [chunk.replace(b'"input_tokens": 3', cached) for chunk in chunks]
    server.script(reply(Say("Hi"), Count(3, 1)))
    events = [event async for event in adapter.stream(HELLO)]
    assert events[-2] == Usage(input_tokens=1103, output_tokens=1)
