"""Prose in Markdown: essays, letters, plans."""

from __future__ import annotations

from artifacts.kinds.base import Kind


class TextKind(Kind):
    name = "text"
    summary = "text: prose in Markdown (an essay, a letter, a plan)"
    media_type = "text/markdown; charset=utf-8"
    extension = ".md"
    word_diff = True

    def instructions(self, *, language: str) -> str:
        return "Write it in Markdown. Do not wrap the whole document in a code fence."


HANDLER = TextKind()
