from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from usage.services.rollups import usage_rollup


class Command(BaseCommand):
    help = (
        "Recompute the daily usage roll-ups (idempotent: a day is rebuilt whole from its rows).\n"
        "The Celery beat schedule does yesterday and today every 15 minutes; run this to\n"
        "backfill or after restoring rows. Default: yesterday and today.\n"
        "Example: python manage.py rollup_usage --since 2026-01-01"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", type=date.fromisoformat, help="first day, YYYY-MM-DD (default yesterday)")
        parser.add_argument("--until", type=date.fromisoformat, help="last day, YYYY-MM-DD (default today)")

    def handle(self, *args: Any, **options: Any) -> None:
        today = timezone.localdate()
        day, last = options["since"] or today - timedelta(days=1), options["until"] or today
        if day > last:
            raise CommandError(f"the period is empty: {day} is after {last}")
        while day <= last:
            rows = usage_rollup(day=day)
            if options["verbosity"]:
                self.stdout.write(f"{day}: {rows} usage rows rolled up")
            day += timedelta(days=1)
