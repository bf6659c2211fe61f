"""A fake Anthropic Messages API: `POST /v1/messages` streaming and `GET /v1/models`.

The stream is Anthropic's server-sent events: `message_start` (with the input token count), then
one `content_block_start` / `content_block_delta`… / `content_block_stop` run per content block,
then `message_delta` (stop reason, output tokens) and `message_stop`. Consecutive `Say` events
share one text block and consecutive `Think` events one thinking block; each `Call` is a tool_use
block whose arguments arrive as `input_json_delta` pieces.

Chunk positions follow the script (what the faults count): chunk N is script event N, so the
first chunk also carries `message_start`; `message_stop` is the one closing chunk.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from providers.testing.base import (
    Call,
    Count,
    End,
    Fail,
    FakeVendorServer,
    RecordedRequest,
    Say,
    ScriptEvent,
    Think,
    sse,
)

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

MODEL_NAMES = {
    "claude-opus-5-5": "Claude Opus 5.5",
    "claude-sonnet-5-5": "Claude Sonnet 5.5",
    "claude-haiku-5-5": "Claude Haiku 5.5",
}


@dataclass(frozen=True)
class StreamError:
    """Anthropic-only script event: an `event: error` mid-stream (what the API sends when it is
    overloaded after the reply began). Nothing after it is sent."""

    type: str = "overloaded_error"
    message: str = "Overloaded"


class AnthropicServer(FakeVendorServer):
    name: ClassVar[str] = "anthropic"
    models: ClassVar[tuple[str, ...]] = tuple(MODEL_NAMES)

    def route(self, method: str, path: str) -> str | None:
        if method == "POST" and path == "/v1/messages":
            return "stream"
        if method == "GET" and path == "/v1/models":
            return "models"
        return None

    def stream_chunks(self, events: tuple[ScriptEvent, ...], request: RecordedRequest) -> list[bytes]:
        body = request.body if isinstance(request.body, dict) else {}
        return _MessageWriter(events, model=str(body.get("model", "claude-fake"))).chunks()

    def malformed_chunk(self) -> bytes:
        # Named, so the SDK parses it (it skips events without a name).
        return b"event: content_block_delta\ndata: {not json\n\n"

    def error_response(self, fail: Fail) -> tuple[dict[str, str], bytes]:
        error_type = ERROR_TYPES.get(fail.status) or ("api_error" if fail.status >= 500 else "invalid_request_error")
        message = fail.message
        if fail.status == 400 and "context" in fail.message.lower():
            message = "prompt is too long: 212345 tokens > 200000 maximum"
        payload = {"type": "error", "error": {"type": error_type, "message": message}, "request_id": "req_fake"}
        headers = {"Content-Type": "application/json", "request-id": "req_fake"}
        return headers, json.dumps(payload).encode()

    def models_body(self) -> bytes:
        data = [
            {
                "id": model,
                "type": "model",
                "display_name": MODEL_NAMES.get(model, model),
                "created_at": "2025-01-01T00:00:00Z",
                "lifecycle": "active",
            }
            for model in self.models
        ]
        first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
        return json.dumps({"data": data, "has_more": False, "first_id": first, "last_id": last}).encode()


class _MessageWriter:
    """Renders one script as Anthropic's event stream, keeping the content block indices."""

    def __init__(self, events: tuple[ScriptEvent | StreamError, ...], *, model: str) -> None:
        self.events = events
        self.model = model
        counts = [event for event in events if isinstance(event, Count)]
        self.count = counts[-1] if counts else Count(0, 0)
        self.index = -1
        self.open: str | None = None  # the kind of the open block: text, thinking or tool_use
        self.ended = False  # message_delta sent
        self.failed = False  # an error event sent: nothing follows

    def chunks(self) -> list[bytes]:
        chunks = [self.render(event) for event in self.events]
        if not self.failed:
            closing = b"" if self.ended else self.close_block() + self.message_delta("stop")
            chunks.append(closing + sse({"type": "message_stop"}, event="message_stop"))
        chunks[0] = self.message_start() + chunks[0]
        return chunks

    def render(self, event: ScriptEvent | StreamError) -> bytes:
        if self.failed or self.ended:
            return b""
        chunk = b""  # Count: the usage is reported in message_start and message_delta
        match event:
            case Say(text=text):
                chunk = self.open_block("text", {"type": "text", "text": ""})
                chunk += self.delta({"type": "text_delta", "text": text})
            case Think(text=text):
                chunk = self.open_block("thinking", {"type": "thinking", "thinking": "", "signature": ""})
                chunk += self.delta({"type": "thinking_delta", "thinking": text})
            case Call():
                chunk = self.tool_use(event)
            case End(reason=reason):
                chunk = self.close_block() + self.message_delta(reason)
            case StreamError(type=error_type, message=message):
                self.failed = True
                chunk = sse({"type": "error", "error": {"type": error_type, "message": message}}, event="error")
        return chunk

    def message_start(self) -> bytes:
        message = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self.count.input, "output_tokens": 1},
        }
        return sse({"type": "message_start", "message": message}, event="message_start") + sse(
            {"type": "ping"}, event="ping"
        )

    def open_block(self, kind: str, block: dict[str, Any]) -> bytes:
        if self.open == kind:
            return b""
        closing = self.close_block()
        self.index += 1
        self.open = kind
        return closing + sse(
            {"type": "content_block_start", "index": self.index, "content_block": block}, event="content_block_start"
        )

    def delta(self, delta: dict[str, Any]) -> bytes:
        return sse({"type": "content_block_delta", "index": self.index, "delta": delta}, event="content_block_delta")

    def close_block(self) -> bytes:
        if self.open is None:
            return b""
        # A thinking block ends with its signature (what lets it be sent back in a later turn).
        closing = (
            self.delta({"type": "signature_delta", "signature": "c2lnbmF0dXJl"}) if self.open == "thinking" else b""
        )
        self.open = None
        return closing + sse({"type": "content_block_stop", "index": self.index}, event="content_block_stop")

    def tool_use(self, call: Call) -> bytes:
        block = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
        out = self.open_block("tool_use", block)
        size = max(1, math.ceil(len(call.arguments) / max(1, call.chunks)))
        pieces = [call.arguments[start : start + size] for start in range(0, len(call.arguments), size)] or [""]
        for piece in pieces:
            out += self.delta({"type": "input_json_delta", "partial_json": piece})
        return out + self.close_block()

    def message_delta(self, reason: str) -> bytes:
        self.ended = True
        usage: dict[str, Any] = {"output_tokens": self.count.output}
        if self.count.reasoning:
            usage["output_tokens_details"] = {"thinking_tokens": self.count.reasoning}
        delta = {"stop_reason": STOP_REASONS.get(reason, "end_turn"), "stop_sequence": None}
        return sse({"type": "message_delta", "delta": delta, "usage": usage}, event="message_delta")


__all__ = ["AnthropicServer", "StreamError"]
