"""The OpenAI adapter through the real SDK against the fake OpenAI server (no mocks)."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from providers.adapters.openai import OpenAIAdapter, retry_after_seconds
from providers.contract import (
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
from providers.testing.base import Call, Count, End, Fail, RecordedRequest, Say, ScriptEvent, Think, reply, sse
from providers.testing.openai_server import OpenAIServer
from providers.tests.events import deltas_joined

KEY = "sk-test-0123456789abcdef"
WEATHER = ToolSpec(
    name="get_weather",
    description="The weather in a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


@pytest.fixture(scope="module")
def running_server() -> Iterator[OpenAIServer]:
    # One server for the module (stopping one waits out its poll interval); each test starts it
    # with an empty script and no recorded requests.
    with OpenAIServer() as running:
        yield running


@pytest.fixture
def server(running_server: OpenAIServer) -> OpenAIServer:
    running_server.behaviours.clear()
    running_server.requests.clear()
    return running_server


def adapter_for(server: OpenAIServer, timeouts: Timeouts | None = None) -> OpenAIAdapter:
    endpoint = Endpoint(
        base_url=server.url + "/v1", api_key=KEY, timeouts=timeouts or Timeouts(), provider="openai-test"
    )
    return OpenAIAdapter(endpoint)


@pytest.fixture
def adapter(server: OpenAIServer) -> OpenAIAdapter:
    return adapter_for(server)


def ask(
    text: str = "Hi",
    *,
    system: str = "",
    tools: tuple[ToolSpec, ...] = (),
    temperature: float | None = None,
    max_tokens: int | None = None,
) -> ChatRequest:
    message = ChatMessage.text("user", text)
    return ChatRequest(
        model="gpt-4o", messages=(message,), system=system, tools=tools, temperature=temperature, max_tokens=max_tokens
    )


async def events_of(adapter: OpenAIAdapter, request: ChatRequest) -> list[Event]:
    return [event async for event in adapter.stream(request)]


async def error_of(adapter: OpenAIAdapter, request: ChatRequest, seen: list[Event] | None = None) -> ProviderError:
    """The ProviderError the stream raises; the events before it go to `seen`."""
    seen = [] if seen is None else seen
    with pytest.raises(ProviderError) as raised:
        async for event in adapter.stream(request):
            seen.append(event)
    return raised.value


# --- Streams ---------------------------------------------------------------------------------
async def test_a_text_stream_yields_text_then_usage_then_finish(server: OpenAIServer, adapter: OpenAIAdapter) -> None:
    server.script(reply(Say("Hello"), Say(", world."), Count(12, 4)))
    events = await events_of(adapter, ask("Hi", system="Be brief.", temperature=0.2, max_tokens=50, tools=(WEATHER,)))
    assert deltas_joined(events) == [
        TextDelta("Hello, world."),
        Usage(input_tokens=12, output_tokens=4, reasoning_tokens=0),
        Finish(FinishReason.STOP),
    ]


async def test_the_request_carries_model_messages_system_tools_and_usage_option(
    server: OpenAIServer, adapter: OpenAIAdapter
) -> None:
    await events_of(adapter, ask("Hi", system="Be brief.", temperature=0.2, max_tokens=50, tools=(WEATHER,)))
    [request] = server.requests
    assert request.method == "POST"
    assert request.path == "/v1/chat/completions"
    headers = {name.lower(): value for name, value in request.headers.items()}
    assert headers["authorization"] == f"Bearer {KEY}"
    body = request.body
    assert body["model"] == "gpt-4o"
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["temperature"] == 0.2
    assert body["max_tokens"] == 50
    assert body["tools"] == [
        {
            "type": "function",
            "function": {"name": "get_weather", "description": WEATHER.description, "parameters": WEATHER.parameters},
        }
    ]


async def test_the_messages_skip_the_sdks_request_transform(
    server: OpenAIServer, adapter: OpenAIAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openai.resources.chat.completions import completions

    transformed: list[object] = []
    transform = completions.async_maybe_transform

    async def recording(data: object, expected_type: object) -> object:
        transformed.append(data)
        return await transform(data, expected_type)

    monkeypatch.setattr(completions, "async_maybe_transform", recording)
    await events_of(adapter, ask("Hi", system="Be brief."))
    own_client = dataclasses.replace(adapter.endpoint, http_client=httpx2.AsyncClient())
    await events_of(OpenAIAdapter(own_client), ask("Hi", system="Be brief."))
    # Prebuilt (a platform endpoint): no transform at all; the SDK's call (a route's own
    # client): a transform of no messages.
    assert [body["messages"] for body in transformed] == [[]]  # type: ignore[index]
    assert server.requests[0].body["messages"][1] == {"role": "user", "content": "Hi"}
    assert server.requests[1].body == server.requests[0].body


async def test_a_prebuilt_request_carries_what_the_sdk_s_own_call_sends(
    server: OpenAIServer, adapter: OpenAIAdapter
) -> None:
    await events_of(adapter, ask("Hi", system="Be brief.", temperature=0.2))
    own_client = dataclasses.replace(adapter.endpoint, http_client=httpx2.AsyncClient())
    await events_of(OpenAIAdapter(own_client), ask("Hi", system="Be brief.", temperature=0.2))
    prebuilt, sdk = ({name.lower(): value for name, value in request.headers.items()} for request in server.requests)
    assert prebuilt["authorization"] == sdk["authorization"] == f"Bearer {KEY}"
    same = {
        "user-agent",
        "content-type",
        "x-stainless-lang",
        "x-stainless-package-version",
        "x-stainless-retry-count",
        "x-stainless-read-timeout",
    }
    assert {name: prebuilt.get(name) for name in same} == {name: sdk.get(name) for name in same}
    assert server.requests[0].path == server.requests[1].path == "/v1/chat/completions"
    assert server.requests[0].body == server.requests[1].body


async def test_unset_options_are_left_out_of_the_request(server: OpenAIServer, adapter: OpenAIAdapter) -> None:
    await events_of(adapter, ask())
    body = server.requests[0].body
    assert not {"temperature", "max_tokens", "tools"} & body.keys()
    assert body["messages"] == [{"role": "user", "content": "Hi"}]


async def test_reasoning_content_becomes_reasoning_deltas_before_the_text(
    server: OpenAIServer, adapter: OpenAIAdapter
) -> None:
    server.script(reply(Think("Two and two"), Think(" make four."), Say("4"), Count(5, 30, reasoning=20)))
    events = await events_of(adapter, ask("2+2?"))
    assert deltas_joined(events) == [
        ReasoningDelta("Two and two make four."),
        TextDelta("4"),
        Usage(input_tokens=5, output_tokens=30, reasoning_tokens=20),
        Finish(FinishReason.STOP),
    ]


async def test_a_reasoning_field_as_openrouter_and_ollama_write_it_is_read_too() -> None:
    class ReasoningFieldServer(OpenAIServer):
        reasoning_field = "reasoning"

    with ReasoningFieldServer() as server:
        server.script(reply(Think("hmm"), Say("ok")))
        result = await adapter_for(server).complete(ask())
    assert (result.reasoning, result.text) == ("hmm", "ok")


async def test_inline_think_tags_become_reasoning_even_split_across_chunks(
    server: OpenAIServer, adapter: OpenAIAdapter
) -> None:
    server.script(reply(Say("<th"), Say("ink>Let me check.</th"), Say("ink>\n\nIt is 4.")))
    events = await events_of(adapter, ask("2+2?"))
    assert [event for event in events if isinstance(event, ReasoningDelta | TextDelta)] == [
        ReasoningDelta("Let me check."),
        TextDelta("It is 4."),
    ]


async def test_tool_calls_stream_in_pieces_and_complete_assembles_the_arguments(
    server: OpenAIServer, adapter: OpenAIAdapter
) -> None:
    arguments = json.dumps({"city": "Paris", "unit": "celsius"})
    server.script(
        reply(
            Say("Checking."),
            Call("call_1", "get_weather", arguments, chunks=3),
            Call("call_2", "get_weather", '{"city": "Oslo"}', chunks=2),
            Count(20, 15),
            End("tool_calls"),
        )
    )
    events = await events_of(adapter, ask("Weather?", tools=(WEATHER,)))
    assert events[0] == TextDelta("Checking.")
    assert events[1] == ToolCallStart(index=0, id="call_1", name="get_weather")
    first_pieces = [event.arguments for event in events if isinstance(event, ToolCallDelta) and event.index == 0]
    assert len(first_pieces) == 3
    assert "".join(first_pieces) == arguments
    assert ToolCallStart(index=1, id="call_2", name="get_weather") in events
    assert events[-4:] == [ToolCallEnd(0), ToolCallEnd(1), Usage(20, 15, 0), Finish(FinishReason.TOOL_CALLS)]

    server.script(
        reply(Call("call_1", "get_weather", arguments, chunks=3), Call("call_2", "get_weather", '{"city": "Oslo"}'))
    )
    result = await adapter.complete(ask("Weather?", tools=(WEATHER,)))
    assert result.tool_calls == [
        ToolCall(id="call_1", name="get_weather", arguments=arguments),
        ToolCall(id="call_2", name="get_weather", arguments='{"city": "Oslo"}'),
    ]


class WholeCallServer(OpenAIServer):
    """As some compatible servers write calls: whole, without ids, all at index 0, ending with stop."""

    def stream_chunks(self, events: tuple[ScriptEvent, ...], request: RecordedRequest) -> list[bytes]:
        chunks = []
        for event in events:
            if isinstance(event, Call):
                function = {"name": event.name, "arguments": event.arguments}
                delta = {"role": "assistant", "tool_calls": [{"index": 0, "type": "function", "function": function}]}
                chunks.append(sse(_chunk({"index": 0, "delta": delta, "finish_reason": None})))
        chunks.append(sse(_chunk({"index": 0, "delta": {}, "finish_reason": "stop"})))
        return [*chunks, b"data: [DONE]\n\n"]


def _chunk(choice: dict[str, Any]) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m", "choices": [choice]}


async def test_whole_calls_without_ids_at_one_index_become_separate_calls() -> None:
    with WholeCallServer() as server:
        server.script(reply(Call("", "get_weather", '{"city": "Oslo"}'), Call("", "get_weather", '{"city": "Rome"}')))
        events = await events_of(adapter_for(server), ask("Weather?", tools=(WEATHER,)))
    starts = [event for event in events if isinstance(event, ToolCallStart)]
    assert [start.index for start in starts] == [0, 1]
    assert all(start.id.startswith("call_") for start in starts)
    assert len({start.id for start in starts}) == 2
    assert [event for event in events if isinstance(event, ToolCallDelta)] == [
        ToolCallDelta(0, '{"city": "Oslo"}'),
        ToolCallDelta(1, '{"city": "Rome"}'),
    ]
    assert events[-3:] == [ToolCallEnd(0), ToolCallEnd(1), Finish(FinishReason.TOOL_CALLS)]


async def test_a_tool_turn_is_sent_back_with_the_assistant_calls_and_the_call_id(
    server: OpenAIServer, adapter: OpenAIAdapter
) -> None:
    call = ToolCall(id="call_9", name="get_weather", arguments='{"city": "Rome"}')
    request = ChatRequest(
        model="gpt-4o",
        messages=(
            ChatMessage.text("user", "Weather in Rome?"),
            ChatMessage(role="assistant", tool_calls=(call,)),
            ChatMessage(role="tool", parts=(TextPart("Sunny, 24 °C"),), tool_call_id="call_9"),
        ),
        tools=(WEATHER,),
    )
    await events_of(adapter, request)
    assert server.requests[0].body["messages"][1:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_9",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_9", "content": "Sunny, 24 °C"},
    ]


async def test_image_parts_are_sent_as_data_urls(server: OpenAIServer, adapter: OpenAIAdapter) -> None:
    data = base64.b64encode(b"\x89PNG fake").decode()
    message = ChatMessage(role="user", parts=(TextPart("What is this?"), ImagePart("image/png", data)))
    await events_of(adapter, ChatRequest(model="gpt-4o", messages=(message,)))
    assert server.requests[0].body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}},
            ],
        }
    ]


async def test_length_and_content_filter_finishes_are_mapped(server: OpenAIServer, adapter: OpenAIAdapter) -> None:
    server.script(reply(Say("cut"), End("length")), reply(End("content_filter")), reply(End("something_new")))
    assert (await adapter.complete(ask())).finish == FinishReason.LENGTH
    assert (await adapter.complete(ask())).finish == FinishReason.CONTENT_FILTER
    assert (await adapter.complete(ask())).finish == FinishReason.OTHER


async def test_a_given_http_client_is_used_and_left_open(server: OpenAIServer) -> None:
    seen: list[str] = []

    async def note(request: httpx2.Request) -> None:
        seen.append(request.url.path)

    async with httpx2.AsyncClient(event_hooks={"request": [note]}) as client:
        endpoint = Endpoint(base_url=server.url + "/v1", api_key=KEY, http_client=client)
        result = await OpenAIAdapter(endpoint).complete(ask())
        assert not client.is_closed
    assert result.text == "Hello from the fake server."
    assert seen == ["/v1/chat/completions"]


# --- Errors ----------------------------------------------------------------------------------
async def test_a_rejected_key_is_authentication_and_the_message_keeps_the_key_out(
    server: OpenAIServer, adapter: OpenAIAdapter
) -> None:
    server.script(Fail(401, f"Incorrect API key provided: {KEY}."))
    error = await error_of(adapter, ask())
    assert error.code == ErrorCode.AUTHENTICATION
    assert not error.retryable
    assert error.provider == "openai-test"
    assert KEY not in error.message
    assert KEY not in str(error)


async def test_a_rate_limit_is_retryable_and_carries_retry_after(server: OpenAIServer, adapter: OpenAIAdapter) -> None:
    server.script(Fail(429, "Rate limit reached.", retry_after=2.5))
    error = await error_of(adapter, ask())
    assert error.code == ErrorCode.RATE_LIMITED
    assert error.retryable
    assert error.retry_after == 2.5


async def test_a_server_error_is_provider_unavailable_and_retryable(
    server: OpenAIServer, adapter: OpenAIAdapter
) -> None:
    server.script(Fail(500, "The server had an error."))
    error = await error_of(adapter, ask())
    assert error.code == ErrorCode.PROVIDER_UNAVAILABLE
    assert error.retryable
    assert len(server.requests) == 1  # the SDK does not retry: that is routing's job


@pytest.mark.parametrize(
    ("status", "message", "code"),
    [
        (404, "The model `gpt-9` does not exist.", ErrorCode.MODEL_NOT_FOUND),
        (403, "Not allowed.", ErrorCode.PERMISSION),
        (400, "This model's maximum context length is 128000 tokens.", ErrorCode.CONTEXT_TOO_LONG),
        (400, "Blocked by the content filter.", ErrorCode.CONTENT_FILTERED),
        (400, "Invalid value for 'temperature'.", ErrorCode.BAD_REQUEST),
        (422, "Unprocessable.", ErrorCode.BAD_REQUEST),
        (503, "Overloaded.", ErrorCode.PROVIDER_UNAVAILABLE),
    ],
)
async def test_error_statuses_map_to_contract_codes(
    server: OpenAIServer, adapter: OpenAIAdapter, status: int, message: str, code: ErrorCode
) -> None:
    server.script(Fail(status, message))
    error = await error_of(adapter, ask())
    assert error.code == code
    assert error.message != message


async def test_a_connection_dropped_mid_stream_fails_after_the_partial_text(
    server: OpenAIServer, adapter: OpenAIAdapter
) -> None:
    server.script(reply(Say("Hel"), Say("lo"), Say(" world"), Count(3, 3), drop_after=2))
    seen: list[Event] = []
    error = await error_of(adapter, ask(), seen)
    assert deltas_joined(seen) == [TextDelta("Hello")]
    assert error.code == ErrorCode.PROVIDER_DISCONNECTED
    assert error.retryable


async def test_a_malformed_chunk_is_provider_unavailable(server: OpenAIServer, adapter: OpenAIAdapter) -> None:
    server.script(reply(Say("Hel"), Say("lo"), malformed_at=1))
    seen: list[Event] = []
    error = await error_of(adapter, ask(), seen)
    assert seen == [TextDelta("Hel")]
    assert error.code == ErrorCode.PROVIDER_UNAVAILABLE


# The other limit (and with it the SDK's read timeout) is ten minutes and the fake stalls for
# two: only the limit under test can end the stream before the test's own timeout, which is
# there to stop waiting, not to time anything.
@pytest.mark.timeout(60)
async def test_a_stream_that_stalls_times_out_after_the_idle_limit(server: OpenAIServer) -> None:
    adapter = adapter_for(server, Timeouts(connect=5, first_token=600, idle=0.5))
    server.script(reply(Say("Hel"), Say("lo"), stall_after=1))
    seen: list[Event] = []
    error = await error_of(adapter, ask(), seen)
    assert seen == [TextDelta("Hel")]
    assert error.code == ErrorCode.TIMEOUT
    assert error.retryable


@pytest.mark.timeout(60)
async def test_no_first_token_in_time_is_a_timeout(server: OpenAIServer) -> None:
    adapter = adapter_for(server, Timeouts(connect=5, first_token=0.5, idle=600))
    server.script(reply(Say("late"), stall_after=0))
    error = await error_of(adapter, ask())
    assert error.code == ErrorCode.TIMEOUT


async def test_an_unreachable_server_is_provider_unavailable() -> None:
    with OpenAIServer() as server:
        url = server.url
    adapter = OpenAIAdapter(Endpoint(base_url=url + "/v1", api_key=KEY, timeouts=Timeouts(connect=2)))
    error = await error_of(adapter, ask())
    assert error.code == ErrorCode.PROVIDER_UNAVAILABLE


# --- Models and helpers ----------------------------------------------------------------------
async def test_list_models_answers_the_server_model_ids(server: OpenAIServer, adapter: OpenAIAdapter) -> None:
    assert await adapter.list_models() == list(OpenAIServer.models)
    assert server.requests[0].path == "/v1/models"


async def test_list_models_maps_errors_too() -> None:
    with OpenAIServer() as server:
        url = server.url
    adapter = OpenAIAdapter(Endpoint(base_url=url + "/v1", api_key=KEY, timeouts=Timeouts(connect=2)))
    with pytest.raises(ProviderError) as raised:
        await adapter.list_models()
    assert raised.value.code == ErrorCode.PROVIDER_UNAVAILABLE


def test_retry_after_reads_milliseconds_seconds_and_dates() -> None:
    assert retry_after_seconds({"retry-after-ms": "1500"}) == 1.5
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


# --- Images (OpenAI Images, used by artifacts' image documents) --------------------------------
async def test_generate_image_answers_the_png_and_its_usage(server: OpenAIServer, adapter: OpenAIAdapter) -> None:
    from providers.testing.openai_server import FAKE_PNG

    image, usage = await adapter.generate_image("A red fox", model="gpt-image-1")
    assert image == FAKE_PNG
    assert usage == Usage(input_tokens=12, output_tokens=272)
    request = server.requests[-1]
    assert request.path == "/v1/images/generations"
    assert request.body == {"model": "gpt-image-1", "prompt": "A red fox", "n": 1, "size": "1024x1024"}


async def test_generate_image_asks_dall_e_for_base64(server: OpenAIServer, adapter: OpenAIAdapter) -> None:
    await adapter.generate_image("A red fox", model="dall-e-3")
    assert server.requests[-1].body["response_format"] == "b64_json"


async def test_generate_image_maps_errors(server: OpenAIServer, adapter: OpenAIAdapter) -> None:
    server.script(Fail(400, "Your request was rejected by the content filter"))
    with pytest.raises(ProviderError) as raised:
        await adapter.generate_image("Something", model="gpt-image-1")
    assert raised.value.code == ErrorCode.CONTENT_FILTERED
