"""The Gemini API protocol, through the official SDK (`google.genai.Client(...).aio`).

Requests: the system prompt goes in `system_instruction`; user and `tool` turns are role "user"
(a tool result is a `function_response` named after the call it answers), assistant turns role
"model" (tool calls are `function_call` parts with parsed `args`). The API version is pinned to
`v1beta` (Google's documented surface; this SDK release defaults to `v1`). Thoughts are asked for
(`include_thoughts`) only from models that think (2.5 and later, "-latest" aliases, "thinking"
names): older models refuse a thinking config.

Stream: every chunk is a whole `GenerateContentResponse`. Gemini sends a function call whole,
so each becomes ToolCallStart, one ToolCallDelta (the args as JSON) and ToolCallEnd. Usage
arrives on every chunk and only the last counts: one `Usage`, then one `Finish`, end the
stream. A stream whose body ends or whose connection drops before a finish reason was cut off
and raises PROVIDER_DISCONNECTED.
The SDK never retries (`attempts=1`): retries and failover happen above the adapter.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import re
import ssl
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx2
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from providers.adapters.base import Adapter
from providers.adapters.clients import sdk_client, shared_http_client
from providers.adapters.wire import arguments_object, connection_lost, retry_after_header
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

API_VERSION = "v1beta"

# `HttpOptions.timeout` is one number (milliseconds) that the SDK uses twice: as httpx's connect,
# read and write timeout, and as the `X-Server-Timeout` header, Google's deadline for the whole
# reply. So it cannot be the first-token or idle timeout (a long reply would be cut server-side);
# those the base enforces. This is the longest a reply may take.
REPLY_DEADLINE = 600.0

# Gemini 3 refuses a replayed function call without the thought signature it was sent with; the
# contract does not keep signatures, so replayed calls carry the documented "skip" sentinel.
SKIP_THOUGHT_SIGNATURE = b"skip_thought_signature_validator"

FINISH_REASONS = {
    "STOP": FinishReason.STOP,
    "MAX_TOKENS": FinishReason.LENGTH,
    **dict.fromkeys(
        (
            "SAFETY",
            "RECITATION",
            "PROHIBITED_CONTENT",
            "BLOCKLIST",
            "SPII",
            "IMAGE_SAFETY",
            "IMAGE_PROHIBITED_CONTENT",
            "IMAGE_RECITATION",
            "MODEL_ARMOR",
        ),
        FinishReason.CONTENT_FILTER,
    ),
}

STATUS_CODES = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.AUTHENTICATION,
    403: ErrorCode.PERMISSION,
    404: ErrorCode.MODEL_NOT_FOUND,
    408: ErrorCode.TIMEOUT,
    413: ErrorCode.CONTEXT_TOO_LONG,
    429: ErrorCode.RATE_LIMITED,
}

_TOO_LONG = re.compile(r"token count|maximum number of tokens|too many tokens|context (?:length|window)", re.I)
# An invalid key is a 400 INVALID_ARGUMENT on the Gemini API, not a 401.
_BAD_KEY = re.compile(r"api key not valid|api_key_invalid", re.I)
_THINKING_VERSION = re.compile(r"gemini-(\d+)(?:\.(\d+))?")


class GoogleAdapter(Adapter):
    protocol = "google"

    async def _stream(self, request: ChatRequest) -> AsyncIterator[Event]:
        try:
            contents = gemini_contents(request.messages)
        except ValueError:  # binascii.Error: an image whose base64 does not decode
            raise ProviderError(ErrorCode.BAD_REQUEST, provider=self.endpoint.provider) from None
        translation = _Translation()
        async with self._client() as client:
            # A chunk came: the request was taken, so a lost connection now cuts the reply off.
            # (The SDK sends the request lazily, at the first read: before a chunk, a transport
            # error may be one of connecting.)
            streaming = False
            try:
                stream = await client.aio.models.generate_content_stream(
                    model=request.model, contents=contents, config=generation_config(request)
                )
                async for response in stream:
                    streaming = True
                    for event in translation.read(response):
                        yield event
            except (genai_errors.APIError, httpx2.HTTPError, httpx2.StreamError, ValueError) as error:
                if not (streaming and connection_lost(error)):  # a dropped connection is judged below
                    raise provider_error(error, provider=self.endpoint.provider) from None
        if translation.finish is None:  # the body ended or dropped before a finish reason
            raise ProviderError(ErrorCode.PROVIDER_DISCONNECTED, provider=self.endpoint.provider)
        yield translation.usage
        yield Finish(reason=translation.finish)

    async def list_models(self) -> list[str]:
        """The models that can chat (`generateContent`), without the "models/" prefix."""
        timeouts = self.endpoint.timeouts
        async with self._client() as client:
            try:
                async with asyncio.timeout(timeouts.connect + timeouts.first_token):
                    pager = await client.aio.models.list()
                    return [
                        (model.name or "").removeprefix("models/")
                        async for model in pager
                        if model.name
                        and (model.supported_actions is None or "generateContent" in model.supported_actions)
                    ]
            except TimeoutError:
                raise ProviderError(ErrorCode.TIMEOUT, provider=self.endpoint.provider) from None
            except (genai_errors.APIError, httpx2.HTTPError, ValueError) as error:
                raise provider_error(error, provider=self.endpoint.provider) from None

    @contextlib.asynccontextmanager
    async def _client(self) -> AsyncIterator[genai.Client]:
        """A client for one call: kept for the loop on the shared httpx2 client (`sdk_client`), or
        made anew on an endpoint's own (its route closes that one). Always httpx2: the SDK would
        switch to aiohttp were it installed."""
        endpoint = self.endpoint
        if not endpoint.api_key:
            # The SDK would fall back to the server's own GOOGLE_API_KEY / GEMINI_API_KEY and send
            # it to whatever base_url this endpoint names.
            raise ProviderError(ErrorCode.AUTHENTICATION, provider=endpoint.provider)

        def make(http_client: httpx2.AsyncClient) -> genai.Client:
            context = _ssl_context()
            options = types.HttpOptions(
                base_url=endpoint.base_url or None,
                api_version=API_VERSION,
                timeout=int(REPLY_DEADLINE * 1000),
                retry_options=types.HttpRetryOptions(attempts=1),
                httpx_async_client=http_client,
                # The SDK builds a sync and a websocket TLS context per client (~20 ms of CPU each)
                # unless given one: share one per process.
                client_args={"verify": context},
                async_client_args={"ssl": context},
            )
            # vertexai=False: never let GOOGLE_GENAI_USE_VERTEXAI in the environment redirect the call.
            return genai.Client(vertexai=False, api_key=endpoint.api_key, http_options=options)

        if endpoint.http_client is not None:
            yield make(endpoint.http_client)
        else:
            yield sdk_client(("google", endpoint.api_key, endpoint.base_url), lambda: make(shared_http_client()))


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    return httpx2.create_ssl_context()


# --- Requests ------------------------------------------------------------------------------
def generation_config(request: ChatRequest) -> types.GenerateContentConfig:
    config = types.GenerateContentConfig(
        system_instruction=request.system or None,
        temperature=request.temperature,
        max_output_tokens=request.max_tokens,
        # Declarations only, never Python callables: nothing for the SDK to call by itself.
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    if request.tools:
        declarations = [
            types.FunctionDeclaration(
                name=tool.name,
                description=tool.description or None,
                parameters_json_schema=tool.parameters or {"type": "object", "properties": {}},
            )
            for tool in request.tools
        ]
        config.tools = [types.Tool(function_declarations=declarations)]
    if thinks(request.model):
        config.thinking_config = types.ThinkingConfig(include_thoughts=True)
    return config


def thinks(model: str) -> bool:
    """Whether the model accepts a thinking config: Gemini 2.5 and later, the "-latest" aliases
    (2.5 or later today), and any model named "thinking"."""
    name = model.rsplit("/", 1)[-1].lower()
    if "thinking" in name or (name.startswith("gemini-") and name.endswith("-latest")):
        return True
    match = _THINKING_VERSION.match(name)
    return match is not None and (int(match[1]), int(match[2] or 0)) >= (2, 5)


def gemini_contents(messages: tuple[ChatMessage, ...]) -> list[types.Content]:
    """Contract turns as Gemini contents; consecutive `tool` turns (answers to one reply's
    parallel calls) share one user content, as Gemini expects."""
    names = {call.id: call.name for message in messages for call in message.tool_calls}
    contents: list[types.Content] = []
    previous = ""
    for message in messages:
        parts = _parts(message, names)
        if not parts:  # the API refuses a content without parts
            continue
        if message.role == "tool" and previous == "tool":
            contents[-1].parts = [*(contents[-1].parts or []), *parts]
        else:
            contents.append(types.Content(role="model" if message.role == "assistant" else "user", parts=parts))
        previous = message.role
    return contents


def _parts(message: ChatMessage, names: dict[str, str]) -> list[types.Part]:
    if message.role == "tool":
        call_id = message.tool_call_id or ""
        text = "".join(part.text for part in message.parts if isinstance(part, TextPart))
        response = types.FunctionResponse(id=call_id or None, name=names.get(call_id, ""), response=_result(text))
        return [types.Part(function_response=response)]
    parts: list[types.Part] = []
    for part in message.parts:
        if isinstance(part, ImagePart):
            data = base64.b64decode(part.data_base64, validate=True)
            parts.append(types.Part(inline_data=types.Blob(mime_type=part.media_type, data=data)))
        elif part.text:  # the API refuses empty text parts
            parts.append(types.Part(text=part.text))
    if message.role == "assistant":
        parts += [
            types.Part(
                function_call=types.FunctionCall(
                    id=call.id or None, name=call.name, args=arguments_object(call.arguments)
                ),
                thought_signature=SKIP_THOUGHT_SIGNATURE,
            )
            for call in message.tool_calls
        ]
    return parts


def _result(text: str) -> dict[str, Any]:
    """A tool's result as the response object: a JSON object as is, anything else under
    "output" (the key Gemini documents for a function's output)."""
    try:
        value = json.loads(text)
    except ValueError:
        return {"output": text}
    return value if isinstance(value, dict) else {"output": value}


# --- Stream --------------------------------------------------------------------------------
class _Translation:
    """GenerateContentResponse chunks → contract events, keeping what spans chunks: the tool
    call numbering, the latest usage, and the finish reason."""

    def __init__(self) -> None:
        self.calls = 0
        self.usage = Usage()
        self.finish: FinishReason | None = None

    def read(self, response: types.GenerateContentResponse) -> list[Event]:
        if response.usage_metadata is not None:
            self.usage = _usage(response.usage_metadata)
        feedback = response.prompt_feedback
        if feedback is not None and feedback.block_reason is not None:  # the prompt was refused: no candidates
            self.finish = FinishReason.CONTENT_FILTER
        if not response.candidates:
            return []
        candidate = response.candidates[0]
        events: list[Event] = []
        for part in (candidate.content.parts if candidate.content else None) or []:
            events += self._part(part)
        if candidate.finish_reason is not None:
            self.finish = self._finish(str(getattr(candidate.finish_reason, "value", candidate.finish_reason)))
        return events

    def _part(self, part: types.Part) -> list[Event]:
        if part.function_call is not None:
            call = part.function_call
            index = self.calls
            self.calls += 1
            # The Gemini API may leave the id out: the contract needs one to match the result.
            call_id = call.id or f"call_{uuid.uuid4().hex[:24]}"
            return [
                ToolCallStart(index=index, id=call_id, name=call.name or ""),
                ToolCallDelta(index=index, arguments=json.dumps(call.args or {}, ensure_ascii=False)),
                ToolCallEnd(index=index),
            ]
        if part.text:
            return [ReasoningDelta(part.text) if part.thought else TextDelta(part.text)]
        return []  # empty text, a bare thought signature, executable code…: nothing the contract carries

    def _finish(self, reason: str) -> FinishReason:
        finish = FINISH_REASONS.get(reason, FinishReason.OTHER)
        if finish is FinishReason.STOP and self.calls:
            return FinishReason.TOOL_CALLS  # Gemini ends a reply that calls tools with STOP
        return finish


def _usage(metadata: types.GenerateContentResponseUsageMetadata) -> Usage:
    """Input counts the prompt (cached part included) and tool-use prompts; output counts the
    reply and the thoughts, as Google bills them (and as OpenAI and Anthropic report them)."""
    thoughts = metadata.thoughts_token_count or 0
    return Usage(
        input_tokens=(metadata.prompt_token_count or 0) + (metadata.tool_use_prompt_token_count or 0),
        output_tokens=(metadata.candidates_token_count or 0) + thoughts,
        reasoning_tokens=thoughts,
    )


# --- Errors --------------------------------------------------------------------------------
def provider_error(error: Exception, *, provider: str) -> ProviderError:
    """An SDK, transport or parsing error as a ProviderError with the user-safe default message
    (an SDK message may quote the request or the vendor's payload)."""
    retry_after = None
    if isinstance(error, httpx2.TimeoutException):
        code = ErrorCode.TIMEOUT
    elif isinstance(error, genai_errors.APIError):
        code = _status_error_code(error)
        if code is ErrorCode.RATE_LIMITED:
            retry_after = retry_after_seconds(error)
    else:  # connection refused or dropped, a chunk that does not parse, an unexpected payload
        code = ErrorCode.PROVIDER_UNAVAILABLE
    return ProviderError(code, retry_after=retry_after, provider=provider)


def _status_error_code(error: genai_errors.APIError) -> ErrorCode:
    status = error.code if isinstance(error.code, int) else 0
    if status >= 500 or status < 400:
        return ErrorCode.PROVIDER_UNAVAILABLE
    code = STATUS_CODES.get(status, ErrorCode.BAD_REQUEST)
    if code is ErrorCode.BAD_REQUEST:
        message = f"{error.message or ''} {json.dumps(error.details, default=str)}"
        if _BAD_KEY.search(message):
            return ErrorCode.AUTHENTICATION
        if _TOO_LONG.search(message):
            return ErrorCode.CONTEXT_TOO_LONG
    return code


def retry_after_seconds(error: genai_errors.APIError) -> float | None:
    """Seconds to wait: the Retry-After header, else the RetryInfo detail Google sends
    ("retryDelay": "37s"), else None."""
    headers = getattr(error.response, "headers", None)
    from_header = retry_after_header(headers.get("retry-after") if headers is not None else None)
    if from_header is not None:
        return from_header
    body = error.details if isinstance(error.details, dict) else {}
    inner = body.get("error")
    details = (inner if isinstance(inner, dict) else body).get("details")
    for detail in details if isinstance(details, list) else ():
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            with contextlib.suppress(ValueError):
                return max(float(delay[:-1]), 0.0)
    return None
