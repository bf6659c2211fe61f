"""Reading chats for the JSON API: the list (keyset cursor, full-text search, archived filter),
the chat with its tree, the changes feed for sync (with tombstones), exports (JSON, Markdown).

Large JSON (a tree of thousands of messages) is built by PostgreSQL as text and spliced into the
outer object (`json_with_raw`): it is never parsed in Python just to be serialised again.
"""

from __future__ import annotations

import binascii
import json
import uuid
from base64 import urlsafe_b64decode, urlsafe_b64encode
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.postgres.search import SearchQuery
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.db.models import Exists, Expression, Model, OuterRef, Q
from django.utils import timezone

from accounts.models import User
from chat.models import Chat, Message
from chat.selectors import TREE_FIELDS, active_branch_rows, chat_tree_json

# What a list, the changes feed and a PATCH answer say about a chat (no messages).
SUMMARY_FIELDS = (
    "id",
    "title",
    "default_model",
    "pinned",
    "archived",
    "visibility",
    "message_count",
    "created_at",
    "updated_at",
    "last_activity_at",
)
LIST_LIMIT_MAX = 100
# The changes feed repeats this much before `since`: a write stamps `updated_at` before it
# commits, so one that committed just after the previous answer's `now` is still reported.
CHANGES_OVERLAP = timedelta(seconds=5)
BRANCHES = ("active", "all")


def json_with_raw(head: dict[str, Any], key: str, raw: str) -> str:
    """`head` as a JSON object with one more member `key` whose value is the JSON text `raw`."""
    opening = json.dumps(head, cls=DjangoJSONEncoder)
    separator = ", " if head else ""
    return f"{opening[:-1]}{separator}{json.dumps(key)}: {raw}}}"


def chat_summary(chat: Chat) -> dict[str, Any]:
    return {name: getattr(chat, name) for name in SUMMARY_FIELDS}


def chat_detail_json(chat: Chat, *, share_url: str | None) -> str:
    """The chat and its whole tree (every message with parent, rank and selection), so a client
    switches branches without asking again. Two queries: the chat is already loaded."""
    head = {
        **chat_summary(chat),
        "instructions": chat.instructions,
        "share_url": share_url,
        "forked_from_chat_id": chat.forked_from_chat_id,
        "selected_root_id": chat.selected_root_id,
        "active_leaf_id": chat.active_leaf_id,
    }
    return json_with_raw(head, "messages", chat_tree_json(chat))


# --- The list -----------------------------------------------------------------------------------
class InvalidCursor(ValueError):
    pass


@dataclass(frozen=True)
class ChatPage:
    chats: list[dict[str, Any]]
    next_cursor: str | None


def _cursor_encode(row: dict[str, Any]) -> str:
    position = [row["pinned"], row["last_activity_at"].isoformat(), str(row["id"])]
    return urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def _cursor_decode(cursor: str) -> tuple[bool, datetime, uuid.UUID]:
    try:
        pinned, at, chat_id = json.loads(urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        position = (pinned, datetime.fromisoformat(at), uuid.UUID(chat_id))
    except (ValueError, TypeError, binascii.Error, AttributeError):
        raise InvalidCursor from None
    if not isinstance(pinned, bool) or position[1].tzinfo is None:
        raise InvalidCursor
    return position


def _after(cursor: str) -> Q:
    """Rows after the cursor in the order (pinned desc, last_activity_at desc, id desc)."""
    pinned, at, chat_id = _cursor_decode(cursor)
    return (
        Q(pinned__lt=pinned)
        | Q(pinned=pinned, last_activity_at__lt=at)
        | Q(pinned=pinned, last_activity_at=at, id__lt=chat_id)
    )


def _indexed_expression(model: type[Model], name: str) -> Expression:
    """The expression of an index on `model`: queries use the very one the index was built on,
    so PostgreSQL can match them (an expression index serves only an identical expression)."""
    index = next(index for index in model._meta.indexes if index.name == name)
    return index.expressions[0]


def _matching(text: str) -> Q:
    """Chats whose title or any message's text contains the words (websearch syntax: "a phrase",
    or, -word); whole words, no stemming (the `simple` configuration suits every language)."""
    query = SearchQuery(text, config="simple", search_type="websearch")
    in_messages = Message.objects.alias(vector=_indexed_expression(Message, "message_text_search")).filter(
        chat_id=OuterRef("pk"), vector=query
    )
    return Q(title_vector=query) | Exists(in_messages)


def chat_list(
    *, owner: User, archived: bool | None = False, search: str = "", cursor: str | None = None, limit: int = 50
) -> ChatPage:
    """One page of the owner's chats, pinned first then most recently active; `archived=None`
    lists both. Keyset pagination: a page starts strictly after the cursor's row, so no row is
    repeated or skipped while the order holds (a chat that gets a new message moves up)."""
    chats = Chat.objects.filter(owner=owner, deleted_at__isnull=True)
    if archived is not None:
        chats = chats.filter(archived=archived)
    if search.strip():
        title_vector = _indexed_expression(Chat, "chat_title_search")
        chats = chats.alias(title_vector=title_vector).filter(_matching(search))
    if cursor:
        chats = chats.filter(_after(cursor))
    rows = list(chats.order_by("-pinned", "-last_activity_at", "-id").values(*SUMMARY_FIELDS)[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return ChatPage(chats=rows, next_cursor=_cursor_encode(rows[-1]) if more else None)


# --- Sync -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Changes:
    chats: list[dict[str, Any]]
    deleted: list[uuid.UUID]
    now: datetime


def chat_changes(*, owner: User, since: datetime) -> Changes:
    """The owner's chats changed since `since` (and a few seconds before: CHANGES_OVERLAP), the
    deleted ones as bare ids. `now` is read first: pass it as the next `since`."""
    now = timezone.now()
    rows = (
        Chat.objects.filter(owner=owner, updated_at__gt=since - CHANGES_OVERLAP)
        .order_by("updated_at")
        .values(*SUMMARY_FIELDS, "deleted_at")
    )
    chats: list[dict[str, Any]] = []
    deleted: list[uuid.UUID] = []
    for row in rows:
        if row.pop("deleted_at") is not None:
            deleted.append(row["id"])
        else:
            chats.append(row)
    return Changes(chats=chats, deleted=deleted, now=now)


# --- Export -----------------------------------------------------------------------------------
def _active_branch_json(chat: Chat) -> str:
    ids = [row[0] for row in active_branch_rows(chat, fields=("id",))]
    pairs = ", ".join(f"'{name}', {name}" for name in TREE_FIELDS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT coalesce(json_agg(json_build_object({pairs}) ORDER BY depth), '[]')::text
                FROM {Message._meta.db_table} WHERE chat_id = %s AND id = ANY(%s)""",
            [chat.pk, ids],
        )
        return cursor.fetchone()[0]


def chat_export_json(chat: Chat, *, branch: str) -> str:
    """The chat and its messages: the active branch (root→leaf) or the whole tree."""
    head = {
        "format": "arbor.chat.v1",
        "branch": branch,
        "exported_at": timezone.now(),
        **chat_summary(chat),
        "instructions": chat.instructions,
        "selected_root_id": chat.selected_root_id,
        "active_leaf_id": chat.active_leaf_id,
    }
    messages = chat_tree_json(chat) if branch == "all" else _active_branch_json(chat)
    return json_with_raw(head, "messages", messages)


ROLE_NAMES = {"user": "User", "assistant": "Assistant", "system": "System", "tool": "Tool"}


def _markdown_section(heading: str, text: str) -> list[str]:
    return [heading, "", text.strip() or "*(no text)*", ""]


def _role(role: str, model_id: str) -> str:
    name = ROLE_NAMES.get(role, role.title())
    return f"{name} ({model_id})" if model_id and role == "assistant" else name


def _tree_markdown(chat: Chat) -> list[str]:
    """Every message depth-first, numbered; a message says what it replies to when that is not
    the one just above it, and which version it is among its siblings."""
    rows = (
        Message.objects.filter(chat=chat)
        .order_by("depth", "rank")
        .values_list("id", "parent_id", "role", "text", "model_id")
    )
    children: dict[Any, list[tuple[Any, ...]]] = {}
    version: dict[Any, int] = {}
    for row in rows:
        siblings = children.setdefault(row[1], [])
        siblings.append(row)
        version[row[0]] = len(siblings)
    numbers: dict[Any, int] = {}
    lines: list[str] = []
    stack = list(reversed(children.get(None, [])))
    while stack:
        message_id, parent_id, role, text, model_id = stack.pop()
        number = numbers[message_id] = len(numbers) + 1
        siblings = children[parent_id]
        notes = []
        if parent_id is not None and numbers[parent_id] != number - 1:
            notes.append(f"reply to {numbers[parent_id]}")
        if len(siblings) > 1:
            notes.append(f"version {version[message_id]} of {len(siblings)}")
        suffix = f" — {', '.join(notes)}" if notes else ""
        lines += _markdown_section(f"## {number}. {_role(role, model_id)}{suffix}", text)
        stack.extend(reversed(children.get(message_id, [])))
    return lines


def chat_export_markdown(chat: Chat, *, branch: str) -> str:
    lines = [f"# {chat.title or 'Untitled chat'}", ""]
    if branch == "all":
        lines += _tree_markdown(chat)
    else:
        for role, text, model_id in active_branch_rows(chat, fields=("role", "text", "model_id")):
            lines += _markdown_section(f"## {_role(role, model_id)}", text)
    return "\n".join(lines).rstrip() + "\n"
