"""What a model is sent: the system prompt, built from layers at request time, and the branch as
contract messages trimmed to the model's context window.

The system prompt is never stored as messages: it is built for each request from, in order,
the platform prompt → the user's tier → the user's custom instructions → the chat's preset
(`Chat.instructions`), so editing any layer applies to the next turn of every chat.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings
from django.utils import timezone

from accounts.models import User
from chat.models import Chat, Role, Status
from chat.parts import content_parts
from chat.services.uploads import IMAGE_TOKENS, images_base64
from providers.contract import ChatMessage, ImagePart, Part, TextPart, ToolCall

# `{date}` is replaced by today's date (the server's time zone); the rest is sent as it is.
DEFAULT_PLATFORM_PROMPT = (
    "You are Arbor, a helpful assistant. Today's date is {date}. "
    "Answer clearly and format answers in Markdown where it helps (lists, tables, code blocks)."
)

# The token estimate: ~4 characters per token for English text and code, plus a few tokens per
# message for the role and framing every vendor adds. It is cheap (no tokenizer, no vendor
# call) and errs a little high for English; `reserve_output` leaves the reply its room.
CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4


# --- The system prompt -------------------------------------------------------------------------
def platform_prompt() -> str:
    prompt = getattr(settings, "PLATFORM_SYSTEM_PROMPT", DEFAULT_PLATFORM_PROMPT)
    # replace(), not format(): an operator's prompt may contain braces.
    return (prompt or "").replace("{date}", timezone.localdate().isoformat())


def system_prompt_for(*, chat: Chat, user: User) -> str:
    """The non-empty layers (platform → tier → the user's custom instructions → the chat's
    instructions), joined by blank lines; an empty layer is left out."""
    layers = (platform_prompt(), user.tier.system_prompt, user.custom_instructions, chat.instructions)
    return "\n\n".join(layer.strip() for layer in layers if layer and layer.strip())


# --- The branch as contract messages -----------------------------------------------------------
# Stored roles sent to a model, and who speaks a stored message's text and tool calls (a stored
# `tool` message carries only results: its other parts have no speaker).
_SENT_ROLES = frozenset({Role.USER.value, Role.ASSISTANT.value, Role.TOOL.value})
_SPEAKERS: dict[str, Literal["user", "assistant"]] = {Role.USER.value: "user", Role.ASSISTANT.value: "assistant"}


@dataclass(frozen=True)
class _Attached:
    """An image part of a kept turn, read from storage only once trimming is done."""

    upload_id: str
    media_type: str


# Sent in place of an attached image whose file is gone (or is not the chat owner's).
IMAGE_GONE = "[An image was attached here; it is no longer available.]"


class _Turn:
    """The contract messages one stored message becomes, and their estimated token count.

    An assistant message may hold a whole tool loop as parts (text, tool calls, their results,
    more text): every tool result closes the assistant message before it and becomes a `tool`
    message, in order. Few objects per turn: building 20,000 of them is dominated by the
    garbage collector's passes, which grow with every container allocated."""

    __slots__ = ("call_ids", "messages", "result_ids", "role", "tokens")

    def __init__(self, role: str) -> None:
        self.role = role
        self.messages: list[ChatMessage] = []
        self.tokens = 0
        self.call_ids: list[str] | None = None
        self.result_ids: list[str] | None = None


def _close(
    turn: _Turn,
    speaker: Literal["user", "assistant"] | None,
    text: list[str],
    calls: list[ToolCall],
    images: list[_Attached] | None = None,
) -> None:
    """End the message being gathered (images, text and tool calls) and start a new one."""
    joined = "".join(text)
    if speaker is not None and (joined or calls or images):
        parts: tuple[Any, ...] = (TextPart(joined),) if joined else ()
        if images:
            parts = (*images, *parts)
            turn.tokens += IMAGE_TOKENS * len(images)
            images.clear()
        turn.messages.append(ChatMessage(role=speaker, parts=parts, tool_calls=tuple(calls)))
        turn.tokens += TOKENS_PER_MESSAGE + len(joined) // CHARS_PER_TOKEN
    text.clear()
    calls.clear()


def _turn_of(role: str, parts: Iterable[dict[str, Any]], *, images: bool = True) -> _Turn:
    turn = _Turn(role)
    speaker = _SPEAKERS.get(role)
    text: list[str] = []
    calls: list[ToolCall] = []
    attached: list[_Attached] | None = None
    for part in parts:
        kind = part.get("type")
        if kind == "text":
            text.append(str(part.get("text") or ""))
        elif kind == "image" and speaker == "user" and images:
            attached = attached or []
            attached.append(_Attached(str(part.get("upload_id") or ""), str(part.get("media_type") or "")))
        elif kind == "tool_call" and speaker == "assistant":
            call = ToolCall(
                id=str(part.get("id") or ""),
                name=str(part.get("name") or ""),
                arguments=str(part.get("arguments") or ""),
            )
            calls.append(call)
            turn.call_ids = turn.call_ids or []
            turn.call_ids.append(call.id)
            turn.tokens += (len(call.name) + len(call.arguments)) // CHARS_PER_TOKEN
        elif kind == "tool_result":
            _close(turn, speaker, text, calls)
            call_id = str(part.get("tool_call_id") or "")
            result = str(part.get("text") or "")
            turn.messages.append(ChatMessage(role="tool", parts=(TextPart(result),), tool_call_id=call_id))
            turn.result_ids = turn.result_ids or []
            turn.result_ids.append(call_id)
            turn.tokens += TOKENS_PER_MESSAGE + len(result) // CHARS_PER_TOKEN
    _close(turn, speaker, text, calls, attached)
    return turn


def _paired(turns: Sequence[_Turn]) -> list[ChatMessage]:
    """The turns' messages, without tool calls that got no result (a stopped tool loop) and
    results whose call was trimmed away: vendors refuse either."""
    results = {call_id for turn in turns if turn.result_ids for call_id in turn.result_ids}
    calls = {call_id for turn in turns if turn.call_ids for call_id in turn.call_ids}
    messages: list[ChatMessage] = []
    for turn in turns:
        for message in turn.messages:
            if message.role == "tool" and message.tool_call_id not in calls:
                continue
            if message.tool_calls and any(call.id not in results for call in message.tool_calls):
                kept = tuple(call for call in message.tool_calls if call.id in results)
                if not kept and not message.parts:
                    continue
                message = ChatMessage(role=message.role, parts=message.parts, tool_calls=kept)  # noqa: PLW2901
            messages.append(message)
    return messages


def _with_images(messages: list[ChatMessage], owner_id: int | None) -> list[ChatMessage]:
    """The kept messages with their attached images read from storage (as base64): only the
    turns actually sent are read. An image that is gone is sent as a short note instead."""
    wanted = [part.upload_id for message in messages for part in message.parts if isinstance(part, _Attached)]
    if not wanted:
        return messages
    found = images_base64(wanted, owner_id=owner_id)
    resolved: list[ChatMessage] = []
    for message in messages:
        if any(isinstance(part, _Attached) for part in message.parts):
            parts: list[Part] = []
            for part in message.parts:
                if not isinstance(part, _Attached):
                    parts.append(part)
                elif part.upload_id in found:
                    media_type, data = found[part.upload_id]
                    parts.append(ImagePart(media_type=media_type, data_base64=data))
                else:
                    parts.append(TextPart(IMAGE_GONE))
            message = ChatMessage(role=message.role, parts=tuple(parts), tool_calls=message.tool_calls)  # noqa: PLW2901
        resolved.append(message)
    return resolved


def context_messages(
    *,
    rows: Sequence[Sequence[Any]],
    max_input_tokens: int,
    reserve_output: int,
    images: bool = True,
    owner_id: int | None = None,
) -> list[ChatMessage]:
    """The branch (rows of `chat.selectors.BRANCH_FIELDS`: id, parent_id, role, content, status,
    model_id; root first) as contract messages that fit `max_input_tokens - reserve_output`.

    Trimming drops whole turns from the oldest side. Everything from the newest user message on
    is always kept, even over budget (the vendor then answers context_too_long, which says the
    right thing). The result starts with a user message whenever the kept turns contain one.
    Rows are read newest first and reading stops at the budget, so the cost is O(kept rows),
    at most O(n). System rows and messages with nothing to send (an empty placeholder, an
    errored reply with no text) are skipped: the system prompt is built per request.

    Image parts (a user's attachments) become `ImagePart`s, read from storage for the kept turns
    only (and, given `owner_id`, only that user's uploads); `images=False` (a model that takes
    no images) leaves them out.
    """
    budget = max_input_tokens - reserve_output
    newest_user = next((index for index in range(len(rows) - 1, -1, -1) if rows[index][2] == "user"), None)
    kept: list[_Turn] = []  # newest first
    used = 0
    for index in range(len(rows) - 1, -1, -1):
        _id, _parent, role, content, status, _model = rows[index][:6]
        if role not in _SENT_ROLES:
            continue
        parts = content_parts(content)
        if status == Status.ERROR.value and role == "assistant" and not parts:
            continue
        turn = _turn_of(role, parts, images=images)
        if not turn.messages:
            continue
        mandatory = newest_user is not None and index >= newest_user
        if not mandatory and used + turn.tokens > budget:
            break
        kept.append(turn)
        used += turn.tokens
    kept.reverse()
    first_user = next((position for position, turn in enumerate(kept) if turn.role == "user"), 0)
    return _with_images(_paired(kept[first_user:]), owner_id)
