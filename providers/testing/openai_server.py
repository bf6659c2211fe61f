"""A fake OpenAI Chat Completions server (also what OpenAI-compatible servers speak).

POST /v1/images/generations answers a one-pixel PNG (`FAKE_PNG`) as base64, as gpt-image-1 does.
POST /v1/chat/completions answers the scripted reply as the real streaming wire format:
`data: {chat.completion.chunk}` server-sent events ending with `data: [DONE]`. Text is
`delta.content`, reasoning is `delta.<reasoning_field>` (`reasoning_content` as DeepSeek and
vLLM write it; OpenRouter and Ollama write `reasoning`), tool calls are `delta.tool_calls` (the
first piece carries id and name, later pieces the arguments), the finish reason rides on the last
choice chunk, and usage comes in a final chunk with no choices, only when the request asked for
it with `stream_options.include_usage` (as OpenAI does). GET /v1/models answers the model list.
Errors use OpenAI's `{"error": {"message", "type", "param", "code"}}` shape.
"""

from __future__ import annotations

import base64
import itertools
import json
import time
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

_ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


# A real 1x1 PNG (one red pixel): what the fake images endpoint draws.
FAKE_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)


class OpenAIServer(FakeVendorServer):
    name: ClassVar[str] = "openai"
    models: ClassVar[tuple[str, ...]] = ("gpt-4o", "gpt-4o-mini", "o4-mini")
    reasoning_field: ClassVar[str] = "reasoning_content"

    _ids = itertools.count(1)

    def route(self, method: str, path: str) -> str | None:
        if method == "POST" and path == "/v1/chat/completions":
            return "stream"
        if method == "GET" and path == "/v1/models":
            return "models"
        if method == "POST" and path == "/v1/images/generations":
            return "images"
        return None

    def stream_chunks(self, events: tuple[ScriptEvent, ...], request: RecordedRequest) -> list[bytes]:
        body = request.body if isinstance(request.body, dict) else {}
        stream = _ChunkWriter(model=str(body.get("model") or "gpt-4o"), reasoning_field=self.reasoning_field)
        chunks: list[bytes] = []
        count = Count(0, 0)
        for event in events:
            match event:
                case Say(text=text):
                    chunks.append(stream.delta({"content": text}))
                case Think(text=text):
                    chunks.append(stream.delta({self.reasoning_field: text}))
                case Call():
                    chunks.append(stream.tool_call(event))
                case Count():
                    count = event
                    chunks.append(b"")
                case End(reason=reason):
                    chunks.append(stream.delta({}, finish_reason=reason))
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append(stream.usage(count))
        chunks.append(b"data: [DONE]\n\n")
        return chunks

    def error_response(self, fail: Fail) -> tuple[dict[str, str], bytes]:
        kind, code = _ERROR_KINDS.get(
            fail.status, ("server_error" if fail.status >= 500 else "invalid_request_error", None)
        )
        lowered = fail.message.lower()
        if fail.status == 400 and "context" in lowered:
            code = "context_length_exceeded"
        elif fail.status == 400 and "filter" in lowered:
            code = "content_filter"
        error = {"message": fail.message, "type": kind, "param": None, "code": code}
        return {"Content-Type": "application/json"}, json.dumps({"error": error}).encode()

    def models_body(self) -> bytes:
        data = [{"id": model, "object": "model", "created": 1700000000, "owned_by": "fake"} for model in self.models]
        return json.dumps({"object": "list", "data": data}).encode()

    def images_body(self, request: RecordedRequest) -> bytes:
        """`FAKE_PNG` as gpt-image-1 answers: base64 in `data[0].b64_json`, with token usage."""
        usage = {"input_tokens": 12, "output_tokens": 272, "total_tokens": 284}
        body = {
            "created": int(time.time()),
            "data": [{"b64_json": base64.b64encode(FAKE_PNG).decode()}],
            "usage": usage,
        }
        return json.dumps(body).encode()


class _ChunkWriter:
    """The chunks of one response: one id and model, the role on the first delta, tool call
    indexes counted per response."""

    def __init__(self, *, model: str, reasoning_field: str) -> None:
        self.id = f"chatcmpl-fake{next(OpenAIServer._ids)}"
        self.created = int(time.time())
        self.model = model
        self.reasoning_field = reasoning_field
        self.first = True
        self.calls = 0

    def _chunk(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
        payload: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_fake",
            "choices": choices,
        }
        if usage is not None:
            payload["usage"] = usage
        return sse(payload)

    def delta(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        if self.first:
            delta = {"role": "assistant", **delta}
            self.first = False
        return self._chunk([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}])

    def tool_call(self, call: Call) -> bytes:
        """One wire chunk of several events: id and name first, then the arguments in pieces."""
        index = self.calls
        self.calls += 1
        head = {"index": index, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
        events = [self.delta({"content": None, "tool_calls": [head]})]
        for piece in _pieces(call.arguments, call.chunks):
            events.append(self.delta({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
        return b"".join(events)

    def usage(self, count: Count) -> bytes:
        usage = {
            "prompt_tokens": count.input,
            "completion_tokens": count.output,
            "total_tokens": count.input + count.output,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": count.reasoning, "audio_tokens": 0},
        }
        return self._chunk([], usage=usage)


def _pieces(text: str, count: int) -> list[str]:
    """`text` in `count` nearly equal pieces (fewer when it is shorter)."""
    count = max(1, min(count, len(text)))
    size, extra = divmod(len(text), count)
    pieces, start = [], 0
    for number in range(count):
        end = start + size + (1 if number < extra else 0)
        pieces.append(text[start:end])
        start = end
    return pieces


__all__ = ["FAKE_PNG", "OpenAIServer"]
