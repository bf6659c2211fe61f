"""What a share link shows, and what a reader's copy of it is called.

A share link shows the chat's active branch only: the other branches stay private. The chat's
own title is not shown, nor given to a reader's copy: the automatic title is written from the
branch active after the first exchange (`chat.services.titles`), and an edit of the first
message since may have made that branch one that is not shared; a title the owner typed cannot be
told apart from it (and may name the other branch just as well). So a shared chat is titled from
the first user message of the branch it shows, as the automatic heuristic would title it: only
the shared branch's words appear. It is computed on every view (no stored copy), because the
page follows the active branch as it is now.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chat.models import Chat, Role
from chat.selectors import active_branch_rows
from chat.services.titles import heuristic_title

SHOWN_ROLES = (Role.USER, Role.ASSISTANT)
UNTITLED = "Shared chat"  # a shared chat with no user message yet


@dataclass(frozen=True)
class SharedChat:
    title: str
    messages: list[dict[str, Any]]  # id, role, text, model_id: root → active leaf


def shared_title(first_question: str | None) -> str:
    """The title of a shared branch whose first user message is `first_question`."""
    return heuristic_title(first_question) if first_question and first_question.strip() else UNTITLED


def shared_chat_read(*, chat: Chat) -> SharedChat:
    """The shared view of `chat` (its active branch; `chat.active_leaf` selected with it)."""
    rows = active_branch_rows(chat, fields=("id", "role", "text", "model_id"))
    messages = [
        {"id": message_id, "role": role, "text": text, "model_id": model_id}
        for message_id, role, text, model_id in rows
        if role in SHOWN_ROLES
    ]
    first_question = next((message["text"] for message in messages if message["role"] == Role.USER), None)
    return SharedChat(title=shared_title(first_question), messages=messages)
