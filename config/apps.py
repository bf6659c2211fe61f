from __future__ import annotations

from django.apps import AppConfig

from config.logfilters import install_access_log_redaction


class ArborConfig(AppConfig):
    """Installs the project-wide management commands (`serve`) and checks."""

    name = "config"
    label = "arbor"
    verbose_name = "Arbor"

    def ready(self) -> None:
        # daphne's access log is not Python logging: its own hook keeps share tokens out of it.
        install_access_log_redaction()
