"""Field types shared by the API's pydantic schemas (the JSON API, the chat socket's frames)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, StringConstraints


def _no_nul(value: str) -> str:
    # PostgreSQL's text cannot hold the NUL character: refused here, not failed on saving.
    if "\x00" in value:
        raise ValueError("must not contain the NUL character")
    return value


def text(*, max_length: int, min_length: int = 0, strip: bool = False) -> Any:
    """A string to be stored: at most `max_length` characters (after trimming, with `strip`),
    and no NUL character."""
    constraints = StringConstraints(strip_whitespace=strip, min_length=min_length, max_length=max_length)
    return Annotated[str, constraints, AfterValidator(_no_nul)]
