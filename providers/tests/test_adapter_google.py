"""The Gemini adapter through the real google-genai SDK against the fake Gemini server (no mocks)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from google.genai import errors as genai_errors

from providers.adapters.google import GoogleAdapter, retry_after_seconds, thinks
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
from providers.testing.base import Call, Count, End, Fail, Reply, Say, Think, reply
from providers.testing.gemini_server import GeminiServer, PromptBlocked, StreamError

KEY = "AIzaSy-test-0123456789abcdef"
MODEL = "gemini-2.5-flash"
WEATHER = ToolSpec(
    name="get_weather",
    description="The weather in a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


@pytest.fixture
def server() -> Iterator[GeminiServer]:
    with GeminiServer() as running:
        yield running


def adapter_for(server: GeminiServer, timeouts: Timeouts | None = None, **endpoint: Any) -> GoogleAdapter:
    fields = {"base_url": server.url, "api_key": KEY, "timeouts": timeouts or Timeouts(), "provider": "google-test"}
    return GoogleAdapter(Endpoint(**{**fields, **endpoint}))


@pytest.fixture
def adapter(server: GeminiServer) -> GoogleAdapter:
    return adapter_for(server)


def ask(text: str = "Hi", *, model: str = MODEL, **options: Any) -> ChatRequest:
    return ChatRequest(model=model, messages=(ChatMessage.text("user", text),), **options)


async def events_of(adapter: GoogleAdapter, request: ChatRequest) -> list[Event]:
    return [event async for event in adapter.stream(request)]


async def partial_stream(adapter: GoogleAdapter) -> tuple[list[Event], ProviderError]:
    """The events a failing stream yielded before its error, and the error."""
    events: list[Event] = []
    with pytest.raises(ProviderError) as caught:
        async for event in adapter.stream(ask()):
            events.append(event)
    return events, caught.value


async def failure_of(adapter: GoogleAdapter, request: ChatRequest | None = None) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await adapter.complete(request or ask())
    return caught.value


# --- Streams -------------------------------------------------------------------------------
async def test_a_text_stream_yields_its_text_then_one_usage_then_stop(
    server: GeminiServer, adapter: GoogleAdapter
) -> None:
    server.script(reply(Say("Hello"), Say(" world"), Count(12, 3)))

    events = await events_of(adapter, ask("Hi", system="Be brief.", temperature=0.2, max_tokens=50))

    assert events == [TextDelta("Hello"), TextDelta(" world"), Usage(12, 3), Finish(FinishReason.STOP)]
    [request] = server.requests
    assert request.path == f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
    assert request.headers["x-goog-api-key"] == KEY
    assert request.headers["X-Server-Timeout"] == "600"  # the reply deadline, not the idle timeout
    assert request.body["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    assert request.body["contents"] == [{"role": "user", "parts": [{"text": "Hi"}]}]
    config = request.body["generationConfig"]
    assert (config["temperature"], config["maxOutputTokens"]) == (0.2, 50)


async def test_thoughts_arrive_as_reasoning_and_count_as_output(server: GeminiServer, adapter: GoogleAdapter) -> None:
    server.script(reply(Think("Weighing it."), Say("Yes."), Count(5, 2, reasoning=7)))

    events = await events_of(adapter, ask())

    assert events == [ReasoningDelta("Weighing it."), TextDelta("Yes."), Usage(5, 9, 7), Finish(FinishReason.STOP)]
    thinking = server.requests[0].body["generationConfig"]["thinkingConfig"]
    assert thinking.get("includeThoughts", thinking.get("include_thoughts")) is True


async def test_a_model_older_than_2_5_is_not_asked_for_thoughts(server: GeminiServer, adapter: GoogleAdapter) -> None:
    await adapter.complete(ask(model="gemini-2.0-flash"))

    assert "thinkingConfig" not in server.requests[0].body.get("generationConfig", {})


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gemini-2.5-pro", True),
        ("models/gemini-3-pro-preview", True),
        ("gemini-flash-latest", True),
        ("gemini-2.0-flash-thinking-exp", True),
        ("gemini-2.0-flash", False),
        ("gemini-1.5-pro", False),
        ("gemma-3-27b-it", False),
    ],
)
def test_only_models_that_think_are_asked_for_thoughts(model: str, expected: bool) -> None:
    assert thinks(model) is expected


async def test_function_calls_arrive_whole_as_start_one_delta_and_end(
    server: GeminiServer, adapter: GoogleAdapter
) -> None:
    server.script(reply(Call("call_1", "get_weather", '{"city": "Oslo"}'), Call("call_2", "get_weather", "{}")))

    events = await events_of(adapter, ask("Weather?", tools=(WEATHER,)))

    assert events == [
        ToolCallStart(index=0, id="call_1", name="get_weather"),
        ToolCallDelta(index=0, arguments='{"city": "Oslo"}'),
        ToolCallEnd(index=0),
        ToolCallStart(index=1, id="call_2", name="get_weather"),
        ToolCallDelta(index=1, arguments="{}"),
        ToolCallEnd(index=1),
        Usage(),
        Finish(FinishReason.TOOL_CALLS),
    ]


async def test_complete_gives_the_call_arguments_as_json(server: GeminiServer, adapter: GoogleAdapter) -> None:
    server.script(reply(Say("Checking."), Call("call_1", "get_weather", '{"city": "Oslo"}'), Count(9, 4)))

    result = await adapter.complete(ask("Weather?", tools=(WEATHER,)))

    assert result.text == "Checking."
    [call] = result.tool_calls
    assert (call.id, call.name, json.loads(call.arguments)) == ("call_1", "get_weather", {"city": "Oslo"})
    assert result.finish is FinishReason.TOOL_CALLS
    [declarations] = server.requests[0].body["tools"]
    [declaration] = declarations["functionDeclarations"]
    assert (declaration["name"], declaration["description"]) == ("get_weather", "The weather in a city.")
    assert declaration.get("parametersJsonSchema", declaration.get("parameters_json_schema")) == WEATHER.parameters


async def test_tool_results_round_trip_as_function_responses_named_after_their_calls(
    server: GeminiServer, adapter: GoogleAdapter
) -> None:
    calls = (
        ToolCall(id="call_1", name="get_weather", arguments='{"city": "Oslo"}'),
        ToolCall(id="call_2", name="get_time", arguments="{not json"),
    )
    messages = (
        ChatMessage.text("user", "Weather and time in Oslo?"),
        ChatMessage(role="assistant", parts=(TextPart("Let me look."),), tool_calls=calls),
        ChatMessage(role="tool", parts=(TextPart('{"celsius": 4}'),), tool_call_id="call_1"),
        ChatMessage(role="tool", parts=(TextPart("09:30"),), tool_call_id="call_2"),
    )

    await adapter.complete(ChatRequest(model=MODEL, messages=messages, tools=(WEATHER,)))

    _, model_turn, results = server.requests[0].body["contents"]
    assert model_turn["role"] == "model"
    assert model_turn["parts"][0] == {"text": "Let me look."}
    assert [part["functionCall"] for part in model_turn["parts"][1:]] == [
        {"id": "call_1", "name": "get_weather", "args": {"city": "Oslo"}},
        {"id": "call_2", "name": "get_time", "args": {}},  # arguments that do not parse are sent as {}
    ]
    assert all(part.get("thoughtSignature", part.get("thought_signature")) for part in model_turn["parts"][1:])
    assert results["role"] == "user"
    assert [part["functionResponse"] for part in results["parts"]] == [
        {"id": "call_1", "name": "get_weather", "response": {"celsius": 4}},
        {"id": "call_2", "name": "get_time", "response": {"output": "09:30"}},
    ]


async def test_an_image_part_is_sent_as_inline_data(server: GeminiServer, adapter: GoogleAdapter) -> None:
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n fake").decode()
    message = ChatMessage(role="user", parts=(TextPart("What is this?"), ImagePart("image/png", png)))

    await adapter.complete(ChatRequest(model=MODEL, messages=(message,)))

    [content] = server.requests[0].body["contents"]
    inline = content["parts"][1]["inlineData"]
    assert inline["data"] == png
    assert inline.get("mimeType", inline.get("mime_type")) == "image/png"


async def test_an_image_that_is_not_base64_is_a_bad_request_not_sent(
    server: GeminiServer, adapter: GoogleAdapter
) -> None:
    message = ChatMessage(role="user", parts=(ImagePart("image/png", "not base64!"),))

    error = await failure_of(adapter, ChatRequest(model=MODEL, messages=(message,)))

    assert error.code is ErrorCode.BAD_REQUEST
    assert server.requests == []


@pytest.mark.parametrize(
    ("end", "finish"),
    [
        ("length", FinishReason.LENGTH),
        ("content_filter", FinishReason.CONTENT_FILTER),
        ("recitation", FinishReason.CONTENT_FILTER),
        ("prohibited_content", FinishReason.CONTENT_FILTER),
        ("malformed_function_call", FinishReason.OTHER),
    ],
)
async def test_finish_reasons_map_to_the_contract(
    server: GeminiServer, adapter: GoogleAdapter, end: str, finish: FinishReason
) -> None:
    server.script(reply(Say("Partly"), End(end)))

    assert (await adapter.complete(ask())).finish is finish


async def test_a_blocked_prompt_finishes_as_content_filtered(server: GeminiServer, adapter: GoogleAdapter) -> None:
    server.script(Reply(events=(Count(8, 0), PromptBlocked("PROHIBITED_CONTENT"))))

    assert await events_of(adapter, ask()) == [Usage(8, 0), Finish(FinishReason.CONTENT_FILTER)]


# --- Errors --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fail", "code"),
    [
        (Fail(401, "Request had invalid authentication credentials."), ErrorCode.AUTHENTICATION),
        (Fail(400, "API key not valid. Please pass a valid API key."), ErrorCode.AUTHENTICATION),
        (Fail(403, "Permission denied on resource."), ErrorCode.PERMISSION),
        (Fail(404, "models/gemini-9 is not found for API version v1beta."), ErrorCode.MODEL_NOT_FOUND),
        (Fail(400, "The context is too long."), ErrorCode.CONTEXT_TOO_LONG),
        (Fail(400, "Invalid JSON payload received."), ErrorCode.BAD_REQUEST),
        (Fail(500, "An internal error has occurred."), ErrorCode.PROVIDER_UNAVAILABLE),
        (Fail(503, "The model is overloaded."), ErrorCode.PROVIDER_UNAVAILABLE),
    ],
)
async def test_http_errors_map_to_error_codes_with_safe_messages(
    server: GeminiServer, adapter: GoogleAdapter, fail: Fail, code: ErrorCode
) -> None:
    server.script(fail)

    error = await failure_of(adapter)

    assert error.code is code
    assert error.retryable is (code is ErrorCode.PROVIDER_UNAVAILABLE)
    assert error.provider == "google-test"
    assert KEY not in str(error)
    assert fail.message not in error.message


async def test_a_rate_limit_is_retryable_after_the_delay_google_names(
    server: GeminiServer, adapter: GoogleAdapter
) -> None:
    server.script(Fail(429, "Resource has been exhausted (e.g. check quota).", retry_after=7))

    error = await failure_of(adapter)

    assert (error.code, error.retryable, error.retry_after) == (ErrorCode.RATE_LIMITED, True, 7.0)


def test_the_retry_delay_is_read_from_google_retry_info_without_a_header() -> None:
    body = {
        "error": {
            "code": 429,
            "message": "Quota exceeded.",
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}],
        }
    }

    assert retry_after_seconds(genai_errors.ClientError(429, body)) == 37.0
    assert retry_after_seconds(genai_errors.ClientError(429, {"error": {"code": 429}})) is None


async def test_the_sdk_does_not_retry_by_itself(server: GeminiServer, adapter: GoogleAdapter) -> None:
    server.script(Fail(503), reply(Say("Too late")))

    await failure_of(adapter)

    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("broken", "code"),
    [
        pytest.param(
            reply(Say("Once upon"), Say(" a time"), drop_after=1),
            ErrorCode.PROVIDER_DISCONNECTED,
            id="dropped connection",
        ),
        pytest.param(
            reply(Say("Once upon"), Say(" a time"), malformed_at=1),
            ErrorCode.PROVIDER_UNAVAILABLE,
            id="malformed chunk",
        ),
        pytest.param(
            Reply(events=(Say("Once upon"), StreamError(503))), ErrorCode.PROVIDER_UNAVAILABLE, id="error chunk"
        ),
        pytest.param(Reply(events=(Say("Once upon"),)), ErrorCode.PROVIDER_DISCONNECTED, id="no finish reason"),
    ],
)
async def test_a_stream_broken_midway_fails_after_the_events_already_yielded(
    server: GeminiServer, adapter: GoogleAdapter, broken: Reply, code: ErrorCode
) -> None:
    server.script(broken)

    events, error = await partial_stream(adapter)

    assert events == [TextDelta("Once upon")]
    assert (error.code, error.retryable) == (code, True)


async def test_a_stalled_stream_times_out_after_the_idle_timeout(server: GeminiServer) -> None:
    server.script(reply(Say("Hi"), Say("there"), stall_after=1))

    events, error = await partial_stream(adapter_for(server, Timeouts(idle=0.5)))

    assert events == [TextDelta("Hi")]
    assert (error.code, error.retryable) == (ErrorCode.TIMEOUT, True)


async def test_no_first_token_in_time_is_a_timeout(server: GeminiServer) -> None:
    server.script(reply(Say("Hi"), stall_after=0))

    error = await failure_of(adapter_for(server, Timeouts(first_token=0.5)))

    assert error.code is ErrorCode.TIMEOUT


async def test_an_unreachable_server_is_provider_unavailable() -> None:
    with GeminiServer() as gone:
        url = gone.url
    adapter = GoogleAdapter(Endpoint(base_url=url, api_key=KEY, provider="google-test"))

    error = await failure_of(adapter)

    assert error.code is ErrorCode.PROVIDER_UNAVAILABLE
    assert KEY not in str(error)


async def test_a_missing_key_fails_without_borrowing_the_servers_key(
    server: GeminiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "server-own-key")

    error = await failure_of(adapter_for(server, api_key=""))

    assert error.code is ErrorCode.AUTHENTICATION
    assert server.requests == []


# --- Clients and models --------------------------------------------------------------------
async def test_the_endpoints_http_client_is_used_and_left_open(server: GeminiServer) -> None:
    seen: list[str] = []

    async def record(request: httpx2.Request) -> None:
        seen.append(request.url.path)

    async with httpx2.AsyncClient(event_hooks={"request": [record]}) as client:
        result = await adapter_for(server, http_client=client).complete(ask())
        assert not client.is_closed

    assert result.text == "Hello from the fake server."
    assert seen == [f"/v1beta/models/{MODEL}:streamGenerateContent"]


async def test_list_models_names_the_chat_models_without_the_models_prefix(
    server: GeminiServer, adapter: GoogleAdapter
) -> None:
    assert await adapter.list_models() == list(GeminiServer.models)
    assert server.requests[0].path.startswith("/v1beta/models")
    assert server.requests[0].headers["x-goog-api-key"] == KEY


async def test_list_models_raises_a_provider_error_when_the_server_refuses(server: GeminiServer) -> None:
    adapter = adapter_for(server, base_url=server.url + "/nowhere")

    with pytest.raises(ProviderError) as caught:
        await adapter.list_models()

    assert caught.value.code is ErrorCode.MODEL_NOT_FOUND  # a 404, as the fake answers unknown paths
    assert KEY not in str(caught.value)
