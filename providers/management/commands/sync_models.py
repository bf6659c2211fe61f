from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from providers.contract import ProviderError
from providers.models import Provider
from providers.services import provider_models_sync


class Command(BaseCommand):
    help = (
        "List a provider's models and report which are new to the catalog or gone from the\n"
        "provider. With --apply, add the new ones as disabled models to review in the admin.\n"
        "Example: python manage.py sync_models openrouter --apply"
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("provider", help="the provider's slug")
        parser.add_argument("--apply", action="store_true", help="add the new models, disabled")

    def handle(self, *args: Any, provider: str, apply: bool, **options: Any) -> None:
        row = Provider.objects.filter(slug=provider).first()
        if row is None:
            raise CommandError(f"no provider {provider!r}")
        try:
            report = provider_models_sync(provider=row, apply=apply)
        except LookupError:
            raise CommandError(f"{provider} has no key set") from None
        except ProviderError as error:
            raise CommandError(f"{provider}: {error.code}: {error.message}") from None
        self.stdout.write(f"new ({len(report.new)}): {', '.join(report.new) or '-'}")
        self.stdout.write(f"gone ({len(report.gone)}): {', '.join(report.gone) or '-'}")
        if apply:
            self.stdout.write(self.style.SUCCESS(f"added, disabled: {', '.join(report.added) or '-'}"))
