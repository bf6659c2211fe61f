from __future__ import annotations

from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    """Model catalog, vendor adapters, routing and BYOK (built by the providers issue)."""

    name = "providers"

    def ready(self) -> None:
        from providers import receivers

        receivers.connect()
