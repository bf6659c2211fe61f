"""A table as CSV: the header row first, every row with the header's number of columns."""

from __future__ import annotations

import csv
import io

from artifacts.kinds.base import Kind, KindError


class SheetKind(Kind):
    name = "sheet"
    summary = "sheet: a table as CSV (a header row, then the rows)"
    media_type = "text/csv; charset=utf-8"
    extension = ".csv"

    def instructions(self, *, language: str) -> str:
        return (
            "Write it as CSV: a header row, then one line per row, commas between fields, fields "
            "with commas, quotes or line breaks in double quotes. Every row has the header's number "
            "of columns. No Markdown fences and no prose before or after the table."
        )

    def validate(self, content: str) -> str:
        content = super().validate(content)
        rows = self.rows(content)
        if not rows:
            raise KindError("The CSV has no rows.")
        width = len(rows[0])
        for number, row in enumerate(rows[1:], start=2):
            if len(row) != width:
                raise KindError(
                    f"The CSV does not parse as a table: row {number} has {len(row)} columns, the header has {width}."
                )
        return content

    @staticmethod
    def rows(content: str) -> list[list[str]]:
        """The non-blank rows; KindError when the text is not CSV (an unclosed quote, …)."""
        reader = csv.reader(io.StringIO(content), strict=True)
        try:
            return [row for row in reader if row]
        except csv.Error as error:
            raise KindError(f"The CSV does not parse (line {reader.line_num}): {error}.") from None


HANDLER = SheetKind()
