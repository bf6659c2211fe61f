from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from usage.services.operators import UnknownTier, UnknownUser, user_tier_set


class Command(BaseCommand):
    help = (
        "Move a registered user to another tier (its rate limits, quotas and models apply from\n"
        "their next turn). Written to the audit log.\n"
        "Example: python manage.py set_tier ada@example.com pro"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email", help="the account's email (any case)")
        parser.add_argument("tier", help="the tier's slug")

    def handle(self, *args: Any, email: str, tier: str, **options: Any) -> None:
        try:
            user, old, new = user_tier_set(email=email, tier_slug=tier)
        except UnknownUser:
            raise CommandError(f"no account with the email {email!r}") from None
        except UnknownTier:
            raise CommandError(f"no tier {tier!r}") from None
        self.stdout.write(self.style.SUCCESS(f"{user}: {old.slug} → {new.slug}"))
