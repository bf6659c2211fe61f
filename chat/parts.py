"""The parts of a message as they are stored (`Message.content`, a JSON list), in one place.

A user message holds image parts then one text part; a reply holds its reasoning, text, tool
calls and their results in the order they were written (`chat.reply.Reply`). Everything that
writes parts builds them here, and everything that reads them (prompts, titles, the API, export,
the browser through the API) reads these shapes:

    {"type": "text", "text": …}
    {"type": "reasoning", "text": …}
    {"type": "image", "upload_id": "<uuid>", "media_type": "image/png"}
    {"type": "tool_call", "id": …, "name": …, "arguments": "<JSON text>"}
    {"type": "tool_result", "tool_call_id": …, "name": …, "text": …, "error": bool, "data": {…}}

Parts are kept as plain dicts (TypedDicts): they go to and from jsonb as they are, with no
conversion on the hot path. A reader meets rows written by older versions too, so readers are
lenient: a part that is not a dict is skipped, a missing text is "".
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Literal, TypedDict


class TextPart(TypedDict):
    type: Literal["text"]
    text: str


class ReasoningPart(TypedDict):
    type: Literal["reasoning"]
    text: str


class ImagePart(TypedDict):
    type: Literal["image"]
    upload_id: str
    media_type: str


class ToolCallPart(TypedDict):
    type: Literal["tool_call"]
    id: str
    name: str
    arguments: str  # the JSON text the model wrote (it may not parse)


class ToolResultPart(TypedDict):
    type: Literal["tool_result"]
    tool_call_id: str
    name: str
    text: str  # what the model is sent back
    error: bool
    data: dict[str, Any]  # what the browser shows (a document card), never sent to the model


Part = TextPart | ReasoningPart | ImagePart | ToolCallPart | ToolResultPart
PartType = Literal["text", "reasoning", "image", "tool_call", "tool_result"]


# --- Writing ------------------------------------------------------------------------------------
def text_part(text: str) -> TextPart:
    return {"type": "text", "text": text}


def reasoning_part(text: str) -> ReasoningPart:
    return {"type": "reasoning", "text": text}


def image_part(upload_id: str, media_type: str) -> ImagePart:
    return {"type": "image", "upload_id": upload_id, "media_type": media_type}


def tool_call_part(*, id: str, name: str, arguments: str) -> ToolCallPart:
    return {"type": "tool_call", "id": id, "name": name, "arguments": arguments}


def tool_result_part(*, tool_call_id: str, name: str, text: str, error: bool, data: dict[str, Any]) -> ToolResultPart:
    return {
        "type": "tool_result",
        "tool_call_id": tool_call_id,
        "name": name,
        "text": text,
        "error": error,
        "data": data,
    }


def written_parts(*, text: str, reasoning: str = "") -> list[Part]:
    """The parts of a reply known only by its text and reasoning (one rebuilt from its stream):
    reasoning first, as it was written; an empty one is left out."""
    parts: list[Part] = []
    if reasoning:
        parts.append(reasoning_part(reasoning))
    if text:
        parts.append(text_part(text))
    return parts


# --- Reading ------------------------------------------------------------------------------------
def content_parts(content: str | bytes | Iterable[Any] | None) -> list[dict[str, Any]]:
    """A message's parts, whether the row holds them as JSON text (a raw cursor) or decoded."""
    if isinstance(content, str | bytes):
        content = json.loads(content) if content else []
    return [part for part in content or () if isinstance(part, dict)]


def parts_of_type(content: str | bytes | Iterable[Any] | None, kind: PartType) -> list[dict[str, Any]]:
    return [part for part in content_parts(content) if part.get("type") == kind]


def text_of(content: str | bytes | Iterable[Any] | None) -> str:
    """The text parts of a message, joined (reasoning, tool calls and files left out)."""
    return "".join(str(part.get("text") or "") for part in parts_of_type(content, "text"))


def reasoning_of(content: str | bytes | Iterable[Any] | None) -> str:
    return "".join(str(part.get("text") or "") for part in parts_of_type(content, "reasoning"))
