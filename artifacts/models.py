"""Artifacts: documents the model writes in a chat, each with its whole history.

A `Document` belongs to its owner and the chat it was made in; its content lives in numbered
`DocumentVersion`s (1, 2, …) that are never changed once saved: an edit, an update by the model,
an accepted suggestion or a restore each add the next version (a restore copies an old one).
`Document.version_count` is the latest number; it is bumped under the document's row lock in
the same transaction that adds a version (`artifacts.services`), so numbers never collide or
skip. A `Suggestion` proposes one replacement (original → suggested) in one version's text.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models


class Document(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="documents")
    chat = models.ForeignKey("chat.Chat", on_delete=models.CASCADE, related_name="documents")
    kind = models.CharField(max_length=20, help_text="A key of artifacts.kinds.KINDS.")
    title = models.CharField(max_length=200)
    language = models.CharField(max_length=40, blank=True, help_text="For code: the programming language.")
    created_from_message = models.ForeignKey(
        "chat.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    version_count = models.PositiveIntegerField(default=0, help_text="The latest version's number.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["chat", "created_at"], name="document_chat")]

    def __str__(self) -> str:
        return self.title


class Author(models.TextChoices):
    MODEL = "model"  # written by a reply's model (create_document, update_document)
    USER = "user"  # the owner's edit, restore or accepted suggestion


def version_upload_to(version: DocumentVersion, filename: str) -> str:
    return f"artifacts/{version.document_id}/{filename}"


class DocumentVersion(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    # Text kinds: the document itself. Images: the prompt the picture was made from.
    content = models.TextField(blank=True)
    file = models.FileField(upload_to=version_upload_to, blank=True, help_text="Images: the picture.")
    author = models.CharField(max_length=10, choices=Author.choices)
    message = models.ForeignKey(
        "chat.Message",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The reply whose model wrote this version.",
    )
    restored_from = models.PositiveIntegerField(null=True, blank=True, help_text="A restore copies this version.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["document", "number"], name="document_version_number")]
        ordering = ["number"]

    def __str__(self) -> str:
        return f"{self.document_id} v{self.number}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # History is only ever appended to: a change would rewrite what a diff or a restore shows.
        if not self._state.adding:
            raise ValueError("A document version is never changed; add a new version instead.")
        super().save(*args, **kwargs)


class SuggestionState(models.TextChoices):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class Suggestion(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    version = models.ForeignKey(DocumentVersion, on_delete=models.CASCADE, related_name="suggestions")
    original = models.TextField(help_text="Text of the version to replace (found in it when saved).")
    suggested = models.TextField(blank=True)
    description = models.CharField(max_length=500)
    state = models.CharField(max_length=10, choices=SuggestionState.choices, default=SuggestionState.PENDING)
    # One request_suggestions call: a redelivered task finds its batch saved and adds nothing.
    batch = models.UUIDField(db_index=True)
    applied_version = models.ForeignKey(
        DocumentVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.description
