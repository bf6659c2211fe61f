"""The one streaming contract every adapter speaks; nothing above `providers/` sees a vendor payload.

An adapter turns a `ChatRequest` into an async stream of the small event dataclasses below, and
raises only `ProviderError`, whose `code` is one of `ErrorCode` and whose `message` is safe to
show a user (never a key, a URL with credentials, or a raw vendor payload).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal


# --- Request -------------------------------------------------------------------------------
@dataclass(frozen=True)
class TextPart:
    text: str
    type: Literal["text"] = "text"


@dataclass(frozen=True)
class ImagePart:
    """An image as base64 data with its media type (image/png, image/jpeg, …)."""

    media_type: str
    data_base64: str
    type: Literal["image"] = "image"


Part = TextPart | ImagePart


@dataclass(frozen=True)
class ToolCall:
    """A call the model made: `arguments` is the JSON text the model wrote (may not parse)."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ChatMessage:
    """One turn. An assistant turn may carry tool calls; a `tool` turn answers one call by id."""

    role: Literal["user", "assistant", "tool"]
    parts: tuple[Part, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None

    @classmethod
    def text(cls, role: Literal["user", "assistant", "tool"], text: str) -> ChatMessage:
        return cls(role=role, parts=(TextPart(text),))


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON Schema of the arguments object


@dataclass(frozen=True)
class ChatRequest:
    model: str  # the provider-side model id
    messages: tuple[ChatMessage, ...]
    system: str = ""
    tools: tuple[ToolSpec, ...] = ()
    temperature: float | None = None  # a hint: adapters drop it where the vendor refuses it
    max_tokens: int | None = None


# --- Events --------------------------------------------------------------------------------
@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True)
class ToolCallStart:
    index: int
    id: str
    name: str


@dataclass(frozen=True)
class ToolCallDelta:
    index: int
    arguments: str


@dataclass(frozen=True)
class ToolCallEnd:
    index: int


@dataclass(frozen=True)
class Usage:
    """Tokens of one generation. `output_tokens` counts everything generated, reasoning
    included; `reasoning_tokens` says how many of those were reasoning (never added twice)."""

    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0


class FinishReason(StrEnum):
    STOP = "stop"
    LENGTH = "length"
    TOOL_CALLS = "tool_calls"
    CONTENT_FILTER = "content_filter"
    OTHER = "other"


@dataclass(frozen=True)
class Finish:
    reason: FinishReason


Event = TextDelta | ReasoningDelta | ToolCallStart | ToolCallDelta | ToolCallEnd | Usage | Finish


# --- Result (for short jobs: titles, suggestions) ----------------------------------------------
@dataclass
class ChatResult:
    text: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    finish: FinishReason = FinishReason.OTHER


async def collect(events: AsyncIterator[Event]) -> ChatResult:
    """Fold a stream into one result (what `complete` is for every adapter)."""
    result = ChatResult()
    text: list[str] = []
    reasoning: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    async for event in events:
        match event:
            case TextDelta(text=chunk):
                text.append(chunk)
            case ReasoningDelta(text=chunk):
                reasoning.append(chunk)
            case ToolCallStart(index=index, id=call_id, name=name):
                calls[index] = {"id": call_id, "name": name, "arguments": []}
            case ToolCallDelta(index=index, arguments=chunk):
                calls.setdefault(index, {"id": "", "name": "", "arguments": []})["arguments"].append(chunk)
            case Usage():
                result.usage = event
            case Finish(reason=reason):
                result.finish = reason
    result.text = "".join(text)
    result.reasoning = "".join(reasoning)
    result.tool_calls = [
        ToolCall(id=call["id"], name=call["name"], arguments="".join(call["arguments"]))
        for _, call in sorted(calls.items())
    ]
    return result


# --- Errors --------------------------------------------------------------------------------
class ErrorCode(StrEnum):
    AUTHENTICATION = "authentication"
    PERMISSION = "permission"
    RATE_LIMITED = "rate_limited"
    MODEL_NOT_FOUND = "model_not_found"
    CONTEXT_TOO_LONG = "context_too_long"
    CONTENT_FILTERED = "content_filtered"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    # The reply's stream ended (cleanly or by a dropped connection) before its terminal event
    # (a finish reason, [DONE], message_stop): what came is partial, never a finished answer.
    PROVIDER_DISCONNECTED = "provider_disconnected"
    TIMEOUT = "timeout"
    BAD_REQUEST = "bad_request"
    # Never raised by an adapter: a fault of Arbor's own while writing a reply (its Redis or
    # database lost, a bug), so a reply that failed so is not blamed on the provider or the user.
    INTERNAL = "internal"


RETRYABLE = {
    ErrorCode.RATE_LIMITED,
    ErrorCode.PROVIDER_UNAVAILABLE,
    ErrorCode.PROVIDER_DISCONNECTED,
    ErrorCode.TIMEOUT,
}

USER_MESSAGES = {
    ErrorCode.AUTHENTICATION: "The provider rejected the API key.",
    ErrorCode.PERMISSION: "This API key may not use that model.",
    ErrorCode.RATE_LIMITED: "The provider is rate limiting requests; try again shortly.",
    ErrorCode.MODEL_NOT_FOUND: "The provider does not know this model.",
    ErrorCode.CONTEXT_TOO_LONG: "The conversation is too long for this model.",
    ErrorCode.CONTENT_FILTERED: "The provider's content filter stopped this reply.",
    ErrorCode.PROVIDER_UNAVAILABLE: "The provider is unavailable right now.",
    ErrorCode.PROVIDER_DISCONNECTED: "The provider's connection ended before the reply finished.",
    ErrorCode.TIMEOUT: "The provider took too long to answer.",
    ErrorCode.BAD_REQUEST: "The provider refused the request.",
    ErrorCode.INTERNAL: "Something went wrong on the server; try again.",
}


class ProviderError(Exception):
    """The only error an adapter raises. `message` is safe to show a user."""

    def __init__(
        self,
        code: ErrorCode,
        message: str | None = None,
        *,
        retry_after: float | None = None,
        provider: str = "",
    ) -> None:
        self.code = code
        self.message = message or USER_MESSAGES[code]
        self.retry_after = retry_after
        self.provider = provider
        super().__init__(f"{code}: {self.message}")

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE


# --- Adapters ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Timeouts:
    connect: float = 10.0
    first_token: float = 60.0
    idle: float = 30.0


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom an adapter calls. `base_url` empty means the SDK's default.

    `http_client` is an httpx2.AsyncClient the adapter must use when given (the SSRF-guarded
    client for user-supplied URLs)."""

    base_url: str = ""
    api_key: str = ""
    timeouts: Timeouts = field(default_factory=Timeouts)
    http_client: Any = None
    provider: str = ""  # slug, for error attribution only
