"""Reading documents, always within one user's own (in chats that are not deleted), and their
JSON shapes for the API and the socket."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet
from django.urls import reverse

from artifacts.models import Document, DocumentVersion, Suggestion, SuggestionState


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def documents_of(*, user_id: int) -> QuerySet[Document]:
    """The user's documents: another user's (or a deleted chat's) answer like missing ones."""
    return Document.objects.filter(owner_id=user_id, chat__deleted_at__isnull=True)


def document_owned(*, user_id: int, document_id: Any) -> Document | None:
    key = _uuid(document_id)
    return None if key is None else documents_of(user_id=user_id).filter(pk=key).first()


def version_of(*, document: Document, number: int) -> DocumentVersion | None:
    """Version `number` of this document only (a number of another document is not found)."""
    return DocumentVersion.objects.filter(document=document, number=number).first()


def version_latest(*, document: Document) -> DocumentVersion:
    return DocumentVersion.objects.get(document=document, number=document.version_count)


def suggestion_owned(*, user_id: int, suggestion_id: Any) -> Suggestion | None:
    key = _uuid(suggestion_id)
    if key is None:
        return None
    return (
        Suggestion.objects.select_related("version__document")
        .filter(pk=key, version__document__owner_id=user_id, version__document__chat__deleted_at__isnull=True)
        .first()
    )


# --- JSON ------------------------------------------------------------------------------------------
def download_url(document: Document, number: int) -> str:
    return f"{reverse('artifacts:download', args=[document.pk])}?version={number}"


def document_summary(document: Document) -> dict[str, Any]:
    return {
        "id": str(document.pk),
        "chat_id": str(document.chat_id),
        "kind": document.kind,
        "title": document.title,
        "language": document.language,
        "created_from_message_id": str(document.created_from_message_id) if document.created_from_message_id else None,
        "latest_version": document.version_count,
        "created_at": document.created_at.isoformat(),
        "updated_at": document.updated_at.isoformat(),
    }


def version_summary(version: DocumentVersion) -> dict[str, Any]:
    return {
        "number": version.number,
        "author": version.author,
        "message_id": str(version.message_id) if version.message_id else None,
        "restored_from": version.restored_from,
        "characters": len(version.content),
        "created_at": version.created_at.isoformat(),
    }


def version_json(document: Document, version: DocumentVersion) -> dict[str, Any]:
    data = {"document_id": str(document.pk), **version_summary(version), "content": version.content}
    data["download_url"] = download_url(document, version.number)
    return data


def document_json(document: Document) -> dict[str, Any]:
    """The document, its versions (oldest first) and its latest version's content."""
    versions = list(document.versions.all())
    latest = versions[-1] if versions else None
    return {
        **document_summary(document),
        "versions": [version_summary(version) for version in versions],
        "latest": version_json(document, latest) if latest is not None else None,
    }


def suggestion_json(suggestion: Suggestion) -> dict[str, Any]:
    return {
        "id": str(suggestion.pk),
        "document_id": str(suggestion.version.document_id),
        "version": suggestion.version.number,
        "original": suggestion.original,
        "suggested": suggestion.suggested,
        "description": suggestion.description,
        "state": suggestion.state,
        "applied_version": suggestion.applied_version.number if suggestion.applied_version else None,
        "created_at": suggestion.created_at.isoformat(),
    }


def suggestions_of(*, document: Document, number: int | None = None, state: str | None = None) -> list[Suggestion]:
    queryset = Suggestion.objects.select_related("version", "applied_version").filter(version__document=document)
    if number is not None:
        queryset = queryset.filter(version__number=number)
    if state is not None and state in SuggestionState.values:
        queryset = queryset.filter(state=state)
    return list(queryset.order_by("created_at"))
