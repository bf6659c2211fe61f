from __future__ import annotations

import csv
from datetime import date, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from usage.selectors import GROUPINGS, UsageLine, usage_totals

PERIODS = ("today", "yesterday", "7d", "30d", "month", "last-month")


def period_days(period: str, today: date) -> tuple[date, date]:
    """[first, last] of a named period ending today (or the last full month)."""
    if period == "today":
        return today, today
    if period == "yesterday":
        return today - timedelta(days=1), today - timedelta(days=1)
    if period in {"7d", "30d"}:
        return today - timedelta(days=int(period[:-1]) - 1), today
    if period == "month":
        return today.replace(day=1), today
    last = today.replace(day=1) - timedelta(days=1)
    return last.replace(day=1), last


class Command(BaseCommand):
    help = (
        "Usage and spend over a period, grouped by user, model, provider, tier, kind, day or\n"
        "byok (several: comma-separated), as a table or CSV. Past days come from the daily\n"
        "roll-ups (rolled up now if missing), today from the usage rows.\n"
        "Example: python manage.py usage_report --period month --by tier,model --format csv > spend.csv"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--period", choices=PERIODS, default="30d", help="a named period (default 30d)")
        parser.add_argument("--since", type=date.fromisoformat, help="first day, YYYY-MM-DD (overrides --period)")
        parser.add_argument("--until", type=date.fromisoformat, help="last day, YYYY-MM-DD (default today)")
        parser.add_argument("--by", default="model", help=f"groupings, comma-separated: {', '.join(GROUPINGS)}")
        parser.add_argument("--format", choices=("table", "csv"), default="table")

    def handle(self, *args: Any, **options: Any) -> None:
        group_by = [name.strip() for name in options["by"].split(",") if name.strip()]
        unknown = [name for name in group_by if name not in GROUPINGS]
        if unknown or not group_by:
            raise CommandError(f"--by takes {', '.join(GROUPINGS)}; not {', '.join(unknown) or 'nothing'}")
        today = timezone.localdate()
        first, last = period_days(options["period"], today)
        if options["since"]:
            first, last = options["since"], options["until"] or today
        elif options["until"]:
            last = options["until"]
        if first > last:
            raise CommandError(f"the period is empty: {first} is after {last}")
        lines = usage_totals(first=first, last=last, group_by=group_by)
        header = [*group_by, "requests", "errors", "input_tokens", "output_tokens", "reasoning_tokens", "cost"]
        rows = [_cells(line, group_by) for line in lines]
        if options["format"] == "csv":
            writer = csv.writer(self.stdout, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)
            return
        self.stdout.write(f"Usage {first} to {last}, by {', '.join(group_by)}\n")
        total = UsageLine(key={})
        for line in lines:
            total.add(vars(line))
        rows.append(["total", *[""] * (len(group_by) - 1), *_cells(total, [])])
        self._table(header, rows)

    def _table(self, header: list[str], rows: list[list[str]]) -> None:
        widths = [max(len(str(row[index])) for row in [header, *rows]) for index in range(len(header))]
        numeric = len(header) - 6
        for number, row in enumerate([header, *rows]):
            cells = [
                str(cell).rjust(width) if index >= numeric else str(cell).ljust(width)
                for index, (cell, width) in enumerate(zip(row, widths, strict=True))
            ]
            self.stdout.write("  ".join(cells).rstrip())
            if number == 0 or number == len(rows) - 1:
                self.stdout.write("  ".join("-" * width for width in widths))


def _cells(line: UsageLine, group_by: list[str]) -> list[str]:
    return [
        *(line.label.get(name, "") for name in group_by),
        str(line.requests),
        str(line.errors),
        str(line.input_tokens),
        str(line.output_tokens),
        str(line.reasoning_tokens),
        f"{line.cost:.6f}",
    ]
