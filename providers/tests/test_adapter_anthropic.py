"""The Anthropic adapter through the real SDK against the fake Anthropic server (no mocks)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx2
import pytest

from providers.adapters import adapter_for
from providers.adapters.anthropic import AnthropicAdapter
from providers.contract import (
    USER_MESSAGES,
    ChatMessage,
    ChatRequest,
    Endpoint,
    ErrorCode,
    Event,
    Finish,
    FinishReason,
    ImagePart,
    ProviderError,
    ReasoningDelta,
    TextDelta,
    TextPart,
    Timeouts,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolSpec,
    Usage,
)
from providers.testing.anthropic_server import AnthropicServer, StreamError
from providers.testing.base import Call, Count, End, Fail, Say, Think, reply
from providers.tests.events import deltas_joined

KEY = "sk-ant-test-0123456789"
HELLO = ChatRequest(model="claude-sonnet-5-5", messages=(ChatMessage.text("user", "Hi"),))
WEATHER = ToolSpec(
    name="get_weather",
    description="The weather in a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


@pytest.fixture(scope="module")
def running_server() -> Iterator[AnthropicServer]:
    # One server for the module: stopping one takes half a second (the HTTP server's poll interval).
    fake = AnthropicServer()
    with fake:
        yield fake


@pytest.fixture
def server(running_server: AnthropicServer) -> AnthropicServer:
    """The module's server with no script left and no requests recorded."""
    running_server.behaviours.clear()
    running_server.requests.clear()
    return running_server


def adapter(server: AnthropicServer, timeouts: Timeouts | None = None, **endpoint: object) -> AnthropicAdapter:
    options = {"base_url": server.url, "api_key": KEY, "provider": "anthropic", **endpoint}
    return AnthropicAdapter(Endpoint(timeouts=timeouts or Timeouts(), **options))  # type: ignore[arg-type]


async def drain(adapter: AnthropicAdapter, request: ChatRequest = HELLO) -> tuple[list[Event], ProviderError | None]:
    """The events yielded, and the error that ended the stream (if one did)."""
    events: list[Event] = []
    try:
        async for event in adapter.stream(request):
            events.append(event)
    except ProviderError as error:
        return events, error
    return events, None


async def failure(server: AnthropicServer, fail: Fail) -> ProviderError:
    server.script(fail)
    events, error = await drain(adapter(server))
    assert events == []
    assert error is not None
    return error


def headers_of(server: AnthropicServer) -> dict[str, str]:
    return {name.lower(): value for name, value in server.requests[-1].headers.items()}


# --- Streams -------------------------------------------------------------------------------
async def test_a_text_reply_streams_in_order_then_usage_then_finish(server: AnthropicServer) -> None:
    server.script(reply(Say("Hello"), Say(" world"), Count(12, 3), End()))

    events, error = await drain(adapter(server))

    assert error is None
    assert deltas_joined(events) == [TextDelta("Hello world"), Usage(12, 3), Finish(FinishReason.STOP)]


async def test_the_request_carries_system_messages_max_tokens_tools_and_the_key(server: AnthropicServer) -> None:
    request = ChatRequest(
        model="claude-sonnet-5-5",
        messages=(ChatMessage.text("user", "Weather in Paris?"),),
        system="You are terse.",
        tools=(WEATHER,),
    )

    await adapter(server).complete(request)

    recorded = server.requests[-1]
    assert (recorded.method, recorded.path) == ("POST", "/v1/messages")
    assert recorded.body["model"] == "claude-sonnet-5-5"
    assert recorded.body["system"] == "You are terse."
    assert recorded.body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]}]
    assert recorded.body["max_tokens"] == 4096
    assert recorded.body["stream"] is True
    assert recorded.body["tools"] == [
        {"name": "get_weather", "description": "The weather in a city.", "input_schema": WEATHER.parameters}
    ]
    assert headers_of(server)["x-api-key"] == KEY
    assert headers_of(server)["authorization"] == f"Bearer {KEY}"


async def test_the_requests_max_tokens_is_sent_and_its_temperature_is_not(server: AnthropicServer) -> None:
    # API version 2026-10-21 answers 400 to any temperature, even 1.0.
    await adapter(server).complete(ChatRequest(model="m", messages=HELLO.messages, max_tokens=256, temperature=0.2))

    body = server.requests[-1].body
    assert body["max_tokens"] == 256
    assert "temperature" not in body
    assert "system" not in body
    assert "tools" not in body


async def test_thinking_streams_as_reasoning_deltas_before_the_text(server: AnthropicServer) -> None:
    server.script(reply(Think("Six times"), Think(" seven."), Say("42"), Count(5, 9, reasoning=4)))

    events, error = await drain(adapter(server))

    assert error is None
    assert deltas_joined(events) == [
        ReasoningDelta("Six times seven."),
        TextDelta("42"),
        Usage(5, 9, reasoning_tokens=4),
        Finish(FinishReason.STOP),
    ]


async def test_a_tool_call_streams_in_pieces_and_complete_assembles_its_arguments(server: AnthropicServer) -> None:
    call = Call("toolu_01", "get_weather", '{"city": "Paris"}', chunks=3)
    script = reply(Say("Checking."), call, Count(20, 15), End("tool_calls"))
    server.script(script, script)

    events, error = await drain(adapter(server))
    result = await adapter(server).complete(HELLO)

    assert error is None
    assert events[0] == TextDelta("Checking.")
    assert events[1] == ToolCallStart(index=0, id="toolu_01", name="get_weather")
    pieces = [event for event in events if isinstance(event, ToolCallDelta)]
    assert len(pieces) == 3
    assert {piece.index for piece in pieces} == {0}
    assert events[-3:] == [ToolCallEnd(index=0), Usage(20, 15), Finish(FinishReason.TOOL_CALLS)]
    assert result.text == "Checking."
    assert result.tool_calls == [ToolCall(id="toolu_01", name="get_weather", arguments='{"city": "Paris"}')]
    assert result.finish is FinishReason.TOOL_CALLS


async def test_tool_calls_are_numbered_among_tool_calls_not_content_blocks(server: AnthropicServer) -> None:
    server.script(
        reply(Say("Both."), Call("toolu_a", "one", "{}"), Call("toolu_b", "two", '{"x": 1}'), End("tool_calls"))
    )

    events, _ = await drain(adapter(server))

    starts = [event for event in events if isinstance(event, ToolCallStart | ToolCallEnd)]
    assert starts == [
        ToolCallStart(0, "toolu_a", "one"),
        ToolCallEnd(0),
        ToolCallStart(1, "toolu_b", "two"),
        ToolCallEnd(1),
    ]


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("stop", FinishReason.STOP),
        ("length", FinishReason.LENGTH),
        ("tool_calls", FinishReason.TOOL_CALLS),
        ("content_filter", FinishReason.CONTENT_FILTER),
    ],
)
async def test_each_stop_reason_maps_to_its_finish(server: AnthropicServer, reason: str, finish: FinishReason) -> None:
    server.script(reply(Say("…"), End(reason)))

    result = await adapter(server).complete(HELLO)

    assert result.finish is finish


async def test_a_tool_result_conversation_round_trips_into_tool_result_blocks(server: AnthropicServer) -> None:
    messages = (
        ChatMessage.text("user", "Weather in Paris and Rome?"),
        ChatMessage(
            role="assistant",
            parts=(TextPart("Looking."),),
            tool_calls=(
                ToolCall("toolu_1", "get_weather", '{"city": "Paris"}'),
                ToolCall("toolu_2", "get_weather", '{"city": "Ro'),  # cut off: does not parse
            ),
        ),
        ChatMessage(role="tool", parts=(TextPart("Sunny, 24°C"),), tool_call_id="toolu_1"),
        ChatMessage(role="tool", parts=(TextPart("Rain, 18°C"),), tool_call_id="toolu_2"),
        ChatMessage.text("user", "Thanks!"),
    )

    await adapter(server).complete(ChatRequest(model="m", messages=messages, tools=(WEATHER,)))

    assert server.requests[-1].body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Rome?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Looking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "Sunny, 24°C"}]},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "Rain, 18°C"}]},
                {"type": "text", "text": "Thanks!"},
            ],
        },
    ]


async def test_image_parts_are_sent_as_base64_image_blocks(server: AnthropicServer) -> None:
    image = ImagePart(media_type="image/png", data_base64="iVBORw0KGgo=")
    message = ChatMessage(role="user", parts=(TextPart("What is this?"), image, TextPart("")))

    await adapter(server).complete(ChatRequest(model="m", messages=(message,)))

    assert server.requests[-1].body["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
    ]


# --- Errors --------------------------------------------------------------------------------
async def test_a_rejected_key_raises_authentication_without_the_key(server: AnthropicServer) -> None:
    error = await failure(server, Fail(401, f"invalid x-api-key {KEY}"))

    assert error.code is ErrorCode.AUTHENTICATION
    assert not error.retryable
    assert error.provider == "anthropic"
    assert KEY not in error.message
    assert KEY not in str(error)


async def test_rate_limiting_raises_rate_limited_with_retry_after(server: AnthropicServer) -> None:
    error = await failure(server, Fail(429, "slow down", retry_after=7))

    assert error.code is ErrorCode.RATE_LIMITED
    assert error.retryable
    assert error.retry_after == 7.0


@pytest.mark.parametrize(
    ("fail", "code"),
    [
        pytest.param(Fail(403, "not allowed"), ErrorCode.PERMISSION, id="403 is permission"),
        pytest.param(Fail(404, "model: claude-nope"), ErrorCode.MODEL_NOT_FOUND, id="404 is model not found"),
        pytest.param(Fail(400, "context too long"), ErrorCode.CONTEXT_TOO_LONG, id="prompt too long is context"),
        pytest.param(Fail(400, "roles must alternate"), ErrorCode.BAD_REQUEST, id="another 400 is bad request"),
        pytest.param(Fail(500, "Internal"), ErrorCode.PROVIDER_UNAVAILABLE, id="500 is unavailable"),
        pytest.param(Fail(529, "Overloaded"), ErrorCode.PROVIDER_UNAVAILABLE, id="529 is unavailable"),
    ],
)
async def test_each_http_error_raises_its_code_retryable_only_when_worth_retrying(
    server: AnthropicServer, fail: Fail, code: ErrorCode
) -> None:
    error = await failure(server, fail)

    assert error.code is code
    assert error.retryable is (code is ErrorCode.PROVIDER_UNAVAILABLE)
    assert error.message == USER_MESSAGES[code]


async def test_an_overloaded_error_event_mid_stream_raises_unavailable_after_the_text_so_far(
    server: AnthropicServer,
) -> None:
    server.script(reply(Say("Half a"), StreamError("overloaded_error", "Overloaded"), Say(" sentence")))

    events, error = await drain(adapter(server))

    assert events == [TextDelta("Half a")]
    assert error is not None
    assert error.code is ErrorCode.PROVIDER_UNAVAILABLE
    assert error.retryable


async def test_a_connection_dropped_mid_stream_raises_after_the_partial_events(server: AnthropicServer) -> None:
    server.script(reply(Say("one"), Say(" two"), Say(" three"), Count(3, 3), drop_after=2))

    events, error = await drain(adapter(server))

    assert deltas_joined(events) == [TextDelta("one two")]
    assert error is not None
    assert error.code is ErrorCode.PROVIDER_DISCONNECTED


async def test_a_stream_cut_before_message_stop_raises_disconnected(server: AnthropicServer) -> None:
    events_before_stop = (Say("All of it"), Count(3, 3), End())
    server.script(reply(*events_before_stop, drop_after=len(events_before_stop)))

    events, error = await drain(adapter(server))

    assert events == [TextDelta("All of it")]
    assert error is not None
    assert (error.code, error.retryable) == (ErrorCode.PROVIDER_DISCONNECTED, True)


async def test_a_malformed_chunk_raises_unavailable(server: AnthropicServer) -> None:
    server.script(reply(Say("fine"), Say(" then"), malformed_at=1))

    events, error = await drain(adapter(server))

    assert events == [TextDelta("fine")]
    assert error is not None
    assert error.code is ErrorCode.PROVIDER_UNAVAILABLE


# The other limit (and with it the SDK's read timeout) is ten minutes and the fake stalls for
# two: only the limit under test can end the stream before the test's own timeout, which is
# there to stop waiting, not to time anything.
@pytest.mark.timeout(60)
async def test_a_stalled_stream_raises_timeout_after_the_idle_limit(server: AnthropicServer) -> None:
    server.script(reply(Say("Still"), Say(" here?"), stall_after=1))

    events, error = await drain(adapter(server, Timeouts(first_token=600, idle=0.5)))

    assert events == [TextDelta("Still")]
    assert error is not None
    assert error.code is ErrorCode.TIMEOUT
    assert error.retryable


@pytest.mark.timeout(60)
async def test_a_silent_server_raises_timeout_before_the_first_token(server: AnthropicServer) -> None:
    server.script(reply(Say("Too late"), stall_after=0))

    events, error = await drain(adapter(server, Timeouts(first_token=0.5, idle=600)))

    assert events == []
    assert error is not None
    assert error.code is ErrorCode.TIMEOUT


async def test_an_unreachable_server_raises_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = Endpoint(base_url=f"http://127.0.0.1:{port}", api_key=KEY, timeouts=Timeouts(connect=2))

    _, error = await drain(AnthropicAdapter(endpoint))

    assert error is not None
    assert error.code is ErrorCode.PROVIDER_UNAVAILABLE


# --- Endpoint ------------------------------------------------------------------------------
async def test_list_models_answers_the_served_ids(server: AnthropicServer) -> None:
    models = await adapter(server).list_models()

    assert models == list(AnthropicServer.models)
    assert server.requests[-1].path.split("?")[0] == "/v1/models"
    assert headers_of(server)["x-api-key"] == KEY


async def test_a_given_http_client_is_used_and_left_open(server: AnthropicServer) -> None:
    sent: list[str] = []

    async def record(request: httpx2.Request) -> None:
        sent.append(request.url.path)

    async with httpx2.AsyncClient(event_hooks={"request": [record]}) as http_client:
        result = await adapter(server, http_client=http_client).complete(HELLO)

        assert not http_client.is_closed
    assert result.text == "Hello from the fake server."
    assert sent == ["/v1/messages"]


async def test_an_empty_key_never_falls_back_to_the_servers_environment_key(
    server: AnthropicServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-server-secret")
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "server-token-secret")

    await drain(adapter(server, api_key=""))

    headers = headers_of(server)
    assert "secret" not in json.dumps(headers)
    assert "x-api-key" not in headers
    assert "authorization" not in headers


def test_the_registry_builds_an_anthropic_adapter_for_the_anthropic_protocol() -> None:
    built = adapter_for("anthropic", Endpoint(api_key=KEY))

    assert isinstance(built, AnthropicAdapter)
    assert built.protocol == "anthropic"


async def test_a_prebuilt_request_carries_what_the_sdk_s_own_call_sends(server: AnthropicServer) -> None:
    server.script(reply(Say("One.")), reply(Say("Two.")))
    await drain(adapter(server))  # a platform endpoint: the SDK's request, prebuilt
    async with httpx2.AsyncClient() as own:
        await drain(adapter(server, http_client=own))  # a route's own client: the SDK's call
    prebuilt, sdk = ({name.lower(): value for name, value in request.headers.items()} for request in server.requests)
    assert prebuilt["x-api-key"] == sdk["x-api-key"] == KEY
    same = {
        "authorization",
        "anthropic-version",
        "user-agent",
        "content-type",
        "x-stainless-lang",
        "x-stainless-timeout",
    }
    assert {name: prebuilt.get(name) for name in same} == {name: sdk.get(name) for name in same}
    assert server.requests[0].path == server.requests[1].path
    assert server.requests[0].body == server.requests[1].body
    assert server.requests[0].body["stream"] is True
