"""Titling a chat after its first exchange (run by the Celery task `chat.title_chat`).

The cheapest model the owner may use writes a 3-6 word title; when no model answers (none is
set up, the provider fails, the answer is empty) a heuristic title is made from the first
message instead, so every chat gets a title. A title the user set meanwhile is never
overwritten. The new title is pushed to every tab of the owner:

    group   f"user.{owner_id}"                       (`user_group`)
    message {"type": "chat.event", "frame": {...}}   (the consumer's `chat_event` handler sends
                                                      `frame` to its socket as it is)
    frame   {"type": "chat", "chat_id": "<uuid>", "title": "<title>"}
"""

from __future__ import annotations

import logging
import re
from decimal import Decimal
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from accounts.models import User
from chat.frames import chat_title_changed
from chat.models import Chat, Message, Role
from chat.parts import text_of
from providers.contract import ChatMessage, ChatRequest
from providers.models import Model, WireProtocol
from providers.routing import RouteError, route_for
from providers.selectors import models_available_to
from usage.services import model_call_bill, model_text

logger = logging.getLogger(__name__)

TITLE_SYSTEM_PROMPT = (
    "Write a 3-6 word title for the conversation below, in the language of the conversation. "
    "Answer with the title only: no quotes, no Markdown, no final punctuation."
)
TITLE_MAX_TOKENS = 24
TITLE_TEMPERATURE = 0.2
# The whole call (retries and failover included): a title is not worth waiting longer for.
TITLE_TIMEOUT_SECONDS = 30.0
EXCERPT_CHARS = 1_500  # of each message sent to the model
MAX_TITLE_CHARS = 80
HEURISTIC_TITLE_CHARS = 60
FALLBACK_TITLE = "New chat"
# How far down the active branch to look for the first user message and its reply.
FIRST_EXCHANGE_DEPTH = 4


def user_group(user_id: Any) -> str:
    """The channel-layer group every socket of one user joins."""
    return f"user.{user_id}"


def chat_title_generate(*, chat_id: Any) -> str:
    """Title the chat unless it has a title; returns the chat's title ("" when it has no user
    message yet: nothing to title). Safe to run twice (a redelivered task changes nothing)."""
    chat = Chat.objects.select_related("owner", "owner__tier").filter(pk=chat_id, deleted_at__isnull=True).first()
    if chat is None:
        return ""
    if chat.title:
        return chat.title
    question, answer = _first_exchange(chat)
    if not question.strip():
        return ""
    title = _model_title(chat.owner, question, answer, chat.pk) or heuristic_title(question)
    saved = Chat.objects.filter(pk=chat.pk, title="").update(title=title, updated_at=timezone.now())
    if not saved:
        # The user named it meanwhile: theirs stands (and was pushed when they set it).
        return Chat.objects.filter(pk=chat.pk).values_list("title", flat=True).first() or ""
    _push(chat, title)
    return title


# --- The first exchange -------------------------------------------------------------------------
def _first_exchange(chat: Chat) -> tuple[str, str]:
    """The text of the active branch's first user message and of the reply to it ("" if none),
    following the selections from the selected root: a few primary-key reads, whatever the
    chat's length."""
    question = answer = ""
    message_id = chat.selected_root_id
    for _ in range(FIRST_EXCHANGE_DEPTH):
        if message_id is None:
            break
        row = Message.objects.filter(pk=message_id).values_list("role", "content", "selected_child_id").first()
        if row is None:
            break
        role, content, message_id = row
        if role == Role.USER and not question:
            question = text_of(content)
        elif role == Role.ASSISTANT and question:
            answer = text_of(content)
            break
    return question, answer


# --- Asking a model -----------------------------------------------------------------------------
def title_model_for(user: User) -> str | None:
    """The model that titles `user`'s chats: the cheapest (input + output price) enabled
    platform model they may use now, preferring models that answer without reasoning first (a
    reasoning model spends a 24-token budget thinking and answers nothing); their first BYOK
    model when they have nothing else; never the offline demo (its canned reply makes a worse
    title than the heuristic)."""
    options = models_available_to(user)
    platform_ids = [option.model_id for option in options if not option.byok]
    candidates = (
        Model.objects.filter(model_id__in=platform_ids, enabled=True)
        .exclude(routes__provider__protocol=WireProtocol.DEMO)
        .values_list("model_id", "supports_reasoning", "input_price_per_mtok", "output_price_per_mtok")
    )
    ranked = sorted(
        candidates,
        key=lambda row: (row[1], Decimal(row[2]) + Decimal(row[3]), row[0]),
    )
    if ranked:
        return ranked[0][0]
    byok = [option.model_id for option in options if option.byok]
    return byok[0] if byok else None


def _model_title(owner: User, question: str, answer: str, chat_id: Any = None) -> str:
    """A sanitised title from the cheapest model, or "" when none answers. Every call is billed
    and recorded (kind "title"), failed ones with their error code."""
    model_id = title_model_for(owner)
    if model_id is None:
        return ""
    conversation = f"User: {question[:EXCERPT_CHARS]}"
    if answer.strip():
        conversation += f"\n\nAssistant: {answer[:EXCERPT_CHARS]}"
    request = ChatRequest(
        model="",  # RoutedStream sets each candidate's provider-side id
        messages=(ChatMessage.text("user", f"{conversation}\n\nTitle:"),),
        system=TITLE_SYSTEM_PROMPT,
        temperature=TITLE_TEMPERATURE,
        max_tokens=TITLE_MAX_TOKENS,
    )
    try:
        route = route_for(user=owner, model_id=model_id)
    except RouteError as error:
        logger.info("titling with %s failed (%s): using the heuristic title", model_id, error)
        return ""
    call = async_to_sync(model_text)(route, request, timeout=TITLE_TIMEOUT_SECONDS)
    model_call_bill(call, user_id=owner.pk, kind="title", model_id=route.model_id, chat_id=chat_id)
    if call.error is not None:
        logger.info("titling with %s failed (%s): using the heuristic title", model_id, call.outcome)
        return ""
    return sanitize_title(call.text)


# --- Cleaning up ----------------------------------------------------------------------------------
_LEADING_MARKUP = re.compile(r"^(?:[#>*_`~\-\s]|\d+[.)]\s)+")
_LABEL = re.compile(r"^(?:chat\s+)?title\s*:\s*", re.IGNORECASE)
_QUOTES = "\"'`“”‘’«»„"  # noqa: RUF001 - typographic quotes are what models wrap titles in
_MARKUP = re.compile(r"[*_`~]+")
_SPACES = re.compile(r"\s+")


def _cut(text: str, limit: int) -> str:
    """`text` within `limit` characters, cut at a word boundary when there is one."""
    if len(text) <= limit:
        return text
    cut = text[: limit + 1].rsplit(" ", 1)[0] if " " in text[:limit] else text[:limit]
    return cut[:limit].rstrip(" ,;:-–—")  # noqa: RUF001 - dashes, not hyphens


def sanitize_title(text: str) -> str:
    """One line of plain text, at most MAX_TITLE_CHARS: no label, quotes, Markdown or final
    punctuation ("" when nothing is left)."""
    line = next((line for line in text.splitlines() if line.strip()), "")
    line = _LABEL.sub("", _LEADING_MARKUP.sub("", line.strip()))
    line = _MARKUP.sub("", line)
    line = _SPACES.sub(" ", line).strip().strip(_QUOTES).strip()
    line = line.rstrip(".!;:,").strip().strip(_QUOTES).strip()
    return _cut(line, MAX_TITLE_CHARS)


def heuristic_title(question: str) -> str:
    """The first sentence (or line) of the first message, within HEURISTIC_TITLE_CHARS at a word
    boundary (an ellipsis marks a cut); FALLBACK_TITLE when it has no text."""
    line = next((line for line in question.splitlines() if line.strip()), "")
    line = _SPACES.sub(" ", _MARKUP.sub("", _LEADING_MARKUP.sub("", line.strip()))).strip()
    sentence = re.split(r"(?<=[.!?])\s", line, maxsplit=1)[0].rstrip(".").strip()
    if not sentence:
        return FALLBACK_TITLE
    cut = _cut(sentence, HEURISTIC_TITLE_CHARS)
    return cut if cut == sentence else f"{cut}…"


# --- Telling the tabs -----------------------------------------------------------------------------
def _push(chat: Chat, title: str) -> None:
    """Best effort: the title is saved; a tab that misses the frame sees it on its next list."""
    frame = chat_title_changed(str(chat.pk), title)
    try:
        async_to_sync(get_channel_layer().group_send)(user_group(chat.owner_id), {"type": "chat.event", "frame": frame})
    except Exception:  # a push failure must not undo or fail the titling
        logger.exception("could not push the title of chat %s", chat.pk)
