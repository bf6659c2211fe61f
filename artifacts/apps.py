from __future__ import annotations

from django.apps import AppConfig


class ArtifactsConfig(AppConfig):
    """Versioned documents the model creates and edits in a chat."""

    name = "artifacts"

    def ready(self) -> None:
        # chat never imports artifacts: the tools are offered by registering them here.
        from artifacts.tools import TOOLS
        from chat.tools import tool_register

        for tool in TOOLS:
            tool_register(tool)
