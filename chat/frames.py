"""The frames Arbor sends on a chat socket, in one place (`docs/protocol.md` describes them).

Two families:
- **a reply's stream**, numbered (`message_id` and `seq` are added when a frame is stored in the
  reply's stream buffer, `chat.streambuffer`): `delta`, `tool_call`, `tool_call_delta`,
  `tool_call_end`, `tool_result`, the artifact frames (`artifacts.tools`) and, last, `done`;
- **socket frames**, not numbered: `ack`, `error`, `pong`, `switched`, `generation` (another tab
  started a reply) and `chat` (a title or other change to a chat).

They are plain dicts (TypedDicts), encoded once per frame (`chat.streambuffer.frame_encode`),
which the streaming hot path needs; this module is their one definition and their builders.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

# A tool's result is sent exactly as it is stored.
from chat.parts import ToolResultPart as ToolResultFrame
from chat.parts import tool_result_part as tool_result_frame


# --- A reply's stream ---------------------------------------------------------------------------
class DeltaFrame(TypedDict):
    """Text, or reasoning, appended to the reply (a coalesced run of the model's deltas)."""

    type: Literal["delta"]
    text: NotRequired[str]
    reasoning: NotRequired[str]


class ToolCallFrame(TypedDict):
    type: Literal["tool_call"]
    index: int
    id: str
    name: str


class ToolCallDeltaFrame(TypedDict):
    type: Literal["tool_call_delta"]
    index: int
    arguments: str


class ToolCallEndFrame(TypedDict):
    type: Literal["tool_call_end"]
    index: int


class ErrorDetail(TypedDict):
    code: str
    message: str


class DoneFrame(TypedDict):
    """The reply ended: its status, and `message`, the saved message as the chat's tree holds it
    (a tab patches its tree with it instead of reading the whole chat again)."""

    type: Literal["done"]
    status: str
    finish_reason: NotRequired[str]
    usage: NotRequired[dict[str, int]]
    message: NotRequired[dict[str, Any]]
    error: NotRequired[ErrorDetail]


def text_delta(text: str) -> DeltaFrame:
    return {"type": "delta", "text": text}


def reasoning_delta(text: str) -> DeltaFrame:
    return {"type": "delta", "reasoning": text}


def tool_call_frame(*, index: int, id: str, name: str) -> ToolCallFrame:
    return {"type": "tool_call", "index": index, "id": id, "name": name}


def tool_call_delta_frame(*, index: int, arguments: str) -> ToolCallDeltaFrame:
    return {"type": "tool_call_delta", "index": index, "arguments": arguments}


def tool_call_end_frame(*, index: int) -> ToolCallEndFrame:
    return {"type": "tool_call_end", "index": index}


def done(
    *,
    status: str,
    finish_reason: str | None = None,
    usage: dict[str, int] | None = None,
    message: dict[str, Any] | None = None,
    error: ErrorDetail | None = None,
) -> DoneFrame:
    frame: DoneFrame = {"type": "done", "status": status}
    if finish_reason is not None:
        frame["finish_reason"] = finish_reason
    if usage is not None:
        frame["usage"] = usage
    if message is not None:
        frame["message"] = message
    if error is not None:
        frame["error"] = error
    return frame


# --- Socket frames ------------------------------------------------------------------------------
class ChatChangedFrame(TypedDict):
    """A change to one of the user's chats made elsewhere (today: its title)."""

    type: Literal["chat"]
    chat_id: str
    title: NotRequired[str]


def chat_title_changed(chat_id: str, title: str) -> ChatChangedFrame:
    return {"type": "chat", "chat_id": chat_id, "title": title}


__all__ = [
    "ChatChangedFrame",
    "DeltaFrame",
    "DoneFrame",
    "ErrorDetail",
    "ToolCallDeltaFrame",
    "ToolCallEndFrame",
    "ToolCallFrame",
    "ToolResultFrame",
    "chat_title_changed",
    "done",
    "reasoning_delta",
    "text_delta",
    "tool_call_delta_frame",
    "tool_call_end_frame",
    "tool_call_frame",
    "tool_result_frame",
]
