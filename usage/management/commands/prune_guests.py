from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from usage.services.operators import guests_prune


class Command(BaseCommand):
    help = (
        "Delete guests idle for N days (no sign-in, chat activity or generation) with their data:\n"
        "chats and messages, keys and limits. Their usage rows stay in the totals, anonymous.\n"
        "A dry run by default: it only counts them; --apply deletes.\n"
        "Example: python manage.py prune_guests --days 90 --apply"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=30, help="idle for at least this many days (default 30)")
        parser.add_argument("--apply", action="store_true", help="delete them (default: only count)")

    def handle(self, *args: Any, days: int, apply: bool, **options: Any) -> None:
        if days < 1:
            raise CommandError("--days must be 1 or more")
        result = guests_prune(days=days, apply=apply)
        if result.deleted:
            self.stdout.write(self.style.SUCCESS(f"Deleted {result.guests} guests idle for {days} days."))
        else:
            self.stdout.write(f"{result.guests} guests idle for {days} days would be deleted (dry run; --apply).")
