"""Writing documents: creating one with its first version, adding versions (the model's update,
the user's edit, a restore, an accepted suggestion) and resolving suggestions.

Every new version is numbered under the document's row lock, in the transaction that saves it:
numbers are 1, 2, 3, … with no gap or repeat however many writers race. Callers validate
content with the kind's handler first (`artifacts.kinds`); these functions enforce the rest.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from artifacts.kinds import kind_handler
from artifacts.models import Author, Document, DocumentVersion, Suggestion, SuggestionState


class VersionConflict(Exception):
    """The document moved past the version an edit was based on."""

    def __init__(self, latest: int) -> None:
        super().__init__(f"the latest version is {latest}")
        self.latest = latest


class SuggestionStale(Exception):
    """The suggestion's original text is no longer in the latest version, or it is resolved."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _file_for(document_id: Any, number: int, data: bytes | None, extension: str) -> ContentFile | None:
    if data is None:
        return None
    return ContentFile(data, name=f"v{number}-{uuid.uuid4().hex[:8]}{extension}")


@transaction.atomic
def document_create(
    *,
    document_id: Any,
    owner_id: int,
    chat_id: Any,
    message_id: Any,
    kind: str,
    title: str,
    language: str,
    content: str,
    file_data: bytes | None = None,
) -> tuple[Document, DocumentVersion]:
    """A document and its version 1, written by the model of reply `message_id`."""
    document = Document.objects.create(
        id=document_id,
        owner_id=owner_id,
        chat_id=chat_id,
        kind=kind,
        title=title,
        language=language,
        created_from_message_id=message_id,
        version_count=1,
    )
    version = DocumentVersion.objects.create(
        document=document,
        number=1,
        content=content,
        file=_file_for(document.pk, 1, file_data, kind_handler(kind).extension),
        author=Author.MODEL,
        message_id=message_id,
    )
    return document, version


@transaction.atomic
def version_add(
    *,
    document: Document,
    content: str,
    author: str,
    message_id: Any = None,
    restored_from: int | None = None,
    file_data: bytes | None = None,
    file_name: str = "",
    base_version: int | None = None,
) -> DocumentVersion:
    """The document's next version. With `base_version`, VersionConflict unless that is still
    the latest (an edit made from an older screen must not silently undo another one)."""
    locked = Document.objects.select_for_update().get(pk=document.pk)
    if base_version is not None and base_version != locked.version_count:
        raise VersionConflict(locked.version_count)
    number = locked.version_count + 1
    file: Any = _file_for(document.pk, number, file_data, kind_handler(locked.kind).extension)
    if file is None and file_name:
        file = file_name  # a restored picture: the same stored file (versions never change it)
    version = DocumentVersion.objects.create(
        document=locked,
        number=number,
        content=content,
        file=file or "",
        author=author,
        message_id=message_id,
        restored_from=restored_from,
    )
    Document.objects.filter(pk=document.pk).update(version_count=F("version_count") + 1, updated_at=timezone.now())
    document.version_count = number
    return version


def version_restore(*, document: Document, version: DocumentVersion) -> DocumentVersion:
    """A new latest version with the content (and picture) of `version`."""
    return version_add(
        document=document,
        content=version.content,
        author=Author.USER,
        restored_from=version.number,
        file_name=version.file.name if version.file else "",
    )


# --- Suggestions ----------------------------------------------------------------------------------
def suggestion_save(
    *, version: DocumentVersion, batch: Any, original: str, suggested: str, description: str
) -> Suggestion:
    return Suggestion.objects.create(
        version=version, batch=batch, original=original, suggested=suggested, description=description
    )


@transaction.atomic
def suggestion_accept(*, suggestion: Suggestion) -> DocumentVersion:
    """Apply the suggestion to the latest version (its original text replaced, once) as a new
    version. SuggestionStale when it was resolved already or its text is gone from the latest."""
    locked = Suggestion.objects.select_for_update().select_related("version__document").get(pk=suggestion.pk)
    if locked.state != SuggestionState.PENDING:
        raise SuggestionStale(f"This suggestion was {locked.state} already.")
    document = locked.version.document
    latest = DocumentVersion.objects.get(document=document, number=document.version_count)
    if locked.original not in latest.content:
        raise SuggestionStale("The text this suggestion changes is no longer in the latest version.")
    content = latest.content.replace(locked.original, locked.suggested, 1)
    kind_handler(document.kind).validate(content)
    version = version_add(document=document, content=content, author=Author.USER)
    Suggestion.objects.filter(pk=locked.pk).update(
        state=SuggestionState.ACCEPTED, applied_version=version, resolved_at=timezone.now()
    )
    return version


def suggestion_reject(*, suggestion: Suggestion) -> Suggestion:
    """Mark it rejected (a resolved suggestion stays as it was)."""
    Suggestion.objects.filter(pk=suggestion.pk, state=SuggestionState.PENDING).update(
        state=SuggestionState.REJECTED, resolved_at=timezone.now()
    )
    suggestion.refresh_from_db()
    return suggestion


def suggestions_request(*, document: Document, batch: Any) -> int:
    """Queue a review of the latest version (after the current transaction commits); returns
    that version's number. The suggestions reach the owner's tabs as the worker saves them."""
    from artifacts.tasks import suggest_after_commit

    version = DocumentVersion.objects.only("pk", "number").get(document=document, number=document.version_count)
    suggest_after_commit(version_id=version.pk, batch=str(batch))
    return version.number
