from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from chat.client_frames import client_frames_schema

PUBLISHED = Path(settings.BASE_DIR) / "docs" / "protocol.client-frames.schema.json"


class Command(BaseCommand):
    help = (
        "Write the JSON Schema of the frames a tab sends on the chat socket (from the models in\n"
        "chat/client_frames.py) to docs/protocol.client-frames.schema.json, or print it.\n"
        "Example: python manage.py frames_schema --print"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--print", action="store_true", help="print the schema instead of writing the file")

    def handle(self, *args: Any, **options: Any) -> None:
        schema = client_frames_schema()
        if options["print"]:
            self.stdout.write(schema, ending="")
            return
        PUBLISHED.write_text(schema, encoding="utf-8")
        if options["verbosity"]:
            self.stdout.write(f"Wrote {PUBLISHED.relative_to(settings.BASE_DIR)}.")
