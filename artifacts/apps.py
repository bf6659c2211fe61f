from __future__ import annotations

from django.apps import AppConfig


class ArtifactsConfig(AppConfig):
    """Versioned documents the model creates and edits (built by the artifacts issue)."""

    name = "artifacts"
