"""Chats and their messages: a tree stored with PostgreSQL ltree.

A message's `path` names its *segment*: the chain of first children it belongs to. The first
child of a message continues its parent's segment one `depth` further; every later sibling starts
a new segment, one ltree label longer, whose label encodes where it branches (the depth of its
first message) and its rank among its siblings (see `chat.paths`). So a message is
(segment, depth); a linear chat of any length keeps a one-label path; ancestors are a few ranges
(one per branch point) and a subtree is `path <@ segment` plus a label comparison. Per-message
full paths would grow with depth (ltree pads each label to 8 bytes) past what a GiST index entry
holds, long before 5,000 turns.

Each message remembers which child is selected (and its rank); the chat its selected root and
its active leaf, so the active branch (root→leaf along the selections) is one ancestors query.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex, GistIndex
from django.contrib.postgres.search import SearchVector
from django.db import models
from django.db.models import Q
from django.db.models.functions import Left
from django_ltree.fields import PathField


class Visibility(models.TextChoices):
    PRIVATE = "private"
    PUBLIC = "public"


class Chat(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chats")
    title = models.CharField(max_length=200, blank=True)
    default_model = models.CharField(max_length=200, blank=True)
    instructions = models.TextField(blank=True, help_text="The chat's preset: a layer of the system prompt.")
    visibility = models.CharField(max_length=10, choices=Visibility.choices, default=Visibility.PRIVATE)
    share_token = models.CharField(max_length=64, null=True, blank=True, unique=True)
    pinned = models.BooleanField(default=False)
    archived = models.BooleanField(default=False)
    forked_from_chat = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    forked_from_message = models.ForeignKey(
        "Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    selected_root = models.ForeignKey("Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    active_leaf = models.ForeignKey("Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    root_count = models.PositiveIntegerField(default=0, help_text="Roots ever created: the next root's rank.")
    message_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    last_activity_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True, help_text="A tombstone, kept for sync.")
    # The client_id of the `send` that started the chat. A new chat has no row a message's
    # (chat, client_id) constraint could collide on, so two copies of that send racing (a retry
    # on a new socket while the first is still being saved) would each make a chat: this column's
    # (owner, client_id) constraint makes the second one's INSERT wait for the first and fail.
    client_id = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "client_id"],
                condition=Q(client_id__isnull=False),
                name="chat_idempotent_client_id",
            ),
        ]
        indexes = [
            models.Index(fields=["owner", "-pinned", "-last_activity_at"], name="chat_list"),
            models.Index(fields=["owner", "updated_at"], name="chat_changes"),
            # Full-text search over titles; chat.queries reads this expression back from here.
            GinIndex(SearchVector("title", config="simple"), name="chat_title_search"),
        ]

    def __str__(self) -> str:
        return self.title or f"chat {self.pk}"


class Role(models.TextChoices):
    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"
    TOOL = "tool"


class Status(models.TextChoices):
    STREAMING = "streaming"
    COMPLETE = "complete"
    STOPPED = "stopped"
    ERROR = "error"


class Message(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="messages")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    path = PathField(help_text="The segment (see the module's docstring).")
    depth = models.PositiveIntegerField(help_text="1 for a root.")
    rank = models.PositiveIntegerField(help_text="Position among its siblings, in creation order.")
    child_count = models.PositiveIntegerField(default=0, help_text="Children ever created: the next child's rank.")
    selected_child = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    selected_rank = models.PositiveIntegerField(null=True, blank=True, help_text="The selected child's rank.")
    role = models.CharField(max_length=10, choices=Role.choices)
    # Parts: [{"type": "text", "text": …}, {"type": "reasoning", …}, {"type": "tool_call", …}, …]
    content = models.JSONField(default=list)
    text = models.TextField(blank=True, help_text="The plain text of the parts, for search and export.")
    model_id = models.CharField(max_length=200, blank=True)
    provider = models.CharField(max_length=100, blank=True)
    usage = models.JSONField(default=dict, blank=True)
    # Kept apart from usage: a fork or an export copies what was used, never what is held.
    reservation = models.JSONField(
        default=dict, blank=True, help_text="What the turn reserved (tokens, spend) until the reply settles it."
    )
    time_to_first_token_ms = models.PositiveIntegerField(null=True, blank=True)
    total_time_ms = models.PositiveIntegerField(null=True, blank=True)
    finish_reason = models.CharField(max_length=20, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.COMPLETE)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.CharField(max_length=300, blank=True)
    # NULL, not "": unique per chat only where a client sent one.
    client_id = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    vote = models.SmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            GistIndex(fields=["path"], name="message_path_gist"),
            models.Index(fields=["parent", "rank"], name="message_siblings"),
            # Where a walk down the selections leaves a segment: leaves and branch selections.
            models.Index(
                fields=["chat", "path", "depth"],
                name="message_segment_exits",
                condition=Q(selected_rank__isnull=True) | Q(selected_rank__gt=0),
            ),
            models.Index(fields=["status"], name="message_streaming", condition=Q(status="streaming")),
            # Full-text search over message text (its first 100,000 characters: a tsvector holds
            # at most 1 MB of lexemes, and one huge paste must not make its insert fail).
            # chat.queries reads this expression back from here, so query and index stay one.
            GinIndex(SearchVector(Left("text", 100_000), config="simple"), name="message_text_search"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["chat", "path", "depth"], name="message_position"),
            models.UniqueConstraint(
                fields=["chat", "client_id"],
                condition=Q(client_id__isnull=False),
                name="message_idempotent_client_id",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.role} {self.pk}"


def upload_to(upload: Upload, filename: str) -> str:
    # The name is ours (the id), never the browser's: nothing a user typed reaches the file system.
    return f"uploads/{upload.owner_id}/{upload.pk}"


class Upload(models.Model):
    """An image a user attached to a message: the file in media storage, the media type found
    from its bytes (never from its name). Served to its owner only (`GET /api/uploads/<id>`)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="uploads")
    file = models.FileField(upload_to=upload_to)
    media_type = models.CharField(max_length=40)
    size = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"upload {self.pk}"
