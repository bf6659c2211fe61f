from __future__ import annotations

from django.apps import AppConfig


class UsageConfig(AppConfig):
    """Operators: usage rows, spend quotas, daily roll-ups, the admin console and its commands."""

    name = "usage"
    verbose_name = "Usage and operations"

    def ready(self) -> None:
        from usage import receivers  # noqa: F401  (connects the signal receivers)
