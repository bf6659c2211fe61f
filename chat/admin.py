"""Chats in the admin: read-only browsing for support, for superusers only. Opening a chat
shows its whole tree as an indented list and writes an audit entry (usage.AuditEntry) naming
who looked at whose chat; the list shows titles and counts, never message text."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from chat.models import Chat, Message
from usage.services.operators import audit_record

# A support view of a huge chat shows its first messages in tree order, not all of them.
MAX_TREE_MESSAGES = 2_000
EXCERPT_CHARACTERS = 400


def _tree_rows(chat: Chat) -> tuple[list[tuple[int, dict[str, Any]]], int]:
    """(depth, message) in tree order (children by rank), and how many messages the chat has."""
    messages = list(
        Message.objects.filter(chat=chat)
        .order_by("depth", "rank")
        .values("id", "parent_id", "role", "text", "status", "model_id", "created_at", "rank")[: MAX_TREE_MESSAGES + 1]
    )
    children: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for message in messages[:MAX_TREE_MESSAGES]:
        children[message["parent_id"]].append(message)
    ordered: list[tuple[int, dict[str, Any]]] = []
    stack = [(0, message) for message in reversed(children[None])]
    while stack:
        depth, message = stack.pop()
        ordered.append((depth, message))
        stack.extend((depth + 1, child) for child in reversed(children[message["id"]]))
    return ordered, chat.message_count


@admin.register(Chat)
class ChatAdmin(admin.ModelAdmin):
    list_display = ["__str__", "owner", "message_count", "visibility", "created_at", "last_activity_at", "deleted_at"]
    list_select_related = ["owner"]
    list_filter = ["visibility", "archived"]
    search_fields = ["=owner__email"]
    ordering = ["-last_activity_at"]
    show_full_result_count = False
    fields = ["title", "owner", "default_model", "visibility", "created_at", "last_activity_at", "deleted_at", "tree"]
    readonly_fields = fields

    # Superusers only, whatever permissions a staff account was given; never editable here.
    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        if response.status_code == 200 and self.has_view_permission(request):
            chat = Chat.objects.filter(pk=object_id).values("owner_id").first()
            if chat is not None:
                audit_record(
                    actor=request.user,  # type: ignore[arg-type]
                    action="chat.view",
                    subject_user_id=chat["owner_id"],
                    target=f"chat {object_id}",
                )
        return response

    @admin.display(description="messages (tree)")
    def tree(self, chat: Chat) -> SafeString:
        rows, total = _tree_rows(chat)
        items = format_html_join(
            "",
            '<li style="margin-left:{}em"><strong>{}</strong> <small>{} {} {}</small><br>{}</li>',
            (
                (
                    depth * 1.5,
                    message["role"],
                    message["status"],
                    message["model_id"],
                    f"{message['created_at']:%Y-%m-%d %H:%M}",
                    message["text"][:EXCERPT_CHARACTERS] + ("…" if len(message["text"]) > EXCERPT_CHARACTERS else ""),
                )
                for depth, message in rows
            ),
        )
        more = f" (the first {MAX_TREE_MESSAGES} of {total} shown)" if total > MAX_TREE_MESSAGES else ""
        return format_html('<ul class="chat-tree">{}</ul><p>{}</p>', items, more)
