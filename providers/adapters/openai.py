"""The OpenAI Chat Completions protocol: requests through the official SDK, the stream read raw.

One adapter serves OpenAI and the servers that copy its API (xAI, OpenRouter, Ollama, vLLM,
LM Studio), so it reads what those add too: reasoning in `delta.reasoning_content` (DeepSeek,
vLLM) or `delta.reasoning` (OpenRouter, Ollama), or inline as `<think>…</think>` in the text;
tool calls without ids; usage on any chunk.

The SDK builds the request (auth, base URL, headers) and raises the HTTP status errors, but the
event stream is read here (`providers.adapters.sse` and orjson, into plain dicts): the SDK's typed
chunk objects cost about 100 µs of CPU per token, several times the rest of the path. A stream
must end with a finish reason or `[DONE]`; one whose body ends or whose connection drops before
either was cut off and raises PROVIDER_DISCONNECTED (a drop after the finish reason loses only
what follows it: the reply ends as finished).

The SDK never retries (`max_retries=0`): retries and failover happen above the adapter, where
the other providers are known. Every SDK error becomes a `ProviderError` with the user-safe
default message; the vendor's own message is read to classify an error, never passed on.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx2
import openai
import orjson
from openai._models import FinalRequestOptions

from providers.adapters.base import Adapter, call_timeout, merged_deltas, stream_timeout
from providers.adapters.clients import sdk_client, shared_http_client
from providers.adapters.prebuilt import prebuilt_stream
from providers.adapters.sse import SSEDecoder
from providers.adapters.transport import raw_chunks
from providers.adapters.wire import connection_lost, retry_after_header
from providers.contract import (
    ChatMessage,
    ChatRequest,
    ErrorCode,
    Event,
    Finish,
    FinishReason,
    ImagePart,
    ProviderError,
    ReasoningDelta,
    TextDelta,
    TextPart,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from providers.thinktags import Piece, ThinkTagSplitter

logger = logging.getLogger(__name__)

# Keyless local servers (Ollama, LM Studio) still need a key for the SDK to start; they ignore
# it. Never pass None: the SDK would read OPENAI_API_KEY and send this host's key to any URL.
NO_KEY = "no-key"

FINISH_REASONS = {
    "stop": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "tool_calls": FinishReason.TOOL_CALLS,
    "function_call": FinishReason.TOOL_CALLS,
    "content_filter": FinishReason.CONTENT_FILTER,
}
REASONING_FIELDS = ("reasoning_content", "reasoning")
CONTEXT_HINTS = ("context_length", "context length", "context window", "maximum context", "too many tokens")
FILTER_CODES = {"content_filter", "content_policy_violation"}
QUOTA_CODES = {"insufficient_quota"}
OUT_OF_CREDIT = "The provider account has run out of credit."
# How long the body's end is awaited after [DONE] (the SDK's own figure): long enough for the
# closing bytes that let the connection be reused, short enough not to hold the reply up.
DRAIN_SECONDS = 0.1
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class OpenAIAdapter(Adapter):
    protocol = "openai"

    def _client(self) -> openai.AsyncOpenAI:
        """Timeouts go with each request (`stream_timeout`, `call_timeout`): the client is kept
        for the loop (`sdk_client`), and a call's timeouts vary (its share of a first-token
        budget). Never closed here: the endpoint's HTTP client belongs to its route, the shared
        one to the loop."""
        api_key, base_url = self.endpoint.api_key or NO_KEY, self.endpoint.base_url or None
        if self.endpoint.http_client is not None:
            return openai.AsyncOpenAI(
                api_key=api_key, base_url=base_url, max_retries=0, http_client=self.endpoint.http_client
            )
        return sdk_client(
            ("openai", api_key, base_url),
            lambda: openai.AsyncOpenAI(
                api_key=api_key, base_url=base_url, max_retries=0, http_client=shared_http_client()
            ),
        )

    @contextlib.asynccontextmanager
    async def _opened(self, request: ChatRequest) -> AsyncIterator[httpx2.Response]:
        """The response to a streamed completion, open while the block runs. Entering raises the
        SDK's status errors. A platform endpoint's request is the SDK's, prebuilt
        (`providers.adapters.prebuilt`); a route's own client goes through the SDK's call."""
        client, timeout = self._client(), stream_timeout(self.endpoint.timeouts)
        if self.endpoint.http_client is None:
            async with prebuilt_stream(
                client, "/chat/completions", request_body(request), timeout, options=FinalRequestOptions.construct
            ) as response:
                yield response
            return
        completions = client.chat.completions.with_streaming_response
        async with completions.create(**_untransformed(request_body(request)), timeout=timeout) as streamed:
            yield streamed.http_response

    async def _stream(self, request: ChatRequest) -> AsyncIterator[Event]:
        state = _StreamState(provider=self.endpoint.provider)
        try:
            # The body is ours to read.
            async with self._opened(request) as response, contextlib.aclosing(raw_chunks(response)) as chunks:
                try:
                    async for chunk in chunks:
                        for event in merged_deltas(state.feed(chunk)):
                            yield event
                        if state.done:
                            await _finish_body(chunks)
                            break
                except (httpx2.HTTPError, httpx2.StreamError) as error:
                    # The connection went away mid-body: after the finish reason only usage was
                    # lost, before it the reply was cut off (`end` says so).
                    if not connection_lost(error):
                        raise
                    logger.info("openai adapter: the connection dropped mid-stream (%s)", type(error).__name__)
                for event in state.end():
                    yield event
        except (openai.OpenAIError, httpx2.HTTPError, httpx2.StreamError, ValueError) as error:
            raise self._error(error) from None

    async def list_models(self) -> list[str]:
        client = self._client()
        try:
            return [model.id async for model in client.models.list(timeout=call_timeout(self.endpoint.timeouts))]
        except (openai.OpenAIError, ValueError) as error:
            raise self._error(error) from None

    async def generate_image(self, prompt: str, *, model: str) -> tuple[bytes, Usage]:
        """One 1024x1024 PNG drawn by an OpenAI Images model (gpt-image-1, dall-e-3) from `prompt`,
        and the tokens it reports (gpt-image-1 does; DALL-E reports none)."""
        client = self._client()
        options: dict[str, Any] = {"model": model, "prompt": prompt, "n": 1, "size": "1024x1024"}
        if model.startswith("dall-e"):
            options["response_format"] = "b64_json"  # gpt-image-1 always answers base64 and refuses this
        try:
            result = await client.images.generate(**options, timeout=call_timeout(self.endpoint.timeouts))
        except (openai.OpenAIError, ValueError) as error:
            raise self._error(error) from None
        encoded = result.data[0].b64_json if result.data else None
        try:
            image = base64.b64decode(encoded or "", validate=True)
        except binascii.Error:
            image = b""
        if not image.startswith(PNG_SIGNATURE):
            logger.info("openai adapter: the images endpoint answered no PNG")
            raise ProviderError(ErrorCode.PROVIDER_UNAVAILABLE, provider=self.endpoint.provider)
        usage = getattr(result, "usage", None)
        if usage is None:
            return image, Usage()
        return image, Usage(input_tokens=usage.input_tokens or 0, output_tokens=usage.output_tokens or 0)

    def _error(self, error: Exception) -> ProviderError:
        mapped = provider_error(error, provider=self.endpoint.provider)
        # Only the type and status: the SDK's message may quote the request.
        logger.info(
            "openai adapter: %s (status %s) → %s",
            type(error).__name__,
            getattr(error, "status_code", "-"),
            mapped.code,
        )
        return mapped


# --- Request -------------------------------------------------------------------------------
def _untransformed(body: dict[str, Any]) -> dict[str, Any]:
    """`create` arguments that send `body` as it is. The SDK's request transform walks every
    message against its typed schema (about 6 ms of CPU for a 20-message chat, per model call);
    our body is already in wire shape, so all but the model goes in `extra_body`, which the SDK
    merges into the JSON unchanged. Auth, headers, errors and timeouts stay the SDK's."""
    rest = dict(body)
    return {"model": rest.pop("model"), "messages": [], "stream": rest.pop("stream"), "extra_body": rest}


def request_body(request: ChatRequest) -> dict[str, Any]:
    """The `chat.completions.create` arguments for a contract request."""
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    messages.extend(_message(message) for message in request.messages)
    body: dict[str, Any] = {
        "model": request.model,
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {"name": tool.name, "description": tool.description, "parameters": tool.parameters},
            }
            for tool in request.tools
        ]
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.max_tokens is not None:
        # `max_tokens`, not `max_completion_tokens`: compatible servers know only the former.
        body["max_tokens"] = request.max_tokens
    return body


def _message(message: ChatMessage) -> dict[str, Any]:
    text = "".join(part.text for part in message.parts if isinstance(part, TextPart))
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id or "", "content": text}
    if message.role == "assistant":
        result: dict[str, Any] = {"role": "assistant", "content": text or (None if message.tool_calls else "")}
        if message.tool_calls:
            result["tool_calls"] = [
                {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
                for call in message.tool_calls
            ]
        return result
    if not any(isinstance(part, ImagePart) for part in message.parts):
        # A plain string: some compatible servers accept no content list for text-only turns.
        return {"role": "user", "content": text}
    content: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            content.append({"type": "text", "text": part.text})
        else:
            url = f"data:{part.media_type};base64,{part.data_base64}"
            content.append({"type": "image_url", "image_url": {"url": url}})
    return {"role": "user", "content": content}


# --- Stream --------------------------------------------------------------------------------
@dataclass
class _Call:
    index: int  # the contract's index: the order calls started in
    id: str = ""
    name: str = ""
    pending: list[str] = field(default_factory=list)  # arguments that came before the name
    started: bool = False


class _StreamState:
    """Body bytes in, contract events out. Usage and Finish are held to the end of the stream so
    Finish is always the last event, whatever order the server sent usage and finish_reason.

    `terminal` says whether the stream ended as a finished reply does (a finish reason or
    `[DONE]`); `end` raises for one that did not."""

    def __init__(self, *, provider: str = "") -> None:
        self.provider = provider
        self.decoder = SSEDecoder()
        self.splitter = ThinkTagSplitter()
        self.open_calls: list[_Call] = []  # in the order they started
        self.latest: dict[int, _Call] = {}  # the call a vendor index's pieces extend
        self.call_count = 0
        self.usage: Usage | None = None
        self.finish: FinishReason | None = None
        self.done = False  # `data: [DONE]` came: nothing after it is read

    @property
    def terminal(self) -> bool:
        return self.done or self.finish is not None

    def feed(self, chunk: bytes) -> Iterator[Event]:
        """The events of the server-sent events that `chunk` completes, one at a time: an error
        event raises only after the events before it in the same read were taken."""
        for sse in self.decoder.feed(chunk):
            if self.done:
                break
            yield from self._data(sse.data)

    def end(self) -> list[Event]:
        """The closing events, once the body has ended (or [DONE] came)."""
        events: list[Event] = []
        if not self.done:
            for sse in self.decoder.end():
                events.extend(self._data(sse.data))
        if not self.terminal:
            logger.info("openai adapter: the stream ended with no finish reason and no [DONE]")
            raise ProviderError(ErrorCode.PROVIDER_DISCONNECTED, provider=self.provider)
        events.extend(self._close_open_parts())
        if self.usage is not None:
            events.append(self.usage)
        events.append(Finish(self.finish or FinishReason.OTHER))
        return events

    def _data(self, data: bytes) -> list[Event]:
        """One event's `data`: a chunk, [DONE], or an error object (a ValueError if it does not parse)."""
        if data.startswith(b"[DONE]"):
            self.done = True
            return []
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            if data.strip():
                raise
            return []  # an empty event (a keep-alive): nothing to read
        if type(chunk) is not dict:
            raise ValueError("a stream chunk that is not an object")
        if chunk.get("error"):
            raise stream_error(chunk["error"], provider=self.provider)
        return self.read(chunk)

    def read(self, chunk: dict[str, Any]) -> list[Event]:
        """One `chat.completion.chunk` (as parsed JSON)."""
        events: list[Event] = []
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = _usage(usage)
        choices = chunk.get("choices")
        if choices:
            choice = choices[0]  # n is never set: one choice
            delta = choice.get("delta")
            if delta:
                self._delta(delta, events)
            reason = choice.get("finish_reason")
            if reason:
                self.finish = FINISH_REASONS.get(reason, FinishReason.OTHER)
                if self.finish == FinishReason.STOP and self.call_count:
                    self.finish = FinishReason.TOOL_CALLS  # some servers (Ollama) say stop after calls
                events.extend(self._close_open_parts())
        return events

    def _delta(self, delta: dict[str, Any], events: list[Event]) -> None:
        for name in REASONING_FIELDS:
            reasoning = delta.get(name)
            if reasoning and isinstance(reasoning, str):
                events.append(ReasoningDelta(reasoning))
                break
        for name in ("content", "refusal"):
            content = delta.get(name)
            if content and isinstance(content, str):
                events.extend(_piece_event(piece) for piece in self.splitter.feed(content))
        for call in delta.get("tool_calls") or ():
            events.extend(self._tool_call(call))

    def _tool_call(self, delta: dict[str, Any]) -> list[Event]:
        index = delta.get("index")
        key = index if index is not None else -1
        call = self.latest.get(key)
        if call is None or _starts_another(delta, call):
            call = self.latest[key] = _Call(index=self.call_count)
            self.open_calls.append(call)
            self.call_count += 1
        function = delta.get("function") or {}
        call.id = call.id or delta.get("id") or ""
        call.name = call.name or function.get("name") or ""
        arguments = function.get("arguments") or ""
        if call.started:
            return [ToolCallDelta(call.index, arguments)] if arguments else []
        if arguments:
            call.pending.append(arguments)
        return self._start(call) if call.name else []

    def _start(self, call: _Call) -> list[Event]:
        call.started = True
        call.id = call.id or f"call_{uuid.uuid4().hex[:24]}"  # servers that send no ids
        events: list[Event] = [ToolCallStart(call.index, call.id, call.name)]
        if call.pending:
            events.append(ToolCallDelta(call.index, "".join(call.pending)))
            call.pending.clear()
        return events

    def _close_open_parts(self) -> list[Event]:
        """Release held text, then end every call (once)."""
        events: list[Event] = [_piece_event(piece) for piece in self.splitter.flush()]
        for call in self.open_calls:
            if not call.started:
                events.extend(self._start(call))
            events.append(ToolCallEnd(call.index))
        self.open_calls.clear()
        self.latest.clear()
        return events


async def _finish_body(chunks: AsyncIterator[bytes]) -> None:
    """Read the body to its end after [DONE], so that an HTTP/1.1 connection can be reused; a
    server that keeps the body open after [DONE] is not waited for."""
    with contextlib.suppress(TimeoutError, httpx2.HTTPError, httpx2.StreamError):
        async with asyncio.timeout(DRAIN_SECONDS):
            async for _ in chunks:
                pass


def _starts_another(delta: dict[str, Any], call: _Call) -> bool:
    """Whether a piece at a known index begins a new call: it has another id, or it names a call
    again without repeating the id (some servers number every call 0; a name comes only with a
    call's first piece)."""
    if delta.get("id"):
        return delta["id"] != call.id and bool(call.id)
    function = delta.get("function") or {}
    return bool(function.get("name") and call.name)


def _piece_event(piece: Piece) -> Event:
    return ReasoningDelta(piece.text) if piece.kind == "reasoning" else TextDelta(piece.text)


def _usage(usage: dict[str, Any]) -> Usage:
    details = usage.get("completion_tokens_details")
    return Usage(
        input_tokens=usage.get("prompt_tokens") or 0,
        output_tokens=usage.get("completion_tokens") or 0,
        reasoning_tokens=(details.get("reasoning_tokens") or 0) if isinstance(details, dict) else 0,
    )


# --- Errors --------------------------------------------------------------------------------
def provider_error(error: Exception, *, provider: str = "") -> ProviderError:
    """The contract error for an SDK error (or a chunk that did not parse)."""
    if isinstance(error, openai.APITimeoutError | httpx2.TimeoutException):
        return ProviderError(ErrorCode.TIMEOUT, provider=provider)
    if isinstance(error, openai.APIStatusError):
        return _status_error(error, provider=provider)
    if isinstance(error, openai.APIError) and not isinstance(error, openai.APIConnectionError):
        # An error the SDK read from a 200 body: classify what we can, the rest is the provider's.
        code = _classify(error.code, error.message)
        return ProviderError(code or ErrorCode.PROVIDER_UNAVAILABLE, provider=provider)
    # Connection errors (also a body cut off mid-read), chunks that do not parse, and anything
    # else the SDK raises.
    return ProviderError(ErrorCode.PROVIDER_UNAVAILABLE, provider=provider)


def stream_error(payload: object, *, provider: str = "") -> ProviderError:
    """The contract error for an `error` object sent inside a 200 stream, classified as it was
    when the SDK read the stream (its APIError carried the object's `code` and `message`)."""
    code = message = None
    if isinstance(payload, dict):
        code, message = payload.get("code"), payload.get("message")
    classified = _classify(
        str(code) if code is not None else None,
        message if isinstance(message, str) else None,
    )
    mapped = ProviderError(classified or ErrorCode.PROVIDER_UNAVAILABLE, provider=provider)
    logger.info("openai adapter: an error event in the stream → %s", mapped.code)
    return mapped


def _status_error(error: openai.APIStatusError, *, provider: str) -> ProviderError:
    status = error.status_code
    retry_after = retry_after_seconds(error.response.headers)
    if status == 402 or (error.code or "") in QUOTA_CODES:
        # Out of credit: nothing a retry fixes here, but another provider may serve.
        return ProviderError(ErrorCode.RATE_LIMITED, OUT_OF_CREDIT, provider=provider)
    code = {
        401: ErrorCode.AUTHENTICATION,
        403: ErrorCode.PERMISSION,
        404: ErrorCode.MODEL_NOT_FOUND,
        408: ErrorCode.TIMEOUT,
        429: ErrorCode.RATE_LIMITED,
    }.get(status)
    if code is None and status >= 500:
        code = ErrorCode.PROVIDER_UNAVAILABLE
    if code is None:
        code = _classify(error.code, error.message) or ErrorCode.BAD_REQUEST
    return ProviderError(code, retry_after=retry_after, provider=provider)


def _classify(error_code: str | None, error_message: str | None) -> ErrorCode | None:
    """The codes a vendor's error code or message can tell (read here, never shown)."""
    code = (error_code or "").lower()
    message = (error_message or "").lower()
    if code == "context_length_exceeded" or any(hint in message for hint in CONTEXT_HINTS):
        return ErrorCode.CONTEXT_TOO_LONG
    if code in FILTER_CODES:
        return ErrorCode.CONTENT_FILTERED
    if code == "rate_limit_exceeded":
        return ErrorCode.RATE_LIMITED
    return None


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from `retry-after-ms` (OpenAI) or `Retry-After` (seconds or a date)."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    return retry_after_header(headers.get("retry-after"))
