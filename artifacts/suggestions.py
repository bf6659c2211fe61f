"""Reviewing a document version: a model proposes replacements, each saved and pushed to the
owner's tabs as soon as its line of the answer has arrived (run by the Celery task
`artifacts.suggest`).

The reviewer is the cheapest model the owner may use that answers without reasoning first (the
one that titles chats, `chat.services.titles.title_model_for`). It answers in JSON Lines, one
`{"original", "suggested", "description"}` per line; a suggestion whose `original` is not an
exact excerpt of the version is dropped (it could never be applied). Frames, through the
channel-layer group `user.<owner id>` (type `chat.event`):

    {"type": "suggestion", "id", "document_id", "version", "original", "suggested", "description",
     "state": "pending", "applied_version": null, "created_at"}
    {"type": "suggestions_done", "document_id", "version", "batch", "count", "error"?}

A batch (one request_suggestions call) is written once: a redelivered task whose batch has
suggestions already saves nothing more.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer

from artifacts.generation import generation_settle
from artifacts.models import DocumentVersion, Suggestion
from artifacts.selectors import suggestion_json
from artifacts.services import suggestion_save
from chat.services.titles import title_model_for, user_group
from providers.contract import ChatMessage, ChatRequest
from providers.routing import Route, RouteError, route_for
from usage.services import ModelCall, model_text

logger = logging.getLogger(__name__)

MAX_SUGGESTIONS = 10
MAX_ORIGINAL_CHARS = 5_000
MAX_SUGGESTED_CHARS = 10_000
MAX_DESCRIPTION_CHARS = 500
MAX_OUTPUT_TOKENS = 4_096
TIMEOUT_SECONDS = 120.0
NO_MODEL = "No model is available to review documents."

SYSTEM = (
    "You review a document and suggest specific improvements: clarity, correctness, style, bugs. "
    'Answer in JSON Lines: one JSON object per line, with the keys "original" (an exact excerpt '
    "of the document, copied character for character: a phrase, a sentence or a few lines), "
    '"suggested" (the text to put in its place) and "description" (why, in one sentence). '
    f"At most {MAX_SUGGESTIONS - 2} suggestions, the most valuable first. Nothing else: no prose, "
    "no Markdown fences, no array."
)


def suggestions_generate(*, version_id: int, batch: str) -> int:
    """Review version `version_id`; returns how many suggestions were saved."""
    version = (
        DocumentVersion.objects.select_related("document__owner__tier", "document__chat").filter(pk=version_id).first()
    )
    if version is None or version.document.chat.deleted_at is not None:
        return 0
    if Suggestion.objects.filter(batch=batch).exists():
        return Suggestion.objects.filter(batch=batch).count()
    document, owner = version.document, version.document.owner
    model_id = title_model_for(owner)
    error = ""
    saved = 0
    if model_id is None:
        error = NO_MODEL
    else:
        try:
            route = route_for(user=owner, model_id=model_id)
        except RouteError:
            error = NO_MODEL
        else:
            saved, call = async_to_sync(_review)(route, version, batch)
            generation_settle(
                user_id=owner.pk, model_id=model_id, written=call, kind="suggestions", chat_id=document.chat_id
            )
            if call.error is not None:
                logger.info("reviewing version %s with %s failed: %s", version_id, model_id, call.error)
                error = call.error.message
    done: dict[str, Any] = {
        "type": "suggestions_done",
        "document_id": str(document.pk),
        "version": version.number,
        "batch": batch,
        "count": saved,
    }
    if error:
        done["error"] = {"message": error}
    async_to_sync(_push)(owner.pk, done)
    return saved


async def _review(route: Route, version: DocumentVersion, batch: str) -> tuple[int, ModelCall]:
    """How many suggestions were saved (each as soon as its line arrived) and the call to bill;
    the call's error says why a review ended early (what was saved before it stays)."""
    document = version.document
    request = ChatRequest(
        model="",
        messages=(ChatMessage.text("user", f"The {document.kind} document {document.title!r}:\n\n{version.content}"),),
        system=SYSTEM,
        max_tokens=MAX_OUTPUT_TOKENS,
    )
    reader = _Lines(version.content)
    saved = 0

    async def save_each(found: list[dict[str, str]]) -> None:
        nonlocal saved
        for suggestion in found:
            if saved < MAX_SUGGESTIONS:
                frame = await sync_to_async(_save)(version, batch, suggestion)
                saved += 1
                await _push(document.owner_id, {"type": "suggestion", **frame})

    async def on_text(text: str) -> None:
        await save_each(reader.feed(text))

    call = await model_text(route, request, on_text=on_text, timeout=TIMEOUT_SECONDS)
    await save_each(reader.close())
    return saved, call


def _save(version: DocumentVersion, batch: str, found: dict[str, str]) -> dict[str, Any]:
    suggestion = suggestion_save(version=version, batch=batch, **found)
    return suggestion_json(suggestion)


async def _push(owner_id: int, frame: dict[str, Any]) -> None:
    """Best effort: the suggestion is saved; a tab that misses it reads it from the API."""
    try:
        await get_channel_layer().group_send(user_group(owner_id), {"type": "chat.event", "frame": frame})
    except Exception:
        logger.exception("could not push a %s frame to user %s", frame.get("type"), owner_id)


class _Lines:
    """Suggestions out of a streamed JSON Lines answer, each once, checked against the text."""

    def __init__(self, content: str) -> None:
        self.content = content
        self.text: list[str] = []
        self.buffer = ""
        self.seen: set[str] = set()
        self.any_line = False

    def feed(self, text: str) -> list[dict[str, str]]:
        self.text.append(text)
        self.buffer += text
        *lines, self.buffer = self.buffer.split("\n")
        return [found for line in lines if (found := self._line(line)) is not None]

    def close(self) -> list[dict[str, str]]:
        rest, self.buffer = self.buffer, ""
        found = self._line(rest)
        if found is not None:
            return [found]
        if not self.any_line:
            return self._array("".join(self.text))
        return []

    def _array(self, text: str) -> list[dict[str, str]]:
        """A model that answered one JSON array (fenced, perhaps) despite the instructions."""
        start, end = text.find("["), text.rfind("]")
        try:
            items = json.loads(text[start : end + 1]) if 0 <= start < end else None
        except ValueError:
            return []
        if not isinstance(items, list):
            return []
        return [found for item in items if (found := self._checked(item)) is not None]

    def _line(self, line: str) -> dict[str, str] | None:
        line = line.strip().rstrip(",")
        if not line.startswith("{"):
            return None
        try:
            item = json.loads(line)
        except ValueError:
            return None
        self.any_line = True
        return self._checked(item)

    def _checked(self, item: Any) -> dict[str, str] | None:
        if not isinstance(item, dict):
            return None
        original, suggested, description = item.get("original"), item.get("suggested"), item.get("description")
        if not (isinstance(original, str) and isinstance(suggested, str) and isinstance(description, str)):
            return None
        if not original or len(original) > MAX_ORIGINAL_CHARS or len(suggested) > MAX_SUGGESTED_CHARS:
            return None
        if original == suggested or original not in self.content or original in self.seen:
            return None
        self.seen.add(original)
        description = " ".join(description.split())[:MAX_DESCRIPTION_CHARS] or "Suggested change."
        return {"original": original, "suggested": suggested, "description": description}
