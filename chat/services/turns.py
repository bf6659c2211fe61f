"""Starting a turn: checks, then the user's message and the reply placeholder saved together.

Nothing here calls a model: the user's message is saved before any model is called, and the
caller starts the generation (`chat.generation.generation_start`) once this returns.
"""

from __future__ import annotations

import json
import math
import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.limits import LimitDecision, admission_decision, turn_admit
from accounts.models import User
from chat.models import Chat, Message, Role, Status
from chat.parts import parts_of_type, text_part
from chat.paths import root_segment
from chat.services.tree import exchange_append, exchange_loaded, message_append, message_edit, message_regenerate
from chat.services.uploads import IMAGE_TOKENS, MAX_ATTACHMENTS, attachment_parts
from providers.routing import Route, RouteError, route_for
from providers.selectors import default_model_for
from usage.services import AccountDisabled, QuotaExceeded, cost_of, spend_admit
from usage.services.quotas import period_starts, spend_refusal_raise, spend_reservation

# Reserved per turn before the real usage is known (settled when the reply ends).
RESERVED_OUTPUT_TOKENS = 1_000
MAX_CONTENT_CHARACTERS = 100_000
# The constraints that make a `send` with a client_id happen once per user: (owner, client_id)
# on the chat a send starts, (chat, client_id) on the message it saves.
CLIENT_ID_CONSTRAINTS = frozenset({"chat_idempotent_client_id", "message_idempotent_client_id"})


class TurnRefused(Exception):
    """The turn cannot start; `code` and `message` go to the client as an error frame."""

    def __init__(self, code: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True)
class TurnStarted:
    chat: Chat
    user_message: Message | None  # None for a regeneration
    assistant_message: Message
    created: bool  # False: this client_id was sent before; nothing new was started
    route: Route | None = None  # the route checked for the reply: the runner need not resolve it again


def _text_parts(text: str, images: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """A user message's parts: its images (attachments), then its text."""
    return [*(images or ()), text_part(text)]


def _checked_images(user: User, route: Route, upload_ids: list[str] | None) -> list[dict[str, Any]]:
    """The image parts of the user's uploads `upload_ids`, if the route's model takes images."""
    if not upload_ids:
        return []
    if len(upload_ids) > MAX_ATTACHMENTS:
        raise TurnRefused("bad_request", f"Attach at most {MAX_ATTACHMENTS} images.")
    parts = attachment_parts(owner=user, upload_ids=upload_ids)
    if parts is None:
        raise TurnRefused("not_found", "No such upload.")
    _take_images(route, parts)
    return parts


def _take_images(route: Route, images: list[dict[str, Any]]) -> None:
    if images and "image" not in route.input_modalities:
        raise TurnRefused(
            "images_not_supported", f"{route.display_name} does not take images: pick a model marked vision."
        )


def _owned_chat(user: User, chat_id: Any) -> Chat:
    chat = Chat.objects.filter(pk=chat_id, owner=user, deleted_at__isnull=True).select_related("active_leaf").first()
    if chat is None:
        raise TurnRefused("not_found", "No such chat.")
    return chat


def _owned_message(user: User, message_id: Any) -> Message:
    message = (
        Message.objects.filter(pk=message_id, chat__owner=user, chat__deleted_at__isnull=True)
        .select_related("chat", "parent")
        .first()
    )
    if message is None:
        raise TurnRefused("not_found", "No such message.")
    return message


def route_checked(user: User, model_id: str) -> Route:
    """The route to `model_id` (or the user's default when empty), if the user may call it now."""
    if not model_id:
        default = default_model_for(user)
        if default is None:
            raise TurnRefused("no_model", "No model is available to you right now.")
        model_id = default.model_id
    try:
        return route_for(user=user, model_id=model_id)
    except RouteError as error:
        raise TurnRefused(str(error.code), error.message) from None


def _planned(estimated_input: int, route: Route) -> tuple[int, Decimal]:
    """What a turn reserves: tokens (the input and the reply's allowance) and money (the
    estimated cost on a platform model; nothing on BYOK)."""
    reserved = estimated_input + RESERVED_OUTPUT_TOKENS
    estimate = cost_of(
        input_tokens=estimated_input,
        output_tokens=RESERVED_OUTPUT_TOKENS,
        input_price=route.input_price_per_mtok,
        output_price=route.output_price_per_mtok,
    )
    return reserved, Decimal(0) if route.byok else estimate


def _rate_limited(decision: LimitDecision) -> TurnRefused:
    wait = None if math.isinf(decision.retry_after_seconds) else math.ceil(decision.retry_after_seconds)
    when = "Your plan does not allow this." if wait is None else f"Try again in {wait} s."
    return TurnRefused("rate_limited", f"Too many requests. {when}", retry_after=wait)


def _spend_refused(refusal: AccountDisabled | QuotaExceeded) -> TurnRefused:
    if isinstance(refusal, AccountDisabled):
        return TurnRefused("account_disabled", "This account is disabled.")
    return TurnRefused("quota_exceeded", refusal.message, retry_after=refusal.retry_after)


def turn_admission(user: User, estimated_input: int, route: Route) -> dict[str, Any]:
    """Take one message, reserve tokens and (platform models) the estimated cost against the
    spend quota; the reservation, for the runner to settle. Run inside the turn's transaction:
    a refusal raised here rolls back whatever was taken before it."""
    reserved, amount = _planned(estimated_input, route)
    decision = turn_admit(user=user, estimated_tokens=reserved)
    if not decision.allowed:
        raise _rate_limited(decision)
    try:
        spend = spend_admit(user=user, amount=amount)
    except (AccountDisabled, QuotaExceeded) as refusal:
        raise _spend_refused(refusal) from None
    return {"reserved_tokens": reserved, "estimated_input_tokens": estimated_input, **spend}


def _estimate_tokens(text: str, images: int = 0) -> int:
    return len(text) // 4 + 8 + images * IMAGE_TOKENS


def _reply_placeholder(
    chat: Chat, parent: Message, model_id: str, reservation: dict[str, Any], *, locked: bool = False
) -> Message:
    """The reply to stream into. It carries the turn's reservation until the runner settles it."""
    return message_append(
        chat=chat,
        parent=parent,
        role=Role.ASSISTANT,
        content=[],
        model_id=model_id,
        status=Status.STREAMING,
        reservation=reservation,
        locked=locked,
    )


def _repeated_send(user: User, client_id: str | None) -> TurnStarted | None:
    if not client_id:
        return None
    sent = Message.objects.filter(chat__owner=user, client_id=client_id).select_related("chat").first()
    if sent is None:
        return None
    reply = Message.objects.filter(parent=sent, role=Role.ASSISTANT).order_by("rank").first()
    if reply is None:
        return None
    return TurnStarted(chat=sent.chat, user_message=sent, assistant_message=reply, created=False)


def turn_send(
    *,
    user: User,
    chat_id: Any,
    parent_id: Any,
    content: str,
    model_id: str | None,
    client_id: str | None = None,
    attachments: list[str] | None = None,
) -> TurnStarted:
    """A user message (in a new chat when chat_id is None) and an empty reply to stream into.
    `attachments` are ids of the user's uploads, sent as images (the model must take images)."""
    if not content.strip() and not attachments:
        raise TurnRefused("bad_request", "The message is empty.")
    if len(content) > MAX_CONTENT_CHARACTERS:
        raise TurnRefused("bad_request", f"The message is longer than {MAX_CONTENT_CHARACTERS} characters.")
    try:
        if not model_id and chat_id:
            model_id = _owned_chat(user, chat_id).default_model  # the chat's model: read once more, rarely
        route = route_checked(user, model_id or "")
        images = _checked_images(user, route, attachments)
    except TurnRefused:
        # A repeated send is answered with its turn whatever has changed since (checked here
        # only when refusing: `chat_turn_send` checks it first on the way that starts a turn).
        repeated = _repeated_send(user, client_id)
        if repeated is None:
            raise
        return repeated
    parts = _text_parts(content, images)
    try:
        started = _send_at_end(
            user, chat_id, parent_id, parts=parts, text=content, client_id=client_id, route=route, images=len(images)
        )
        if started is None:  # a reply under an earlier message, or a new root: placed in Python
            question = Message(role=Role.USER, content=parts, text=content, client_id=client_id)
            started = _send_saved(user, chat_id, parent_id, question, route=route, images=images)
        return started
    except IntegrityError as error:
        # A copy of this send committed first (a retry racing it on another socket): its INSERT
        # waited on the client_id constraint until that commit, and this one's transaction,
        # its admission included, is rolled back. The answer is the first copy's turn.
        repeated = _repeated_send(user, client_id) if _client_id_conflict(error) else None
        if repeated is None:
            raise
        return repeated


# The common turn, a new chat or a reply at the end of the active branch, in one statement of
# constant text (no ORM query built per turn): see the function's comments in migration chat 0006.
_TURN_SEND = (
    "SELECT status, refused, remaining, capacity, rate, spend_limit, chat_title, chat_default_model,"
    " chat_instructions, chat_message_count, path, depth FROM chat_turn_send("
    "%s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s, %s::ltree)"
)
_ROOT = root_segment(0)


def _send_at_end(
    user: User,
    chat_id: Any,
    parent_id: Any,
    *,
    parts: list[dict[str, Any]],
    text: str,
    client_id: str | None,
    route: Route,
    images: int,
) -> TurnStarted | None:
    """The turn admitted, the chat locked and the exchange appended in one statement, or
    refused with nothing written. None: the exchange goes elsewhere in the tree (under an
    earlier message, or a new root), which the caller places in Python."""
    estimated_input = _estimate_tokens(text, images)
    reserved, amount = _planned(estimated_input, route)
    now = timezone.now()
    starts = period_starts(now)
    reservation = {
        "reserved_tokens": reserved,
        "estimated_input_tokens": estimated_input,
        **spend_reservation(amount, starts=starts),
    }
    new_chat = None if chat_id else uuid.uuid4()
    question_id, reply_id = uuid.uuid4(), uuid.uuid4()
    params = [
        user.pk,
        chat_id or None,
        parent_id if chat_id and parent_id else None,
        new_chat,
        question_id,
        reply_id,
        json.dumps(parts),
        text,
        client_id or None,
        route.model_id,
        json.dumps(reservation),
        float(reserved),
        amount,
        *starts,
        now,
        _ROOT,
    ]
    # Inside a caller's transaction a failing statement (the client_id race) must not abort it.
    with transaction.atomic() if connection.in_atomic_block else nullcontext(), connection.cursor() as cursor:
        cursor.execute(_TURN_SEND, params)
        status, refused, remaining, capacity, rate, limit, title, default_model, instructions, count, path, depth = (
            cursor.fetchone()
        )
    if status == "started":
        chat_values = {"title": title, "default_model": default_model, "instructions": instructions}
        chat_values |= {"message_count": count, "active_leaf_id": reply_id, "last_activity_at": now, "updated_at": now}
        chat = exchange_loaded(
            user=user,
            chat_id=chat_id or new_chat,
            new=new_chat is not None,
            chat_values=chat_values,
            parent_id=parent_id if chat_id else None,
            question={"id": question_id, "content": parts, "text": text, "client_id": client_id or None},
            reply={"id": reply_id, "model_id": route.model_id, "reservation": reservation},
            path=path,
            depth=depth,
            now=now,
        )
        reply = chat.active_leaf
        assert reply is not None
        return TurnStarted(chat=chat, user_message=reply.parent, assistant_message=reply, created=True, route=route)
    if status == "repeated":
        return _repeated_send(user, client_id)
    if status == "elsewhere":
        return None
    if status == "not_found":
        raise TurnRefused("not_found", "No such chat.")
    if status == "rate_limited":
        decision = admission_decision(
            refused=refused, remaining=remaining, capacity=capacity, rate=rate, tokens=reserved
        )
        raise _rate_limited(decision)
    try:
        spend_refusal_raise(refused, limit, starts=starts, now=now)
    except (AccountDisabled, QuotaExceeded) as refusal:
        raise _spend_refused(refusal) from None
    raise RuntimeError(f"chat_turn_send answered {status!r}")  # an answer this code does not know


def _client_id_conflict(error: IntegrityError) -> bool:
    diag = getattr(error.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None) in CLIENT_ID_CONSTRAINTS


def _send_saved(
    user: User, chat_id: Any, parent_id: Any, question: Message, *, route: Route, images: list[dict[str, Any]]
) -> TurnStarted:
    """Admit the turn and save the question and its reply placeholder, in one transaction."""
    model = route.model_id
    content = question.text
    with transaction.atomic():
        reservation = turn_admission(user, _estimate_tokens(content, len(images)), route)
        reply = Message(
            role=Role.ASSISTANT, content=[], model_id=model, status=Status.STREAMING, reservation=reservation
        )
        # The chat is locked once for both appends (a new one is invisible to others until commit).
        chat = _locked_chat(user, chat_id) if chat_id else None
        parent = _parent_in(user, chat, parent_id) if chat is not None and parent_id else None
        if chat is None or (parent is not None and parent.pk == chat.active_leaf_id):
            chat, question, reply = exchange_append(
                chat=chat, owner=user, default_model=model, parent=parent, question=question, reply=reply
            )
        else:  # a new root, or a reply under an earlier message: placed and selected in two appends
            question = _append(chat, parent, question)
            reply = _reply_placeholder(chat, question, model, reservation, locked=True)
    return TurnStarted(chat=chat, user_message=question, assistant_message=reply, created=True, route=route)


_CHAT_COLUMNS = tuple(field.attname for field in Chat._meta.concrete_fields)
_LEAF_COLUMNS = ("id", "chat_id", "parent_id", "path", "depth", "rank")
# Every turn in an existing chat runs this: plain SQL, not a select_related compiled afresh.
_LOCKED_CHAT = f"""
SELECT {", ".join(f"c.{name}" for name in _CHAT_COLUMNS)}, {", ".join(f"l.{name}" for name in _LEAF_COLUMNS)}
FROM {Chat._meta.db_table} AS c LEFT JOIN {Message._meta.db_table} AS l ON l.id = c.active_leaf_id
WHERE c.id = %s AND c.owner_id = %s AND c.deleted_at IS NULL
FOR UPDATE OF c
"""


def _locked_chat(user: User, chat_id: Any) -> Chat:
    """The user's chat, locked for the turn, with its active leaf (usually the new parent; only
    the leaf's place in the tree is read)."""
    with connection.cursor() as cursor:
        cursor.execute(_LOCKED_CHAT, [chat_id, user.pk])
        row = cursor.fetchone()
    if row is None:
        raise TurnRefused("not_found", "No such chat.")
    chat = Chat.from_db(connection.alias, _CHAT_COLUMNS, row[: len(_CHAT_COLUMNS)])
    leaf = row[len(_CHAT_COLUMNS) :]
    if leaf[0] is not None:
        chat.active_leaf = Message.from_db(connection.alias, _LEAF_COLUMNS, leaf)
    return chat


def _parent_in(user: User, chat: Chat, parent_id: Any) -> Message:
    if chat.active_leaf is not None and str(chat.active_leaf_id) == str(parent_id):
        return chat.active_leaf
    parent = Message.objects.filter(pk=parent_id, chat=chat).first()
    if parent is None:
        raise TurnRefused("not_found", "No such message in this chat.")
    return parent


def _append(chat: Chat, parent: Message | None, question: Message) -> Message:
    return message_append(
        chat=chat,
        parent=parent,
        role=Role.USER,
        content=question.content,
        text=question.text,
        client_id=question.client_id,
        locked=True,
    )


def turn_edit(
    *, user: User, message_id: Any, content: str, model_id: str | None = None, attachments: list[str] | None = None
) -> TurnStarted:
    """A user message gets a new sibling with the new text, and a reply to it. `attachments`
    None keeps the original's images; a list (empty too) replaces them."""
    original = _owned_message(user, message_id)
    if original.role != Role.USER:
        raise TurnRefused("bad_request", "Only your own messages can be edited.")
    images_before = parts_of_type(original.content, "image")
    if not content.strip() and not (attachments if attachments is not None else images_before):
        raise TurnRefused("bad_request", "The message is empty.")
    route = route_checked(user, model_id or original.chat.default_model)
    model = route.model_id
    if attachments is None:
        images = images_before
        _take_images(route, images)
    else:
        images = _checked_images(user, route, attachments)
    with transaction.atomic():
        reservation = turn_admission(user, _estimate_tokens(content, len(images)), route)
        edited = message_edit(message=original, content=_text_parts(content, images), text=content)
        reply = _reply_placeholder(original.chat, edited, model, reservation)
    return TurnStarted(chat=original.chat, user_message=edited, assistant_message=reply, created=True, route=route)


def turn_regenerate(*, user: User, message_id: Any, model_id: str | None = None) -> TurnStarted:
    """An assistant message gets a new sibling reply, optionally from another model."""
    original = _owned_message(user, message_id)
    if original.role != Role.ASSISTANT or original.parent is None:
        raise TurnRefused("bad_request", "Only replies can be regenerated.")
    route = route_checked(user, model_id or original.model_id or original.chat.default_model)
    model = route.model_id
    with transaction.atomic():
        reservation = turn_admission(user, _estimate_tokens(original.parent.text), route)
        reply = message_regenerate(message=original, model_id=model, reservation=reservation)
    return TurnStarted(chat=original.chat, user_message=None, assistant_message=reply, created=True, route=route)


def new_client_id() -> str:
    return uuid.uuid4().hex
