"""The one base class of errors an API answers, and the envelope they are answered in.

An `ArborError` says what went wrong in the caller's terms: an HTTP status, a short machine
code, a sentence for a person, and optionally the fields at fault. The JSON API answers every
one of them (and its own refusals: bad bodies, no session, no such route) the same way:

    {"error": {"code": "...", "message": "...", "fields": {"name": ["..."]}}}

Services raise these (or their subclasses) instead of answering HTTP themselves; the API's one
handler (`config.api`) renders them.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.http import JsonResponse


class ArborError(Exception):
    """A refusal the caller can act on. Subclasses set `status` and `code`; an instance may
    override either, add `fields` (name → messages) and response `headers` (`Retry-After`)."""

    status: ClassVar[int] = 400
    code: str = "invalid"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        fields: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.status_code = status if status is not None else self.status
        self.fields = fields
        self.headers = headers or {}


def error_body(code: str, message: str, fields: dict[str, list[str]] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    return {"error": error}


def error_response(status: int, code: str, message: str, fields: dict[str, list[str]] | None = None) -> JsonResponse:
    return JsonResponse(error_body(code, message, fields), status=status)
