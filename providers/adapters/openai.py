"""The OpenAI Chat Completions protocol, through the official SDK.

One adapter serves OpenAI and the servers that copy its API (xAI, OpenRouter, Ollama, vLLM,
LM Studio), so it reads what those add too: reasoning in `delta.reasoning_content` (DeepSeek,
vLLM) or `delta.reasoning` (OpenRouter, Ollama), or inline as `<think>…</think>` in the text;
tool calls without ids; usage on any chunk.

The SDK never retries (`max_retries=0`): retries and failover happen above the adapter, where
the other providers are known. Every SDK error becomes a `ProviderError` with the user-safe
default message; the vendor's own message is read to classify an error, never passed on.
"""

from __future__ import annotations

import base64
import binascii
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx2
import openai

from providers.adapters.base import Adapter
from providers.adapters.clients import shared_http_client
from providers.adapters.wire import retry_after_header
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
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class OpenAIAdapter(Adapter):
    protocol = "openai"

    def _client(self) -> openai.AsyncOpenAI:
        timeouts = self.endpoint.timeouts
        # The base enforces first-token and idle timeouts more finely; the SDK's read timeout
        # is only a backstop that must never fire before them.
        read = max(timeouts.first_token, timeouts.idle) + 5.0
        options: dict[str, Any] = {
            "api_key": self.endpoint.api_key or NO_KEY,
            "base_url": self.endpoint.base_url or None,
            "max_retries": 0,
            "timeout": httpx2.Timeout(
                connect=timeouts.connect, read=read, write=timeouts.connect, pool=timeouts.connect
            ),
        }
        # Never closed here: the endpoint's client belongs to its route, the shared one to the loop.
        options["http_client"] = self.endpoint.http_client or shared_http_client()
        return openai.AsyncOpenAI(**options)

    async def _stream(self, request: ChatRequest) -> AsyncIterator[Event]:
        client = self._client()
        state = _StreamState()
        try:
            stream = await client.chat.completions.create(**request_body(request))
            try:
                async for chunk in stream:
                    for event in state.read(chunk):
                        yield event
            finally:
                await stream.close()
        except (openai.OpenAIError, ValueError) as error:
            raise self._error(error) from None
        for event in state.end():
            yield event

    async def list_models(self) -> list[str]:
        client = self._client()
        try:
            return [model.id async for model in client.models.list()]
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
            result = await client.images.generate(**options)
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
    """Chunks in, contract events out. Usage and Finish are held to the end of the stream so
    Finish is always the last event, whatever order the server sent usage and finish_reason."""

    def __init__(self) -> None:
        self.splitter = ThinkTagSplitter()
        self.open_calls: list[_Call] = []  # in the order they started
        self.latest: dict[int, _Call] = {}  # the call a vendor index's pieces extend
        self.call_count = 0
        self.usage: Usage | None = None
        self.finish: FinishReason | None = None

    def read(self, chunk: Any) -> list[Event]:
        events: list[Event] = []
        if chunk.usage is not None:
            self.usage = _usage(chunk.usage)
        for choice in chunk.choices[:1]:  # n is never set: one choice
            delta = choice.delta
            if delta is not None:
                reasoning = _reasoning_of(delta)
                if reasoning:
                    events.append(ReasoningDelta(reasoning))
                for content in (delta.content, getattr(delta, "refusal", None)):
                    if content:
                        events.extend(_piece_event(piece) for piece in self.splitter.feed(content))
                for call in delta.tool_calls or ():
                    events.extend(self._tool_call(call))
            if choice.finish_reason:
                self.finish = FINISH_REASONS.get(choice.finish_reason, FinishReason.OTHER)
                if self.finish == FinishReason.STOP and self.call_count:
                    self.finish = FinishReason.TOOL_CALLS  # some servers (Ollama) say stop after calls
                events.extend(self._close_open_parts())
        return events

    def end(self) -> list[Event]:
        events = self._close_open_parts()
        if self.usage is not None:
            events.append(self.usage)
        events.append(Finish(self.finish or FinishReason.OTHER))
        return events

    def _tool_call(self, delta: Any) -> list[Event]:
        key = delta.index if delta.index is not None else -1
        call = self.latest.get(key)
        if call is None or _starts_another(delta, call):
            call = self.latest[key] = _Call(index=self.call_count)
            self.open_calls.append(call)
            self.call_count += 1
        function = delta.function
        call.id = call.id or delta.id or ""
        call.name = call.name or (function.name if function is not None and function.name else "")
        arguments = function.arguments if function is not None and function.arguments else ""
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


def _starts_another(delta: Any, call: _Call) -> bool:
    """Whether a piece at a known index begins a new call: it has another id, or it names a call
    again without repeating the id (some servers number every call 0; a name comes only with a
    call's first piece)."""
    if delta.id:
        return delta.id != call.id and bool(call.id)
    return bool(delta.function is not None and delta.function.name and call.name)


def _piece_event(piece: Piece) -> Event:
    return ReasoningDelta(piece.text) if piece.kind == "reasoning" else TextDelta(piece.text)


def _reasoning_of(delta: Any) -> str:
    """Reasoning text from the fields the SDK's typed model does not know."""
    extra: Mapping[str, Any] = getattr(delta, "model_extra", None) or {}
    for name in REASONING_FIELDS:
        value = extra.get(name, getattr(delta, name, None))
        if isinstance(value, str) and value:
            return value
    return ""


def _usage(usage: Any) -> Usage:
    details = getattr(usage, "completion_tokens_details", None)
    return Usage(
        input_tokens=usage.prompt_tokens or 0,
        output_tokens=usage.completion_tokens or 0,
        reasoning_tokens=(getattr(details, "reasoning_tokens", None) or 0) if details is not None else 0,
    )


# --- Errors --------------------------------------------------------------------------------
def provider_error(error: Exception, *, provider: str = "") -> ProviderError:
    """The contract error for an SDK error (or a chunk that did not parse)."""
    if isinstance(error, openai.APITimeoutError):
        return ProviderError(ErrorCode.TIMEOUT, provider=provider)
    if isinstance(error, openai.APIStatusError):
        return _status_error(error, provider=provider)
    if isinstance(error, openai.APIError) and not isinstance(error, openai.APIConnectionError):
        # An error event inside a stream: classify what we can, the rest is the provider's.
        code = _classify_body(error)
        return ProviderError(code or ErrorCode.PROVIDER_UNAVAILABLE, provider=provider)
    # Connection errors, chunks that do not parse, and anything else the SDK raises.
    return ProviderError(ErrorCode.PROVIDER_UNAVAILABLE, provider=provider)


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
        code = _classify_body(error) or ErrorCode.BAD_REQUEST
    return ProviderError(code, retry_after=retry_after, provider=provider)


def _classify_body(error: openai.APIError) -> ErrorCode | None:
    """The codes a vendor's error code or message can tell (read here, never shown)."""
    code = (error.code or "").lower()
    message = (error.message or "").lower()
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
