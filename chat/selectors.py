"""Reading chats: the active branch, a message's ancestors, the whole tree for the client."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import reduce
from operator import or_
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet

from chat.models import Chat, Message, Status
from chat.paths import ancestor_spans

# What the client needs of every message to draw the tree and switch branches locally.
TREE_FIELDS = (
    "id",
    "parent_id",
    "rank",
    "depth",
    "selected_child_id",
    "role",
    "content",
    "model_id",
    "status",
    "error_code",
    "error_message",
    "finish_reason",
    "usage",
    "vote",
    "created_at",
)


def _line(chat_id: Any, segment: str, depth: int) -> QuerySet[Message]:
    spans = ancestor_spans(segment, depth)
    ranges = reduce(or_, (Q(path=span.segment, depth__gte=span.first, depth__lte=span.last) for span in spans))
    return Message.objects.filter(ranges, chat_id=chat_id).order_by("depth")


def message_ancestors(message: Message, *, include_self: bool = True) -> list[Message]:
    """root→message in one query (one range per segment on the line)."""
    line = _line(message.chat_id, str(message.path), message.depth)
    if not include_self:
        line = line.filter(depth__lt=message.depth)
    return list(line.defer("path"))


def active_branch(chat: Chat) -> list[Message]:
    """root→active leaf along the selections, in one query."""
    if chat.active_leaf_id is None:
        return []
    leaf = chat.active_leaf
    assert leaf is not None
    return list(_line(chat.pk, str(leaf.path), leaf.depth).defer("path"))


def _json_timestamp(value: datetime) -> str:
    """A timestamp as PostgreSQL writes one into JSON on Django's UTC connections (what
    `chat_tree_json` sends): ISO 8601 with the fraction's trailing zeros dropped."""
    text = value.astimezone(UTC).isoformat()
    stamp, offset = text[:-6], text[-6:]
    if "." in stamp:
        stamp = stamp.rstrip("0").rstrip(".")
    return stamp + offset


def _tree_entry(row: Mapping[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    for name in TREE_FIELDS:
        value = row[name]
        if isinstance(value, uuid.UUID):
            value = str(value)
        elif isinstance(value, datetime):
            value = _json_timestamp(value)
        entry[name] = value
    return entry


def message_tree_entry(message: Message) -> dict[str, Any]:
    """One message exactly as the chat's tree (`chat_tree_json`) holds it, as plain JSON values:
    what a `done` frame carries so a client patches its tree instead of reading the whole chat
    again. From a loaded message: no query."""
    return _tree_entry({name: getattr(message, name) for name in TREE_FIELDS})


def message_tree_entry_of_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """`message_tree_entry` of a row of the tree's columns (JSON columns decoded)."""
    return _tree_entry(row)


def message_tree_entry_read(message_id: Any) -> dict[str, Any]:
    """`message_tree_entry` of a message read now: one query, the tree's columns only."""
    return _tree_entry(Message.objects.values(*TREE_FIELDS).get(pk=message_id))


def chat_tree(chat: Chat) -> list[dict[str, Any]]:
    """Every message of the chat (no paths: the client needs parent, rank and selection)."""
    return list(Message.objects.filter(chat=chat).order_by("depth", "rank").values(*TREE_FIELDS))


# --- Hot paths: rows straight from the cursor ---------------------------------------------------
# Django's per-row conversion (model instances, values()) costs ~20x the query itself on a
# 5,000-message branch; these return what PostgreSQL sends (jsonb columns as JSON text).
BRANCH_FIELDS = ("id", "parent_id", "role", "content", "status", "model_id")


_LINE_SQL: dict[tuple[str, ...], str] = {}


def _line_sql(fields: tuple[str, ...]) -> str:
    """The line query for these columns, built once: the spans come as three arrays, so the
    statement's text is the same whatever the line (no query building per turn)."""
    sql = _LINE_SQL.get(fields)
    if sql is None:
        columns = {field.attname for field in Message._meta.concrete_fields}
        unknown = set(fields) - columns
        if unknown:
            raise ValueError(f"not columns of a message: {sorted(unknown)}")
        # One range scan of the (chat, path, depth) index per span whatever the statistics say
        # (OFFSET 0 keeps the planner from flattening the LATERAL into one scan of the chat).
        sql = _LINE_SQL[fields] = f"""
            SELECT {", ".join(f"m.{name}" for name in fields)}
            FROM unnest(%s::ltree[], %s::int[], %s::int[]) AS span(segment, first, last)
            CROSS JOIN LATERAL (
                SELECT {", ".join(f"line.{name}" for name in {*fields, "depth"})} FROM {Message._meta.db_table} AS line
                WHERE line.chat_id = %s AND line.path = span.segment
                  AND line.depth BETWEEN span.first AND span.last
                OFFSET 0
            ) AS m
            ORDER BY m.depth"""
    return sql


def _line_rows(chat_id: Any, segment: str, depth: int, fields: tuple[str, ...]) -> list[tuple[Any, ...]]:
    spans = ancestor_spans(segment, depth)
    params = [[span.segment for span in spans], [span.first for span in spans], [span.last for span in spans]]
    with connection.cursor() as cursor:
        cursor.execute(_line_sql(fields), [*params, chat_id])
        return cursor.fetchall()


def active_branch_rows(chat: Chat, fields: tuple[str, ...] = BRANCH_FIELDS) -> list[tuple[Any, ...]]:
    """root→active leaf as tuples of `fields`, one query (the chat's active_leaf joined in)."""
    if chat.active_leaf_id is None:
        return []
    leaf = chat.active_leaf
    assert leaf is not None
    return _line_rows(chat.pk, str(leaf.path), leaf.depth, fields)


def ancestor_rows(message: Message, fields: tuple[str, ...] = BRANCH_FIELDS) -> list[tuple[Any, ...]]:
    """root→message as tuples of `fields` (column names), one query of constant text."""
    return _line_rows(message.chat_id, str(message.path), message.depth, fields)


def chat_tree_json(chat: Chat) -> str:
    """The whole tree as JSON text built by PostgreSQL, ready to send as it is."""
    pairs = ", ".join(f"'{name}', {name}" for name in TREE_FIELDS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT coalesce(json_agg(json_build_object({pairs}) ORDER BY depth, rank), '[]')::text
                FROM {Message._meta.db_table} WHERE chat_id = %s""",
            [chat.pk],
        )
        return cursor.fetchone()[0]


def replies_streaming_count() -> int:
    """Replies being written now, in every process (the saved `streaming` status: a partial
    index makes this count cheap). The operators' dashboard shows it (registered in ChatConfig)."""
    return Message.objects.filter(status=Status.STREAMING).count()
