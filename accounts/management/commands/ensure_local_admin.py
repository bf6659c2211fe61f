from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from accounts.services import local_admin_ensure


class Command(BaseCommand):
    help = (
        "Create a superuser for a local install if there is none, and print its login once.\n"
        "Example: python manage.py ensure_local_admin --email me@example.com"
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--email", default="admin@localhost", help="the admin's email (default admin@localhost)")

    def handle(self, *args: Any, email: str, **options: Any) -> None:
        created = local_admin_ensure(email=email)
        if created is None:
            return
        self.stdout.write(
            self.style.SUCCESS("Created the local admin account. Its password is shown this once:\n")
            + f"  email:    {created.email}\n  password: {created.password}\n"
        )
