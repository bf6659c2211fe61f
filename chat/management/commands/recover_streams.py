from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from django.core.management.base import BaseCommand

from chat.generation import generations_recover_orphans


class Command(BaseCommand):
    help = (
        "Mark replies left `streaming` by a process that died as failed (code `interrupted`),\n"
        "keeping the text their stream buffer still holds. A reply still running in a live\n"
        "process (its heartbeat is fresh) is left alone. `make run` runs this at every start.\n"
        "Example: python manage.py recover_streams"
    )

    def handle(self, *args: Any, **options: Any) -> None:
        recovered = async_to_sync(generations_recover_orphans)()
        if options["verbosity"]:
            self.stdout.write(f"Recovered {recovered} interrupted replies.")
