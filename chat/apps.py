from __future__ import annotations

from django.apps import AppConfig


class ChatConfig(AppConfig):
    """Branching chats, the generation runner and the WebSocket protocol."""

    name = "chat"

    def ready(self) -> None:
        # Apps below chat never import it: chat answers their signals and fills their registries.
        from chat import receivers  # noqa: F401  (connects the signal receivers)
        from chat.selectors import replies_streaming_count
        from usage.dashboard import running_counter_register

        running_counter_register("chat", replies_streaming_count)
