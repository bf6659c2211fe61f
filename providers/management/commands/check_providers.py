from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from providers.models import Provider
from providers.services import provider_check


class Command(BaseCommand):
    help = (
        "Test each enabled provider's platform key by listing its models, and report which are\n"
        "healthy. Exits 1 when a provider that has a key fails.\n"
        "Example: OPENAI_API_KEY=sk-… python manage.py check_providers"
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("slugs", nargs="*", help="only these providers (default: every enabled one)")

    def handle(self, *args: Any, slugs: list[str], **options: Any) -> None:
        providers = Provider.objects.filter(enabled=True).order_by("slug")
        if slugs:
            providers = providers.filter(slug__in=slugs)
        failed = []
        for provider in providers:
            health = provider_check(provider=provider)
            if not health.configured:
                mark = self.style.WARNING("not set up")
            elif health.healthy:
                mark = self.style.SUCCESS("healthy")
            else:
                mark = self.style.ERROR("failing")
                failed.append(provider.slug)
            self.stdout.write(f"{provider.slug:<12} {mark:<12} {health.detail}")
        if failed:
            raise CommandError(f"failing: {', '.join(failed)}")
