from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from providers.catalog import catalog_seed


class Command(BaseCommand):
    help = (
        "Load the default model catalog: creators, providers (keys from the environment), models,\n"
        "and the guest and registered tiers' model access. Creates only what is missing, so an\n"
        "operator's edits are kept; safe to run any number of times.\n"
        "Example: python manage.py seed_catalog"
    )

    def handle(self, *args: Any, **options: Any) -> None:
        report = catalog_seed()
        if options["verbosity"] == 0:
            return
        if not report.total:
            self.stdout.write("The catalog is complete: nothing to add.")
            return
        added = ", ".join(f"{count} {kind}" for kind, count in report.created.items())
        self.stdout.write(self.style.SUCCESS(f"Added {added}."))
