"""The OpenAI-compatible API (`/v1/…`), for the tools people already own (the OpenAI SDKs,
editors' AI plugins, CLIs), authenticated by a personal access token (`accounts.tokens`).

Its own ninja API, apart from Arbor's `/api/`: requests and answers take OpenAI's shapes, errors
too (`{"error": {"message", "type", "param", "code"}}`), and only a bearer token signs in (no
session, so no CSRF). Served: `GET /v1/models` (what the token's user may pick) and
`POST /v1/chat/completions` (text, streamed or not: `gateway.services`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import orjson
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils.cache import add_never_cache_headers
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from pydantic import ConfigDict, Field

from accounts.api import PersonalTokenAuth
from common.errors import ArborError
from gateway.images import image_part
from gateway.services import Completion, CompletionRefused, completion_admit, completion_create, completion_stream
from providers.contract import ChatMessage, ImagePart, TextPart, ToolCall, ToolSpec
from providers.selectors import models_available_to

MAX_MESSAGES = 1_000
MAX_TEXT_CHARACTERS = 400_000  # of all messages together: a long context, not an unbounded one
MAX_TOOLS = 128  # as OpenAI allows

# OpenAI's error `type` for each status Arbor answers with.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


class GatewayAPI(NinjaAPI):
    def create_response(self, request: HttpRequest, data: Any, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().create_response(request, data, *args, **kwargs)
        add_never_cache_headers(response)
        return response


v1 = GatewayAPI(
    title="Arbor: OpenAI-compatible API",
    version="1",
    description="Call Arbor's models with an OpenAI client: base URL `<arbor>/v1`, API key a personal access token.",
    urls_namespace="v1",
    auth=PersonalTokenAuth(),
    docs_url=None,
    openapi_url="/openapi.json",
)


def _error_body(status: int, message: str, code: str, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error object, as an answer's body or a stream's last event."""
    return {"error": {"message": message, "type": ERROR_TYPES.get(status, "api_error"), "param": param, "code": code}}


def openai_error(status: int, message: str, code: str, param: str | None = None) -> JsonResponse:
    response = JsonResponse(_error_body(status, message, code, param), status=status)
    add_never_cache_headers(response)
    return response


@v1.exception_handler(ArborError)
def _arbor_error(request: HttpRequest, error: ArborError) -> HttpResponse:
    response = openai_error(error.status_code, error.message, error.code, next(iter(error.fields or {}), None))
    for name, value in error.headers.items():
        response[name] = value
    return response


@v1.exception_handler(AuthenticationError)
def _not_authenticated(request: HttpRequest, error: AuthenticationError) -> HttpResponse:
    return openai_error(401, "Send a personal access token: `Authorization: Bearer arb_…`.", "invalid_api_key")


@v1.exception_handler(ValidationError)
def _invalid(request: HttpRequest, error: ValidationError) -> HttpResponse:
    problem = error.errors[0] if error.errors else {}
    loc = [str(part) for part in problem.get("loc", ())]
    param = ".".join(loc[2:] if loc[:1] == ["body"] else loc[1:]) or None
    return openai_error(400, str(problem.get("msg", "Invalid request.")), "invalid_request", param)


@v1.exception_handler(HttpError)
def _http_error(request: HttpRequest, error: HttpError) -> HttpResponse:
    return openai_error(error.status_code, str(error.message), ERROR_TYPES.get(error.status_code, "api_error"))


class ModelEntry(Schema):
    id: str
    object: Literal["model"] = "model"
    created: int = 0  # Arbor does not date its catalog entries; OpenAI's clients do not need it
    owned_by: str


class ModelList(Schema):
    object: Literal["list"] = "list"
    data: list[ModelEntry]


@v1.get("/models", response=ModelList, summary="The models the token's user may use")
def models_list(request: HttpRequest) -> ModelList:
    options = models_available_to(request.auth)
    return ModelList(
        data=[ModelEntry(id=option.model_id, owned_by="you" if option.byok else "arbor") for option in options]
    )


class TextContent(Schema):
    type: Literal["text"]
    text: str


class ImageURL(Schema):
    url: str
    detail: str | None = None


class ImageContent(Schema):
    type: Literal["image_url"]
    image_url: ImageURL


class FunctionCall(Schema):
    name: str
    arguments: str


class ToolCallIn(Schema):
    model_config = ConfigDict(extra="ignore")

    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(Schema):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[Annotated[TextContent | ImageContent, Field(discriminator="type")]] | None = None
    tool_calls: list[ToolCallIn] | None = None  # an assistant's, as an earlier answer gave them
    tool_call_id: str | None = None  # a tool message's: the call it answers

    def as_contract(self) -> ChatMessage:
        if self.role == "tool":
            if not self.tool_call_id:
                raise ArborError("A tool message names its `tool_call_id`.", fields={"messages": []})
            return ChatMessage(role="tool", parts=(TextPart(self.text()),), tool_call_id=self.tool_call_id)
        calls = tuple(ToolCall(call.id, call.function.name, call.function.arguments) for call in self.tool_calls or ())
        return ChatMessage(
            role="assistant" if self.role == "assistant" else "user", parts=self.parts(), tool_calls=calls
        )

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content if isinstance(part, TextContent))
        return self.content or ""

    def parts(self) -> tuple[TextPart | ImagePart, ...]:
        """The message as the contract's parts: its text, then its images (user messages only)."""
        images = [part for part in self.content or () if isinstance(part, ImageContent)]
        if images and self.role != "user":
            raise ArborError("Only user messages carry images.", fields={"messages": []})
        text = self.text()
        return (
            *((TextPart(text),) if text or not images else ()),
            *(image_part(image.image_url.url) for image in images),
        )


class FunctionSpec(Schema):
    model_config = ConfigDict(extra="ignore")

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class ToolIn(Schema):
    type: Literal["function"]
    function: FunctionSpec


class StreamOptions(Schema):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class CompletionRequest(Schema):
    """OpenAI's request; fields Arbor does not act on (n, logprobs, seed, …) are ignored."""

    model_config = ConfigDict(extra="ignore")

    model: Annotated[str, Field(min_length=1, max_length=200)]
    messages: Annotated[list[Message], Field(min_length=1, max_length=MAX_MESSAGES)]
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    tools: Annotated[list[ToolIn], Field(max_length=MAX_TOOLS)] | None = None


class ToolCallOut(Schema):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class AnswerMessage(Schema):
    role: Literal["assistant"] = "assistant"
    content: str | None
    tool_calls: list[ToolCallOut] | None = None


class Choice(Schema):
    index: int = 0
    message: AnswerMessage
    finish_reason: str


class CompletionUsage(Schema):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class CompletionAnswer(Schema):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage


@v1.post("/chat/completions", response=CompletionAnswer, summary="A chat completion (text), streamed or not")
async def chat_completions(request: HttpRequest, body: CompletionRequest) -> Any:
    if sum(len(message.text()) for message in body.messages) > MAX_TEXT_CHARACTERS:
        raise ArborError(f"The messages hold more than {MAX_TEXT_CHARACTERS} characters.", fields={"messages": []})
    system = "\n\n".join(message.text() for message in body.messages if message.role in ("system", "developer"))
    conversation = tuple(
        message.as_contract() for message in body.messages if message.role not in ("system", "developer")
    )
    if not conversation:
        raise ArborError("Send at least one user message.", fields={"messages": []})
    call = {
        "user": request.auth,
        "model_id": body.model,
        "system": system,
        "messages": conversation,
        "max_tokens": body.max_completion_tokens or body.max_tokens,
        "temperature": body.temperature,
        "tools": tuple(
            ToolSpec(tool.function.name, tool.function.description, tool.function.parameters)
            for tool in body.tools or ()
        ),
    }
    admitted = await completion_admit(**call)
    if body.stream:
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        events = _events(completion_stream(admitted), model_id=admitted.route.model_id, include_usage=include_usage)
        response = StreamingHttpResponse(events, content_type="text/event-stream")
        response["X-Accel-Buffering"] = "no"  # a proxy must pass each chunk on as it comes
        add_never_cache_headers(response)
        return response
    done = await completion_create(admitted)
    return CompletionAnswer(
        id=f"chatcmpl-{uuid.uuid4().hex}",
        created=int(time.time()),
        model=done.model_id,
        choices=[Choice(message=_answer(done), finish_reason=done.finish_reason)],
        usage=_usage(done),
    )


def _tool_calls(done: Completion) -> list[ToolCallOut]:
    return [
        ToolCallOut(id=call.id, function=FunctionCall(name=call.name, arguments=call.arguments))
        for call in done.tool_calls
    ]


def _answer(done: Completion) -> AnswerMessage:
    calls = _tool_calls(done)
    return AnswerMessage(content=done.text if done.text or not calls else None, tool_calls=calls or None)


def _usage(done: Completion) -> CompletionUsage:
    usage = done.usage
    return CompletionUsage(
        prompt_tokens=usage.input_tokens,
        completion_tokens=usage.output_tokens,
        total_tokens=usage.input_tokens + usage.output_tokens,
    )


async def _events(
    pieces: AsyncIterator[str | Completion], *, model_id: str, include_usage: bool
) -> AsyncIterator[bytes]:
    """OpenAI's server-sent events: a `chat.completion.chunk` per piece of text, one with the
    finish reason, one with the usage when asked for, then `[DONE]`. A failure after the
    stream began is an `error` event (OpenAI's SDKs raise it)."""
    head = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model_id,
    }

    def event(data: Any) -> bytes:
        return b"data: " + orjson.dumps(data) + b"\n\n"

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        return event({**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]})

    yield chunk({"role": "assistant", "content": ""})
    try:
        async for piece in pieces:
            if isinstance(piece, Completion):
                calls = [{"index": index, **call.model_dump()} for index, call in enumerate(_tool_calls(piece))]
                if calls:
                    yield chunk({"tool_calls": calls})  # type: ignore[dict-item]
                yield chunk({}, piece.finish_reason)
                if include_usage:
                    yield event({**head, "choices": [], "usage": _usage(piece).model_dump()})
            else:
                yield chunk({"content": piece})
    except CompletionRefused as failure:
        yield event(_error_body(failure.status_code, failure.message, failure.code))
    yield b"data: [DONE]\n\n"
