"""`manage.py rotate_secrets`: re-encrypt every stored API key under the newest key."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from providers.secrets_rotation import secrets_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored API key (platform keys, users' keys and endpoints) under the newest key "
        "in SECRET_ENCRYPTION_KEYS. Put the new key first, keep the old ones after it, run this, then "
        "remove the old keys."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        kwargs.setdefault(
            "epilog",
            'Example: SECRET_ENCRYPTION_KEYS="<new key>,<old key>" python manage.py rotate_secrets '
            '(make a key with: python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())")',
        )
        return super().create_parser(prog_name, subcommand, **kwargs)

    def handle(self, *args: Any, **options: Any) -> None:
        report = secrets_rotate()
        for label, count in report.rotated.items():
            self.stdout.write(f"{label}: {count} rotated")
        self.stdout.write(self.style.SUCCESS(f"Rotated {report.total_rotated} secret(s) under the newest key."))
        if report.total_unreadable:
            raise CommandError(
                f"{report.total_unreadable} secret(s) could not be decrypted with any configured key and were left "
                "as they are: restore the key they were encrypted with, or ask their owners to enter them again."
            )
