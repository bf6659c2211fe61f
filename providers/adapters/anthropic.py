"""The Anthropic Messages protocol, through the official SDK (`anthropic.AsyncAnthropic`).

Requests: the system prompt goes in `system`; turns must alternate user/assistant, so `tool`
turns become user turns of `tool_result` blocks and consecutive same-role turns are merged.
Anthropic requires `max_tokens`, so a request without one gets `DEFAULT_MAX_TOKENS`. The
request's `temperature` is not sent: API version 2026-10-21 (what this SDK speaks) refuses
temperature/top_p/top_k with a 400 even at their defaults, and the SDK no longer takes them.

Stream: the SDK sends the request and raises the HTTP status errors; the event stream itself is
read here (`providers.adapters.sse` and orjson, into plain dicts), as the SDK's typed event
objects cost several times the rest of a token's path. Events are translated one by one; tool
calls are numbered by their order among tool calls (not by content block index), and one `Usage`
then one `Finish` are yielded at `message_stop`. A stream whose body ends or whose connection
drops before `message_stop` was cut off and raises PROVIDER_DISCONNECTED. The SDK never retries
(`max_retries=0`): retries and failover happen above the adapter, where the route is known.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import httpx2
import orjson
from anthropic._models import FinalRequestOptions

from providers.adapters.base import Adapter, call_timeout, merged_deltas, stream_timeout
from providers.adapters.clients import sdk_client, shared_http_client
from providers.adapters.prebuilt import prebuilt_stream
from providers.adapters.sse import ServerSentEvent, SSEDecoder
from providers.adapters.transport import raw_chunks
from providers.adapters.wire import arguments_object, connection_lost, retry_after_header
from providers.contract import (
    ChatMessage,
    ChatRequest,
    ErrorCode,
    Event,
    Finish,
    FinishReason,
    ImagePart,
    Part,
    ProviderError,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolSpec,
    Usage,
)

DEFAULT_MAX_TOKENS = 4096

FINISH_REASONS = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "max_tokens": FinishReason.LENGTH,
    "model_context_window_exceeded": FinishReason.LENGTH,
    "tool_use": FinishReason.TOOL_CALLS,
    "refusal": FinishReason.CONTENT_FILTER,
}

STATUS_CODES = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.AUTHENTICATION,
    403: ErrorCode.PERMISSION,
    404: ErrorCode.MODEL_NOT_FOUND,
    408: ErrorCode.TIMEOUT,
    413: ErrorCode.CONTEXT_TOO_LONG,  # request_too_large: the whole request (images included) is over 32 MB
    429: ErrorCode.RATE_LIMITED,
}

# `error.type` of an `event: error` mid-stream (the HTTP status was already 200).
ERROR_TYPES = {
    "invalid_request_error": ErrorCode.BAD_REQUEST,
    "authentication_error": ErrorCode.AUTHENTICATION,
    "permission_error": ErrorCode.PERMISSION,
    "not_found_error": ErrorCode.MODEL_NOT_FOUND,
    "request_too_large": ErrorCode.CONTEXT_TOO_LONG,
    "rate_limit_error": ErrorCode.RATE_LIMITED,
    "timeout_error": ErrorCode.TIMEOUT,
}

TOO_LONG_PHRASES = ("prompt is too long", "exceed context limit", "context window")


class AnthropicAdapter(Adapter):
    protocol = "anthropic"

    async def _stream(self, request: ChatRequest) -> AsyncIterator[Event]:
        params = request_params(request)
        async with self._client() as client:
            try:
                # The body is ours to read.
                async with (
                    self._opened(client, params) as response,
                    contextlib.aclosing(raw_chunks(response)) as chunks,
                ):
                    translation = _Translation(response)
                    try:
                        async for chunk in chunks:
                            for event in merged_deltas(translation.feed(chunk)):
                                yield event
                    except (httpx2.HTTPError, httpx2.StreamError) as error:
                        if not connection_lost(error):  # a dropped connection is judged below
                            raise
                    for event in translation.end():
                        yield event
            except (anthropic.AnthropicError, httpx2.HTTPError, httpx2.StreamError, ValueError) as error:
                raise provider_error(error, provider=self.endpoint.provider) from None
        if not translation.stopped:  # the body ended or dropped before message_stop: a cut-off reply
            raise ProviderError(ErrorCode.PROVIDER_DISCONNECTED, provider=self.endpoint.provider)

    @contextlib.asynccontextmanager
    async def _opened(self, client: anthropic.AsyncAnthropic, params: dict[str, Any]) -> AsyncIterator[httpx2.Response]:
        """The response to a streamed message, open while the block runs. Entering raises the
        SDK's status errors. A platform endpoint's request is the SDK's, prebuilt
        (`providers.adapters.prebuilt`); a route's own client goes through the SDK's call."""
        timeout = stream_timeout(self.endpoint.timeouts)
        if self.endpoint.http_client is None:
            body = {**params, "stream": True}
            async with prebuilt_stream(
                client, "/v1/messages", body, timeout, options=FinalRequestOptions.construct
            ) as response:
                yield response
            return
        messages = client.messages.with_streaming_response
        async with messages.create(**_untransformed(params), stream=True, timeout=timeout) as streamed:
            yield streamed.http_response

    async def list_models(self) -> list[str]:
        async with self._client() as client:
            try:
                timeout = call_timeout(self.endpoint.timeouts)
                return [model.id async for model in client.models.list(limit=1000, timeout=timeout)]
            except (anthropic.AnthropicError, httpx2.HTTPError, ValueError) as error:
                raise provider_error(error, provider=self.endpoint.provider) from None

    @contextlib.asynccontextmanager
    async def _client(self) -> AsyncIterator[anthropic.AsyncAnthropic]:
        """A client for one call: kept for the loop (`sdk_client`) on the shared HTTP client, made
        anew on an endpoint's own (the route closes that one). Timeouts go with each request
        (`stream_timeout`, `call_timeout`): a call's vary (its share of a first-token budget)."""
        endpoint = self.endpoint

        def make(http_client: httpx2.AsyncClient) -> anthropic.AsyncAnthropic:
            return anthropic.AsyncAnthropic(
                # Always explicit (even ""): a missing key would make the SDK read the server's own
                # ANTHROPIC_API_KEY and send it to whatever base_url this endpoint names.
                api_key=endpoint.api_key,
                base_url=endpoint.base_url or None,
                http_client=http_client,
                max_retries=0,
                default_headers=_key_headers(endpoint.api_key),
            )

        if endpoint.http_client is not None:
            yield make(endpoint.http_client)
        else:
            yield sdk_client(("anthropic", endpoint.api_key, endpoint.base_url), lambda: make(shared_http_client()))


def _key_headers(api_key: str) -> dict[str, Any]:
    """SDK 2.x sends the key only as `Authorization: Bearer`; the API reads either header (and
    prefers `x-api-key`), but many Anthropic-compatible proxies read only `x-api-key`, so both go.
    No key (a keyless local proxy) sends neither rather than an empty credential."""
    if not api_key:
        return {"X-Api-Key": anthropic.omit, "Authorization": anthropic.omit}
    return {"X-Api-Key": api_key}


# --- Requests ------------------------------------------------------------------------------
def _untransformed(params: dict[str, Any]) -> dict[str, Any]:
    """`create` arguments that send `params` as they are: the SDK's request transform walks every
    message against its typed schema (milliseconds per call for a long chat), and ours are in
    wire shape already, so they go in `extra_body`, which the SDK merges into the JSON unchanged."""
    rest = dict(params)
    return {"model": rest.pop("model"), "max_tokens": rest.pop("max_tokens"), "messages": [], "extra_body": rest}


def request_params(request: ChatRequest) -> dict[str, Any]:
    """The keyword arguments of `messages.create` for a contract request."""
    params: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
        "messages": anthropic_messages(request.messages),
    }
    if request.system:
        params["system"] = request.system
    if request.tools:
        params["tools"] = [_tool(tool) for tool in request.tools]
    return params


def anthropic_messages(messages: tuple[ChatMessage, ...]) -> list[dict[str, Any]]:
    """Alternating turns: a `tool` turn is a user turn of tool_result blocks, and consecutive
    turns of one role are merged (tool results first in a user turn, as the API requires)."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        turn["content"].sort(key=lambda block: block["type"] != "tool_result")  # stable: order kept otherwise
    return turns


def _blocks(message: ChatMessage) -> list[dict[str, Any]]:
    content = [block for part in message.parts if (block := _part(part)) is not None]
    if message.role == "tool":
        result: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id or ""}
        if content:
            result["content"] = content
        return [result]
    if message.role == "assistant":
        content += [
            {"type": "tool_use", "id": call.id, "name": call.name, "input": arguments_object(call.arguments)}
            for call in message.tool_calls
        ]
    return content


def _part(part: Part) -> dict[str, Any] | None:
    if isinstance(part, ImagePart):
        source = {"type": "base64", "media_type": part.media_type, "data": part.data_base64}
        return {"type": "image", "source": source}
    # The API refuses empty text blocks.
    return {"type": "text", "text": part.text} if part.text.strip() else None


def _tool(tool: ToolSpec) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": tool.name,
        "input_schema": tool.parameters or {"type": "object", "properties": {}},
    }
    if tool.description:
        spec["description"] = tool.description
    return spec


# --- Stream --------------------------------------------------------------------------------
class _Translation:
    """Anthropic stream events → contract events, keeping what spans events (usage, tool numbers)."""

    def __init__(self, response: httpx2.Response) -> None:
        self.response = response  # what an `event: error` is reported against
        self.decoder = SSEDecoder()
        self.tool_calls: dict[int, int] = {}  # content block index → tool call ordinal
        self.usage = Usage()
        self.finish = FinishReason.OTHER
        self.stopped = False

    def feed(self, chunk: bytes) -> Iterator[Event]:
        """The events of the server-sent events that `chunk` completes, one at a time: an error
        event raises only after the events before it in the same read were taken."""
        for sse in self.decoder.feed(chunk):
            yield from self._event(sse)

    def end(self) -> list[Event]:
        """The events of what the end of the body completes (rarely any)."""
        return [event for sse in self.decoder.end() for event in self._event(sse)]

    def _event(self, sse: ServerSentEvent) -> list[Event]:
        # As the SDK reads the stream: unnamed events and pings are skipped, an error event
        # raises what an HTTP error would, and an event's `type` says what it is.
        if sse.event is None or sse.event == "ping":
            return []
        if sse.event == "error":
            raise self._error(sse.data)
        if not sse.data:
            return []
        event = orjson.loads(sse.data)
        return self.read(event) if type(event) is dict else []

    def _error(self, data: bytes) -> anthropic.APIStatusError:
        try:
            body: object = orjson.loads(data)
        except orjson.JSONDecodeError:
            body = data.decode("utf-8", "replace")
        return anthropic.APIStatusError("An error event in the stream", response=self.response, body=body)

    def read(self, event: dict[str, Any]) -> list[Event]:
        kind = event.get("type")
        if kind == "content_block_delta":  # the common event first: one per token
            return self._delta(event["index"], event["delta"])
        if kind == "message_start":
            usage = event["message"]["usage"]
            self.usage = Usage(input_tokens=_input_tokens(usage), output_tokens=usage.get("output_tokens") or 0)
        elif kind == "content_block_start":
            return self._block_start(event["index"], event["content_block"])
        elif kind == "content_block_stop" and event["index"] in self.tool_calls:
            return [ToolCallEnd(index=self.tool_calls[event["index"]])]
        elif kind == "message_delta":
            self._message_delta(event)
        elif kind == "message_stop":
            self.stopped = True
            return [self.usage, Finish(reason=self.finish)]
        return []

    def _block_start(self, index: int, block: dict[str, Any]) -> list[Event]:
        kind = block.get("type")
        if kind == "tool_use":  # server tools (server_tool_use) run at Anthropic: not ours to call
            ordinal = len(self.tool_calls)
            self.tool_calls[index] = ordinal
            return [ToolCallStart(index=ordinal, id=block["id"], name=block["name"])]
        if kind == "text" and block.get("text"):
            return [TextDelta(text=block["text"])]
        if kind == "thinking" and block.get("thinking"):
            return [ReasoningDelta(text=block["thinking"])]
        return []

    def _delta(self, index: int, delta: dict[str, Any]) -> list[Event]:
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [TextDelta(text=delta["text"])]
        if kind == "thinking_delta" and delta.get("thinking"):
            return [ReasoningDelta(text=delta["thinking"])]
        if kind == "input_json_delta" and delta.get("partial_json") and index in self.tool_calls:
            return [ToolCallDelta(index=self.tool_calls[index], arguments=delta["partial_json"])]
        return []  # signature_delta, citations_delta: nothing the contract carries

    def _message_delta(self, event: dict[str, Any]) -> None:
        stop_reason = (event.get("delta") or {}).get("stop_reason")
        if stop_reason is not None:
            self.finish = FINISH_REASONS.get(stop_reason, FinishReason.OTHER)
        usage = event.get("usage") or {}
        details = usage.get("output_tokens_details")
        thinking = details.get("thinking_tokens") if isinstance(details, dict) else 0
        self.usage = Usage(
            # message_delta's counts are cumulative; its input count, when sent, is the newer one.
            input_tokens=_input_tokens(usage) if usage.get("input_tokens") is not None else self.usage.input_tokens,
            output_tokens=usage.get("output_tokens") or 0,
            reasoning_tokens=thinking or self.usage.reasoning_tokens,
        )


def _input_tokens(usage: dict[str, Any]) -> int:
    """All input tokens: the uncached ones plus those written to and read from the prompt cache."""
    return sum(
        usage.get(name) or 0 for name in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )


# --- Errors --------------------------------------------------------------------------------
def provider_error(error: Exception, *, provider: str) -> ProviderError:
    """An SDK, transport or parsing error as a ProviderError with the user-safe default message
    (an SDK message may quote the request or the vendor's payload)."""
    retry_after = None
    if isinstance(error, anthropic.APITimeoutError | httpx2.TimeoutException):
        code = ErrorCode.TIMEOUT
    elif isinstance(error, anthropic.APIStatusError):
        code = _status_error_code(error)
        if code is ErrorCode.RATE_LIMITED:
            retry_after = retry_after_header(error.response.headers.get("retry-after"))
    else:  # connection refused or dropped, a chunk that does not parse, an unexpected payload
        code = ErrorCode.PROVIDER_UNAVAILABLE
    return ProviderError(code, retry_after=retry_after, provider=provider)


def _status_error_code(error: anthropic.APIStatusError) -> ErrorCode:
    status = error.status_code
    if status < 400:  # an `event: error` in a 200 stream: only its type tells (overloaded_error, api_error…)
        return ERROR_TYPES.get(str(error.type), ErrorCode.PROVIDER_UNAVAILABLE)
    if status >= 500:  # 500 api_error, 529 overloaded_error, gateways
        return ErrorCode.PROVIDER_UNAVAILABLE
    code = STATUS_CODES.get(status, ErrorCode.BAD_REQUEST)
    message = (error.api_message or error.message or "").lower()
    if code is ErrorCode.BAD_REQUEST and any(phrase in message for phrase in TOO_LONG_PHRASES):
        return ErrorCode.CONTEXT_TOO_LONG
    return code
