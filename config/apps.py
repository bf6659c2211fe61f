from __future__ import annotations

from django.apps import AppConfig


class ArborConfig(AppConfig):
    """Installs the project-wide management commands (`serve`) and checks."""

    name = "config"
    label = "arbor"
    verbose_name = "Arbor"
