"""A fake Gemini API: `POST /{version}/models/{model}:streamGenerateContent?alt=sse` and
`GET /{version}/models`, as the google-genai SDK calls them (`v1` is that SDK's default, `v1beta`
what Google's REST docs use; both are served, as Google serves both).

The stream is server-sent events of whole `GenerateContentResponse` objects: each chunk carries
`candidates[0].content.parts` (`text`, thought parts `{"text", "thought": true}`, or a whole
`functionCall` with its `id` and parsed `args`; Gemini never sends argument pieces), and, when
the script has a `Count`, a running `usageMetadata` (the prompt count on every chunk, the full
counts on the last). The last chunk has the `finishReason`. Gemini has no "tool calls" finish
reason: a reply that calls tools ends with STOP, as the real API's does.

Chunk positions follow the script (what the faults count): chunk N is script event N; a `Count`
renders no chunk of its own.
"""

from __future__ import annotations

import json
import re
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

FINISH_REASONS = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP", "content_filter": "SAFETY"}

STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

TOO_LONG_MESSAGE = "The input token count (1048577) exceeds the maximum number of tokens allowed (1048576)."

MODEL_NAMES = {
    "gemini-2.5-pro": "Gemini 2.5 Pro",
    "gemini-2.5-flash": "Gemini 2.5 Flash",
    "gemini-2.0-flash": "Gemini 2.0 Flash",
}

# Listed by the real API too, but it cannot chat: a client must skip it.
EMBEDDING_MODEL = {
    "name": "models/text-embedding-004",
    "version": "004",
    "displayName": "Text Embedding 004",
    "inputTokenLimit": 2048,
    "outputTokenLimit": 1,
    "supportedGenerationMethods": ["embedContent"],
}

_STREAM_PATH = re.compile(r"^/v1(?:beta|alpha)?/models/(?P<model>[^/:]+):streamGenerateContent$")
_MODELS_PATH = re.compile(r"^/v1(?:beta|alpha)?/models$")

# What Gemini 3 puts on a reply's first function call part (opaque base64 to a client).
FAKE_THOUGHT_SIGNATURE = "ZmFrZS10aG91Z2h0LXNpZ25hdHVyZQ=="


@dataclass(frozen=True)
class PromptBlocked:
    """Gemini-only script event: the prompt was refused, so the one chunk has `promptFeedback`
    with a block reason and no candidates. Nothing after it is sent."""

    reason: str = "SAFETY"


@dataclass(frozen=True)
class StreamError:
    """Gemini-only script event: an error object as a stream chunk (the status was already 200).
    Nothing after it is sent."""

    code: int = 503
    message: str = "The model is overloaded. Please try again later."


class GeminiServer(FakeVendorServer):
    name: ClassVar[str] = "gemini"
    models: ClassVar[tuple[str, ...]] = tuple(MODEL_NAMES)

    def route(self, method: str, path: str) -> str | None:
        if method == "POST" and _STREAM_PATH.match(path):
            return "stream"
        if method == "GET" and _MODELS_PATH.match(path):
            return "models"
        return None

    def stream_chunks(self, events: tuple[ScriptEvent, ...], request: RecordedRequest) -> list[bytes]:
        match = _STREAM_PATH.match(request.path.split("?", 1)[0])
        model = match["model"] if match else "gemini-fake"
        return _ResponseWriter(events, model=model).chunks()

    def error_response(self, fail: Fail) -> tuple[dict[str, str], bytes]:
        status = STATUSES.get(fail.status) or ("INTERNAL" if fail.status >= 500 else "FAILED_PRECONDITION")
        message = fail.message
        if fail.status == 400 and "context" in fail.message.lower():
            message = TOO_LONG_MESSAGE
        error: dict[str, Any] = {"code": fail.status, "message": message, "status": status}
        if fail.status == 429 and fail.retry_after is not None:
            # Google says when to retry in the error's details (the base adds a Retry-After header too).
            error["details"] = [
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{fail.retry_after:g}s"}
            ]
        return {"Content-Type": "application/json; charset=UTF-8"}, json.dumps({"error": error}).encode()

    def models_body(self) -> bytes:
        listed = [
            {
                "name": f"models/{model}",
                "version": "001",
                "displayName": MODEL_NAMES.get(model, model),
                "inputTokenLimit": 1048576,
                "outputTokenLimit": 65536,
                "supportedGenerationMethods": ["generateContent", "countTokens"],
                "thinking": model.startswith("gemini-2.5"),
            }
            for model in self.models
        ]
        return json.dumps({"models": [*listed, EMBEDDING_MODEL]}).encode()


class _ResponseWriter:
    """Renders one script as a stream of GenerateContentResponse chunks."""

    def __init__(self, events: tuple[ScriptEvent | PromptBlocked | StreamError, ...], *, model: str) -> None:
        self.events = events
        self.model = model
        counts = [event for event in events if isinstance(event, Count)]
        self.count = counts[-1] if counts else None
        self.signed = False  # the first function call carries the thought signature
        self.over = False  # a blocked prompt or an error was sent: nothing follows

    def chunks(self) -> list[bytes]:
        return [self.render(event) for event in self.events]

    def render(self, event: ScriptEvent | PromptBlocked | StreamError) -> bytes:
        match event:
            case _ if self.over:
                pass
            case PromptBlocked() | StreamError():
                self.over = True
                return self.stopping(event)
            case Say(text=text):
                return self.chunk([{"text": text}])
            case Think(text=text):
                return self.chunk([{"text": text, "thought": True}])
            case Call():
                return self.chunk([self.function_call(event)])
            case End(reason=reason):
                return self.end(reason)
        return b""  # Count: reported in every chunk's usageMetadata; nothing after a stopping event

    def stopping(self, event: PromptBlocked | StreamError) -> bytes:
        if isinstance(event, StreamError):
            status = STATUSES.get(event.code, "INTERNAL")
            return sse({"error": {"code": event.code, "message": event.message, "status": status}})
        feedback = {"blockReason": event.reason, "safetyRatings": []}
        usage = _usage(self.count or Count(0, 0), final=False)
        return sse({"promptFeedback": feedback, "usageMetadata": usage, "modelVersion": self.model})

    def chunk(self, parts: list[dict[str, Any]]) -> bytes:
        candidate = {"content": {"parts": parts, "role": "model"}, "index": 0}
        return sse(self.response(candidate, final=False))

    def function_call(self, call: Call) -> dict[str, Any]:
        try:
            args = json.loads(call.arguments) if call.arguments.strip() else {}
        except ValueError:
            args = {}
        part: dict[str, Any] = {"functionCall": {"id": call.id, "name": call.name, "args": args}}
        if not self.signed:
            self.signed = True
            part["thoughtSignature"] = FAKE_THOUGHT_SIGNATURE
        return part

    def end(self, reason: str) -> bytes:
        finish = FINISH_REASONS.get(reason, reason.upper())
        candidate: dict[str, Any] = {"finishReason": finish, "index": 0}
        if finish == "SAFETY":  # a blocked candidate has ratings and no content
            candidate["safetyRatings"] = [
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}
            ]
        else:
            candidate["content"] = {"parts": [{"text": ""}], "role": "model"}
        return sse(self.response(candidate, final=True))

    def response(self, candidate: dict[str, Any], *, final: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"candidates": [candidate]}
        if self.count is not None:
            body["usageMetadata"] = _usage(self.count, final=final)
        body["modelVersion"] = self.model
        body["responseId"] = "fake-response-id"
        return body


def _usage(count: Count, *, final: bool) -> dict[str, Any]:
    if not final:  # what the real API sends mid-stream
        return {"promptTokenCount": count.input, "totalTokenCount": count.input}
    usage = {
        "promptTokenCount": count.input,
        "candidatesTokenCount": count.output,
        "totalTokenCount": count.input + count.output + count.reasoning,
    }
    if count.reasoning:
        usage["thoughtsTokenCount"] = count.reasoning
    return usage


__all__ = ["FAKE_THOUGHT_SIGNATURE", "GeminiServer", "PromptBlocked", "StreamError"]
