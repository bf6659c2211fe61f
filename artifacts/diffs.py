"""Diffs between two versions: a unified diff of lines (difflib) for every text kind, and a
word-level view for prose, as a list of runs a page can colour:
`[{"op": "equal" | "insert" | "delete", "text": "…"}, …]` (concatenating the `equal` and
`delete` runs gives the old text; `equal` and `insert` the new one)."""

from __future__ import annotations

import difflib
import re
from typing import Any

# Word diffs are quadratic at worst: past this the page shows the unified diff alone.
WORD_DIFF_MAX_CHARS = 50_000
_TOKENS = re.compile(r"\s+|\w+|[^\w\s]")


def unified_diff(old: str, new: str, *, old_name: str, new_name: str) -> str:
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), fromfile=old_name, tofile=new_name
    )
    # A last line without a newline would run into the next diff line.
    return "".join(line if line.endswith("\n") else f"{line}\n\\ No newline at end of file\n" for line in lines)


def word_diff(old: str, new: str) -> list[dict[str, Any]] | None:
    """Runs of words (with their spacing and punctuation); None when either text is too long."""
    if len(old) > WORD_DIFF_MAX_CHARS or len(new) > WORD_DIFF_MAX_CHARS:
        return None
    before, after = _TOKENS.findall(old), _TOKENS.findall(new)
    runs: list[dict[str, Any]] = []

    def add(op: str, tokens: list[str]) -> None:
        if not tokens:
            return
        if runs and runs[-1]["op"] == op:
            runs[-1]["text"] += "".join(tokens)
        else:
            runs.append({"op": op, "text": "".join(tokens)})

    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            add("equal", before[i1:i2])
        else:
            add("delete", before[i1:i2])
            add("insert", after[j1:j2])
    return runs
