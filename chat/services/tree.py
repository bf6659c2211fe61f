"""Tree operations: append, edit, regenerate, switch, fork, delete a subtree.

Every operation that adds or selects a message makes it part of the active branch: the
selections on its ancestor line are set to lead to it, and the chat's active leaf becomes the
leaf below it along its own selections. Ranks come from counters bumped in one UPDATE, so
concurrent appends under one parent never collide.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Q
from django.db.models.base import ModelState
from django.utils import timezone

from accounts.models import User
from chat.models import Chat, Message, Role, Status
from chat.paths import ancestor_spans, child_segment, label, parse, root_segment
from chat.selectors import message_ancestors

TABLE = Message._meta.db_table


def chat_create(*, owner: User, title: str = "", default_model: str = "", instructions: str = "") -> Chat:
    return Chat.objects.create(owner=owner, title=title, default_model=default_model, instructions=instructions)


def _next_rank(*, chat: Chat, parent: Message | None) -> int:
    """The next rank under `parent` (or among the roots), from a counter bumped in one UPDATE."""
    table, row_id = (Chat._meta.db_table, chat.pk) if parent is None else (TABLE, parent.pk)
    column = "root_count" if parent is None else "child_count"
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {column} = {column} + 1 WHERE id = %s RETURNING {column}", [row_id])
        (count,) = cursor.fetchone()
    return count - 1


def chat_lock(chat: Chat) -> Chat:
    """The chat row, read again and locked for the transaction: tree changes of one chat happen
    one at a time."""
    return Chat.objects.select_for_update().get(pk=chat.pk)


# No savepoint of its own: nothing here is caught and retried inside a caller's transaction, and a
# turn makes two appends (a savepoint and its release are two statements each).
@transaction.atomic(savepoint=False)
def message_append(
    *,
    chat: Chat,
    parent: Message | None,
    role: str,
    content: list[dict[str, Any]],
    text: str = "",
    locked: bool = False,
    **fields: Any,
) -> Message:
    """A new child of `parent` (a new root when None), selected and on the active branch.

    `locked`: the caller's transaction created `chat` or read it with `chat_lock`, and made no
    tree change since but through this function (which keeps the object current), so the row
    is not read and locked again."""
    if not locked:
        chat = chat_lock(chat)
    rank = _next_rank(chat=chat, parent=parent)
    if parent is None:
        segment, depth = root_segment(rank), 1
    else:
        depth = parent.depth + 1
        segment = child_segment(parent_segment=str(parent.path), child_depth=depth, rank=rank)
    message = Message.objects.create(
        chat=chat, parent=parent, path=segment, depth=depth, rank=rank, role=role, content=content, text=text, **fields
    )
    now = timezone.now()
    counted = {"message_count": F("message_count") + 1, "last_activity_at": now, "updated_at": now}
    if parent is None:
        # A new root has no ancestors and no children: selecting it sets the chat's two pointers.
        Chat.objects.filter(pk=chat.pk).update(**counted, selected_root_id=message.pk, active_leaf=message)
        chat.selected_root_id = message.pk
        chat.active_leaf = message
    elif parent.pk == chat.active_leaf_id:
        # The common case, a reply at the end of the active branch: one selection changes.
        Message.objects.filter(pk=parent.pk).update(selected_child=message, selected_rank=rank)
        Chat.objects.filter(pk=chat.pk).update(**counted, active_leaf=message)
        chat.active_leaf = message
    else:
        Chat.objects.filter(pk=chat.pk).update(**counted)
        _activate(chat, message)
    return message


_FIELDS = tuple(Message._meta.concrete_fields)
_ROW = "(" + ", ".join(["%s"] * len(_FIELDS)) + ")"
# Two rows in one constant statement: the ORM's bulk_create assembled the same SQL anew per turn.
_INSERT_PAIR = (
    f"INSERT INTO {TABLE} ({', '.join(connection.ops.quote_name(field.column) for field in _FIELDS)})"
    f" VALUES {_ROW}, {_ROW}"
)


_CHAT_EXTENDED = (
    f"UPDATE {Chat._meta.db_table} SET message_count = message_count + 2, last_activity_at = %s,"
    " updated_at = %s, active_leaf_id = %s WHERE id = %s"
)


def _insert_pair(*messages: Message) -> None:
    params = [
        field.get_db_prep_save(field.pre_save(message, add=True), connection)
        for message in messages
        for field in _FIELDS
    ]
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_PAIR, params)
    for message in messages:
        message._state.adding = False
        message._state.db = connection.alias


@transaction.atomic(savepoint=False)
def exchange_append(
    *, chat: Chat | None, owner: User, default_model: str, parent: Message | None, question: Message, reply: Message
) -> tuple[Chat, Message, Message]:
    """A user message and its reply placeholder, appended together as one exchange: in a new chat
    (`chat` None), or under `parent`, the end of `chat`'s active branch (the chat locked by the
    caller's transaction, as `message_append(locked=True)` needs). Any other place goes through
    `message_append` twice.

    `question` and `reply` are unsaved, with their content and fields set; this places them.
    Two statements for a new chat, three for a reply at the end: both messages are inserted at
    once, the question already selecting the reply (PostgreSQL checks the foreign keys at commit).
    """
    now = timezone.now()
    if chat is None:
        rank, segment, depth = 0, root_segment(0), 1
        chat = Chat(
            owner=owner,
            default_model=default_model,
            root_count=1,
            message_count=2,
            selected_root_id=question.pk,
            active_leaf_id=reply.pk,
            last_activity_at=now,
            client_id=question.client_id,  # a racing repeat of this send fails on it (Chat.client_id)
        )
        chat.save(force_insert=True)
    else:
        assert parent is not None and parent.pk == chat.active_leaf_id
        with connection.cursor() as cursor:
            # Rank and selection in one: SET reads the row's old child_count, the question's rank.
            cursor.execute(
                f"UPDATE {TABLE} SET child_count = child_count + 1, selected_child_id = %s,"
                " selected_rank = child_count WHERE id = %s RETURNING child_count - 1",
                [question.pk, parent.pk],
            )
            (rank,) = cursor.fetchone()
        depth = parent.depth + 1
        segment = child_segment(parent_segment=str(parent.path), child_depth=depth, rank=rank)
    question.chat, question.parent, question.path, question.depth, question.rank = chat, parent, segment, depth, rank
    question.child_count, question.selected_child_id, question.selected_rank = 1, reply.pk, 0
    reply.chat, reply.parent, reply.path, reply.depth, reply.rank = chat, question, segment, depth + 1, 0
    _insert_pair(question, reply)
    if parent is not None:
        with connection.cursor() as cursor:
            cursor.execute(_CHAT_EXTENDED, [now, now, reply.pk, chat.pk])
    chat.active_leaf = reply
    return chat, question, reply


# Instances of rows a statement has just written, built without `Model.__init__` (its per-field
# work is most of an instance's cost): the columns not given hold the model's defaults.
_MESSAGE_DEFAULTS = {
    field.attname: field.get_default() for field in Message._meta.concrete_fields if field.attname != "id"
}
_CHAT_DEFAULTS = {field.attname: field.get_default() for field in Chat._meta.concrete_fields if field.attname != "id"}
_MUTABLE = ("content", "usage", "reservation")  # defaults that are containers: fresh ones per instance


def _loaded(model: type[Any], values: dict[str, Any], cache: dict[str, Any]) -> Any:
    instance = model.__new__(model)
    instance.__dict__.update(values)
    state = ModelState()
    state.adding, state.db = False, connection.alias
    state.fields_cache = cache
    instance._state = state
    return instance


def _message_loaded(values: dict[str, Any], cache: dict[str, Any]) -> Message:
    fresh = {name: type(_MESSAGE_DEFAULTS[name])() for name in _MUTABLE}
    return _loaded(Message, {**_MESSAGE_DEFAULTS, **fresh, **values}, cache)


def exchange_loaded(
    *,
    user: User,
    chat_id: Any,
    new: bool,
    chat_values: dict[str, Any],
    parent_id: Any,
    question: dict[str, Any],
    reply: dict[str, Any],
    path: str,
    depth: int,
    now: Any,
) -> Chat:
    """The objects of an exchange `chat_turn_send` appended (no query): the chat, whose
    `active_leaf` is the reply, whose `parent` is the question. A new chat is whole; an existing
    one holds `chat_values` and loads any other field when read."""
    values = {"id": chat_id, "owner_id": user.pk, **chat_values}
    if new:
        values = {**_CHAT_DEFAULTS, **values, "selected_root_id": question["id"], "root_count": 1}
        values |= {"created_at": now, "client_id": question["client_id"]}
    chat = _loaded(Chat, values, {"owner": user})
    asked = _message_loaded(
        {
            "chat_id": chat_id,
            "parent_id": parent_id,
            "path": path,
            "depth": depth,
            "rank": 0,
            "child_count": 1,
            "selected_child_id": reply["id"],
            "selected_rank": 0,
            "role": Role.USER,
            "created_at": now,
            **question,
        },
        {"chat": chat} if parent_id else {"chat": chat, "parent": None},
    )
    answer = _message_loaded(
        {
            "chat_id": chat_id,
            "parent_id": asked.pk,
            "path": path,
            "depth": depth + 1,
            "rank": 0,
            "role": Role.ASSISTANT,
            "status": Status.STREAMING,
            "created_at": now,
            **reply,
        },
        {"chat": chat, "parent": asked},
    )
    chat._state.fields_cache["active_leaf"] = answer
    return chat


def message_edit(*, message: Message, content: list[dict[str, Any]], text: str) -> Message:
    """A user message gets a new sibling with the new text (the old one is kept)."""
    return message_append(chat=message.chat, parent=message.parent, role=Role.USER, content=content, text=text)


def message_regenerate(*, message: Message, model_id: str, reservation: dict[str, Any] | None = None) -> Message:
    """An assistant message gets a new sibling: an empty reply to stream into (carrying the
    turn's `reservation`, when given)."""
    return message_append(
        chat=message.chat,
        parent=message.parent,
        role=Role.ASSISTANT,
        content=[],
        model_id=model_id,
        status=Status.STREAMING,
        reservation=reservation or {},
    )


@transaction.atomic
def message_switch(*, message: Message) -> Message:
    """Select `message` among its siblings (persisted); returns the new active leaf."""
    chat = chat_lock(message.chat)
    _activate(chat, message)
    return chat.active_leaf  # type: ignore[return-value]


@transaction.atomic
def chat_fork(*, message: Message, owner: User) -> Chat:
    """A new chat whose history is the line root→message, as one segment."""
    line = message_ancestors(message)
    source = message.chat
    fork = Chat.objects.create(
        owner=owner,
        title=source.title,
        default_model=source.default_model,
        instructions=source.instructions,
        forked_from_chat=source,
        forked_from_message=message,
        root_count=1,
        message_count=len(line),
    )
    ids = [uuid.uuid4() for _ in line]
    segment = root_segment(0)
    copies = []
    for index, original in enumerate(line):
        last = index == len(line) - 1
        copies.append(
            Message(
                id=ids[index],
                chat=fork,
                parent_id=ids[index - 1] if index else None,
                path=segment,
                depth=index + 1,
                rank=0,
                child_count=0 if last else 1,
                selected_child_id=None if last else ids[index + 1],
                selected_rank=None if last else 0,
                role=original.role,
                content=original.content,
                text=original.text,
                model_id=original.model_id,
                provider=original.provider,
                usage=original.usage,
                finish_reason=original.finish_reason,
                status=original.status if original.status != Status.STREAMING else Status.STOPPED,
                error_code=original.error_code,
                error_message=original.error_message,
            )
        )
    Message.objects.bulk_create(copies)
    Chat.objects.filter(pk=fork.pk).update(selected_root_id=ids[0], active_leaf_id=ids[-1])
    fork.refresh_from_db()
    return fork


@transaction.atomic
def message_delete_subtree(*, message: Message) -> int:
    """Delete a message and everything below it; the parent selects its newest remaining child."""
    chat = chat_lock(message.chat)
    segment, depth = str(message.path), message.depth
    below = label(start_depth=depth + 1, rank=0)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT id FROM {TABLE}
            WHERE chat_id = %(chat)s AND (
                (path = %(segment)s::ltree AND depth >= %(depth)s)
                OR (path <@ %(segment)s::ltree AND nlevel(path) > nlevel(%(segment)s::ltree)
                    AND subpath(path, nlevel(%(segment)s::ltree), 1) >= %(below)s::ltree)
            )""",
            {"chat": chat.pk, "segment": segment, "depth": depth, "below": below},
        )
        doomed = [row[0] for row in cursor.fetchall()]
    parent = message.parent
    # Nothing may keep pointing into the subtree (selection foreign keys are checked at commit).
    Message.objects.filter(chat=chat, selected_child_id__in=doomed).update(selected_child=None, selected_rank=None)
    Chat.objects.filter(pk=chat.pk, selected_root_id__in=doomed).update(selected_root=None)
    Chat.objects.filter(pk=chat.pk, active_leaf_id__in=doomed).update(active_leaf=None)
    Chat.objects.filter(pk=chat.pk, forked_from_message_id__in=doomed).update(forked_from_message=None)
    Message.objects.filter(pk__in=doomed).delete()
    Chat.objects.filter(pk=chat.pk).update(message_count=F("message_count") - len(doomed), updated_at=timezone.now())
    chat.refresh_from_db()
    successor = (
        Message.objects.filter(chat=chat, parent=parent).order_by("-rank").first()
        if parent is not None
        else Message.objects.filter(chat=chat, parent=None).order_by("-rank").first()
    )
    if successor is not None:
        _activate(chat, successor)
    elif parent is not None:
        _activate(chat, parent)
    return len(doomed)


# --- Keeping the active branch ------------------------------------------------------------------
def _activate(chat: Chat, message: Message) -> None:
    """Point every selection on message's ancestor line at it, then make the leaf below it
    (along its own selections) the chat's active leaf."""
    spans = ancestor_spans(str(message.path), message.depth)
    with connection.cursor() as cursor:
        for index, span in enumerate(spans):
            is_last = index == len(spans) - 1
            # Inside a span every message selects its continuation (rank 0)...
            cursor.execute(
                f"""
                UPDATE {TABLE} AS m SET selected_rank = 0, selected_child_id = next.id
                FROM {TABLE} AS next
                WHERE m.chat_id = %(chat)s AND m.path = %(segment)s::ltree
                  AND m.depth >= %(first)s AND m.depth < %(last)s
                  AND m.selected_rank IS DISTINCT FROM 0
                  AND next.chat_id = m.chat_id AND next.path = m.path AND next.depth = m.depth + 1""",
                {"chat": chat.pk, "segment": span.segment, "first": span.first, "last": span.last},
            )
            if not is_last:
                # ...and the span's last message selects the first message of the next segment.
                following = spans[index + 1]
                rank = parse(following.segment.rsplit(".", 1)[-1])[1]
                cursor.execute(
                    f"""
                    UPDATE {TABLE} SET selected_rank = %(rank)s, selected_child_id = (
                        SELECT id FROM {TABLE}
                        WHERE chat_id = %(chat)s AND path = %(next_segment)s::ltree AND depth = %(next_first)s)
                    WHERE chat_id = %(chat)s AND path = %(segment)s::ltree AND depth = %(last)s""",
                    {
                        "chat": chat.pk,
                        "rank": rank,
                        "segment": span.segment,
                        "last": span.last,
                        "next_segment": following.segment,
                        "next_first": following.first,
                    },
                )
        cursor.execute(
            f"SELECT id FROM {TABLE} WHERE chat_id = %s AND path = %s::ltree AND depth = 1",
            [chat.pk, spans[0].segment],
        )
        root_id = cursor.fetchone()[0]
    leaf = _leaf_below(chat, message)
    Chat.objects.filter(pk=chat.pk).update(selected_root_id=root_id, active_leaf=leaf, updated_at=timezone.now())
    chat.selected_root_id = root_id
    chat.active_leaf = leaf


def _leaf_below(chat: Chat, message: Message) -> Message:
    """Follow the selections down from `message`: one indexed query per segment crossed."""
    segment, depth = str(message.path), message.depth
    while True:
        # The same condition as the partial index `message_segment_exits`.
        exit_point = (
            Message.objects.filter(chat=chat, path=segment, depth__gte=depth)
            .filter(Q(selected_rank__isnull=True) | Q(selected_rank__gt=0))
            .order_by("depth")
            .values_list("depth", "selected_rank")
            .first()
        )
        if exit_point is None:
            raise RuntimeError(f"segment {segment} of chat {chat.pk} has no end")  # an invariant broke
        exit_depth, selected_rank = exit_point
        if selected_rank is None:
            return Message.objects.get(chat=chat, path=segment, depth=exit_depth)
        segment = child_segment(parent_segment=segment, child_depth=exit_depth + 1, rank=selected_rank)
        depth = exit_depth + 1
