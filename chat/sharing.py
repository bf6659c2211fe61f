"""What a share link shows, and what a reader's copy of it is called.

A share link shows the chat's active branch only: the other branches stay private. The chat's
own title is not shown, nor given to a reader's copy: the automatic title is written from the
branch active after the first exchange (`chat.services.titles`), and an edit of the first
message since may have made that branch one that is not shared; a title the owner typed cannot be
told apart from it (and may name the other branch just as well). So a shared chat is titled from
the first user message of the branch it shows, as the automatic heuristic would title it: only
the shared branch's words appear. It is computed on every view (no stored copy), because the
page follows the active branch as it is now.

The page draws each reply as the chat does (Markdown, maths, reasoning collapsed, a card per
document its tools wrote) from `parts`: a reader's copy of the reply's parts with only what the
page shows. A tool call keeps its name (not its arguments); a document keeps its title, kind,
language and version under a page-local id ("d1", …), never the document's own id; images and
failed tool results are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chat.models import Chat, Role
from chat.parts import content_parts
from chat.selectors import active_branch_rows
from chat.services.titles import heuristic_title

SHOWN_ROLES = (Role.USER, Role.ASSISTANT)
UNTITLED = "Shared chat"  # a shared chat with no user message yet


@dataclass(frozen=True)
class SharedChat:
    title: str
    messages: list[dict[str, Any]]  # id, role, text, model_id, parts: root → active leaf


def shared_title(first_question: str | None) -> str:
    """The title of a shared branch whose first user message is `first_question`."""
    return heuristic_title(first_question) if first_question and first_question.strip() else UNTITLED


DOCUMENT_FIELDS = ("title", "kind", "language", "version")


def shared_parts(content: Any, documents: dict[str, str]) -> list[dict[str, Any]]:
    """What the page shows of one message's parts (the module says what is kept); `documents`
    maps document ids to page-local ids across the whole page, so a document keeps one card id."""
    shown: list[dict[str, Any]] = []
    for part in content_parts(content):
        kind = part.get("type")
        if kind in ("text", "reasoning"):
            shown.append({"type": kind, "text": str(part.get("text") or "")})
        elif kind == "tool_call":
            shown.append({"type": "tool_call", "name": str(part.get("name") or "")})
        elif kind == "tool_result" and not part.get("error"):
            data = part.get("data") if isinstance(part.get("data"), dict) else {}
            document_id = str(data.get("document_id") or "")
            if not document_id:
                continue
            local = documents.setdefault(document_id, f"d{len(documents) + 1}")
            kept = {"document_id": local, **{field: data[field] for field in DOCUMENT_FIELDS if field in data}}
            shown.append({"type": "tool_result", "name": str(part.get("name") or ""), "data": kept})
    return shown


def shared_chat_read(*, chat: Chat) -> SharedChat:
    """The shared view of `chat` (its active branch; `chat.active_leaf` selected with it)."""
    rows = active_branch_rows(chat, fields=("id", "role", "text", "model_id", "content"))
    documents: dict[str, str] = {}
    messages = [
        {"id": message_id, "role": role, "text": text, "model_id": model_id, "parts": shared_parts(content, documents)}
        for message_id, role, text, model_id, content in rows
        if role in SHOWN_ROLES
    ]
    first_question = next((message["text"] for message in messages if message["role"] == Role.USER), None)
    return SharedChat(title=shared_title(first_question), messages=messages)
