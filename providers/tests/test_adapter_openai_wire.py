"""The OpenAI adapter's reading of the raw event stream, against the fake OpenAI server: how a
stream ends (cut off, [DONE] or a finish reason alone), errors sent inside a 200 stream, and the
wire's variants (CRLF, comments, data over several lines, keep-alives). The SSE rules themselves
are tested in test_sse.py; the common streams and HTTP errors in test_adapter_openai.py."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

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
    ReasoningDelta,
    TextDelta,
    Timeouts,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from providers.testing.base import Call, Count, End, Say, reply, sse
from providers.testing.openai_server import OpenAIServer
from providers.tests.events import deltas_joined

Rewrite = Callable[[list[bytes]], list[bytes]]


@pytest.fixture(scope="module")
def running_server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as running:
        yield running


@pytest.fixture
def server(running_server: OpenAIServer) -> Iterator[OpenAIServer]:
    running_server.behaviours.clear()
    running_server.requests.clear()
    yield running_server
    running_server.rewrite = None


@pytest.fixture
def adapter(server: OpenAIServer) -> OpenAIAdapter:
    return OpenAIAdapter(Endpoint(base_url=server.url + "/v1", api_key="sk-test", provider="openai-test"))


def ask() -> ChatRequest:
    return ChatRequest(model="gpt-4o", messages=(ChatMessage.text("user", "Hi"),))


async def events_of(adapter: OpenAIAdapter) -> list[Event]:
    return [event async for event in adapter.stream(ask())]


async def error_of(adapter: OpenAIAdapter, seen: list[Event]) -> ProviderError:
    with pytest.raises(ProviderError) as raised:
        async for event in adapter.stream(ask()):
            seen.append(event)
    return raised.value


def without(*needles: bytes) -> Rewrite:
    """Drop the chunks that contain any of `needles`."""
    return lambda chunks: [chunk for chunk in chunks if not any(needle in chunk for needle in needles)]


# --- How a stream ends ---------------------------------------------------------------------------
async def test_a_body_that_ends_cleanly_before_the_finish_is_a_cut_off_reply(
    server: OpenAIServer, adapter: OpenAIAdapter
) -> None:
    # The HTTP response completes, but the reply stops after two tokens: no finish, no [DONE].
    server.script(reply(Say("Hel"), Say("lo"), Say(" world"), Count(3, 3), cut_after=2))
    seen: list[Event] = []
    error = await error_of(adapter, seen)
    assert deltas_joined(seen) == [TextDelta("Hello")]
    assert error.code == ErrorCode.PROVIDER_DISCONNECTED
    assert error.retryable
    assert error.provider == "openai-test"


async def test_an_empty_200_body_is_a_cut_off_reply(server: OpenAIServer, adapter: OpenAIAdapter) -> None:
    server.script(reply(Say("never sent"), cut_after=0))
    seen: list[Event] = []
    error = await error_of(adapter, seen)
    assert (seen, error.code) == ([], ErrorCode.PROVIDER_DISCONNECTED)


async def test_a_cut_off_tool_call_is_never_ended(server: OpenAIServer, adapter: OpenAIAdapter) -> None:
    arguments = '{"city": "Oslo"}'
    server.script(reply(Call("call_1", "get_weather", arguments), End("tool_calls"), cut_after=1))
    seen: list[Event] = []
    error = await error_of(adapter, seen)
    assert seen == [
        ToolCallStart(0, "call_1", "get_weather"),
        ToolCallDelta(0, arguments[:8]),
        ToolCallDelta(0, arguments[8:]),
    ]
    assert error.code == ErrorCode.PROVIDER_DISCONNECTED


async def test_a_finish_reason_without_done_is_a_whole_reply(server: OpenAIServer, adapter: OpenAIAdapter) -> None:
    server.rewrite = without(b"[DONE]")
    server.script(reply(Say("Hi"), Count(3, 1)))
    assert await events_of(adapter) == [TextDelta("Hi"), Usage(3, 1, 0), Finish(FinishReason.STOP)]


async def test_done_without_a_finish_reason_is_a_whole_reply(server: OpenAIServer, adapter: OpenAIAdapter) -> None:
    server.rewrite = without(b'"finish_reason": "stop"')
    server.script(reply(Say("Hi"), Count(3, 1)))
    assert await events_of(adapter) == [TextDelta("Hi"), Usage(3, 1, 0), Finish(FinishReason.OTHER)]


async def test_nothing_after_done_is_read_and_a_body_left_open_is_not_waited_for(
    server: OpenAIServer,
) -> None:
    # After [DONE] the server writes one more chunk and then holds the body open: the reply is
    # whole at [DONE], and the idle timeout must not turn it into an error.
    server.rewrite = lambda chunks: [*chunks, sse(_text_chunk("after done")), b"held"]
    server.script(reply(Say("Hi"), stall_after=5))  # Say, finish, usage, [DONE], "after done": then stall
    endpoint = Endpoint(base_url=server.url + "/v1", api_key="sk-test", timeouts=Timeouts(first_token=5, idle=2))
    events = [event async for event in OpenAIAdapter(endpoint).stream(ask())]
    assert events == [TextDelta("Hi"), Usage(0, 0, 0), Finish(FinishReason.STOP)]


# --- Errors inside a 200 stream ------------------------------------------------------------------
def _text_chunk(text: str) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text}}]}


def error_after_first_token(error: object) -> Rewrite:
    return lambda chunks: [chunks[0], sse({"error": error})]


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (
            {"message": "This model's maximum context length is 128000 tokens.", "type": "invalid_request_error"},
            ErrorCode.CONTEXT_TOO_LONG,
        ),
        ({"message": "Too long.", "code": "context_length_exceeded"}, ErrorCode.CONTEXT_TOO_LONG),
        ({"message": "Flagged.", "code": "content_filter"}, ErrorCode.CONTENT_FILTERED),
        ({"message": "Slow down.", "code": "rate_limit_exceeded"}, ErrorCode.RATE_LIMITED),
        ({"message": "The server had an error.", "type": "server_error", "code": None}, ErrorCode.PROVIDER_UNAVAILABLE),
        ({"code": 500}, ErrorCode.PROVIDER_UNAVAILABLE),
        ("overloaded", ErrorCode.PROVIDER_UNAVAILABLE),
    ],
)
async def test_an_error_object_in_the_stream_is_classified_after_the_partial_text(
    server: OpenAIServer, adapter: OpenAIAdapter, error: object, code: ErrorCode
) -> None:
    server.rewrite = error_after_first_token(error)
    server.script(reply(Say("Hel"), Say("lo")))
    seen: list[Event] = []
    raised = await error_of(adapter, seen)
    assert seen == [TextDelta("Hel")]
    assert raised.code == code
    assert "maximum context" not in raised.message  # the vendor's words are never passed on


@pytest.mark.parametrize("data", [b"[1, 2]", b'"text"', b'{"choices": [', b"\xff\xfe"])
async def test_data_that_is_no_chunk_object_is_provider_unavailable(
    server: OpenAIServer, adapter: OpenAIAdapter, data: bytes
) -> None:
    server.rewrite = lambda chunks: [chunks[0], b"data: " + data + b"\n\n", *chunks[1:]]
    server.script(reply(Say("Hel"), Say("lo")))
    seen: list[Event] = []
    error = await error_of(adapter, seen)
    assert (seen, error.code) == ([TextDelta("Hel")], ErrorCode.PROVIDER_UNAVAILABLE)


# --- The wire's variants -------------------------------------------------------------------------
def crlf(chunks: list[bytes]) -> list[bytes]:
    return [chunk.replace(b"\n", b"\r\n") for chunk in chunks]


def with_comments(chunks: list[bytes]) -> list[bytes]:
    return [b": OPENROUTER PROCESSING\n\n" + chunk.replace(b"\n\n", b"\n: a comment inside\n\n") for chunk in chunks]


def with_empty_events(chunks: list[bytes]) -> list[bytes]:
    """Keep-alives as some proxies send them: events with empty data."""
    return [b"data:\n\n" + chunk for chunk in chunks]


def data_over_lines(chunks: list[bytes]) -> list[bytes]:
    """Each JSON payload over several `data:` lines (joined with LF, which JSON reads as space)."""
    return [chunk.replace(b", ", b",\ndata: ") if chunk.startswith(b"data: {") else chunk for chunk in chunks]


def one_read(chunks: list[bytes]) -> list[bytes]:
    return [b"".join(chunks)]


def byte_by_byte(chunks: list[bytes]) -> list[bytes]:
    whole = b"".join(chunks)
    return [whole[index : index + 1] for index in range(len(whole))]


@pytest.mark.parametrize("rewrite", [crlf, with_comments, with_empty_events, data_over_lines, one_read, byte_by_byte])
async def test_every_wire_variant_reads_as_the_same_reply(
    server: OpenAIServer, adapter: OpenAIAdapter, rewrite: Rewrite
) -> None:
    server.rewrite = rewrite
    arguments = json.dumps({"city": "Paris"})
    server.script(
        reply(Say("<think>hmm</think>"), Say("Checking."), Call("call_1", "get_weather", arguments), Count(9, 7))
    )
    half = (len(arguments) + 1) // 2  # the fake sends the arguments in two pieces
    assert await events_of(adapter) == [
        ReasoningDelta("hmm"),
        TextDelta("Checking."),
        ToolCallStart(0, "call_1", "get_weather"),
        ToolCallDelta(0, arguments[:half]),
        ToolCallDelta(0, arguments[half:]),
        ToolCallEnd(0),
        Usage(9, 7, 0),
        Finish(FinishReason.TOOL_CALLS),
    ]
