"""What every kind of document does: its generation prompt, cleaning and checking content, its
download. Text kinds are written by the reply's model as plain text and streamed; a kind that is
not text (images) says so with `text_generated = False` and is made by its own `make_file`.
"""

from __future__ import annotations

import re
from typing import ClassVar

from django.utils.text import slugify

# The largest document version, in characters: a model stuck in a loop, or a pasted dump, must
# not fill the database or every diff with megabytes.
MAX_CONTENT_CHARS = 200_000
MAX_TITLE_CHARS = 200

# A whole answer wrapped in one Markdown fence (models do this though told not to).
_OUTER_FENCE = re.compile(r"\A\s*(`{3,}|~{3,})[^\n`]*\n(?P<body>.*?)\n?\1\s*\Z", re.DOTALL)


class KindError(Exception):
    """Content or an argument this kind refuses: `message` is shown to the user and the model."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Kind:
    name: ClassVar[str]
    # One line for the model (the tool's description lists the kinds with it).
    summary: ClassVar[str]
    media_type: ClassVar[str]
    extension: ClassVar[str]
    text_generated: ClassVar[bool] = True
    # Whether a word-level diff helps a reader (prose) besides the unified one.
    word_diff: ClassVar[bool] = False

    def instructions(self, *, language: str) -> str:
        """What the writing model is told about the format, beyond "the content only"."""
        raise NotImplementedError

    def language_clean(self, language: object) -> str:
        """The language argument as stored ("" for kinds that have none)."""
        return ""

    def clean(self, text: str) -> str:
        """A model's answer as the document: one fence around everything removed, trailing space
        dropped. User edits are saved as typed (validate only)."""
        match = _OUTER_FENCE.match(text)
        if match is not None:
            text = match.group("body")
        return text.strip("\n").rstrip() + "\n" if text.strip() else ""

    def validate(self, content: str) -> str:
        """The content to save, or KindError saying what is wrong with it."""
        if not content.strip():
            raise KindError("The document is empty.")
        if len(content) > MAX_CONTENT_CHARS:
            raise KindError(
                f"The document has {len(content):,} characters; a version holds at most {MAX_CONTENT_CHARS:,}."
            )
        return content

    def filename(self, *, title: str, language: str) -> str:
        return f"{slugify(title)[:80] or 'document'}{self.extension_for(language)}"

    def extension_for(self, language: str) -> str:
        return self.extension
