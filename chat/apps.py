from __future__ import annotations

from django.apps import AppConfig


class ChatConfig(AppConfig):
    """Branching chats, the generation runner and the WebSocket protocol."""

    name = "chat"
