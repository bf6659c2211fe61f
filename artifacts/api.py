"""The artifacts JSON API (`/api/documents/…`, `/api/suggestions/…`; docs/api.md).

Session auth, CSRF on writes, nothing cached (chat's `json_endpoint`). Every document is looked
up among the user's own, in chats that are not deleted, and a version number within that
document only: another user's document, version or suggestion answers 404 like a missing one.
Views parse and validate, call one selector or service, and render.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any

from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.utils.http import content_disposition_header

from accounts.models import User
from artifacts import selectors, services
from artifacts.diffs import unified_diff, word_diff
from artifacts.kinds import KindError, kind_handler
from artifacts.models import Author, Document, DocumentVersion
from chat.api import BadRequest, json_endpoint, request_json
from common.errors import error_response


class Missing(Exception):
    """No such document, version or suggestion of this user's."""


def artifact_endpoint(*methods: str) -> Any:
    """chat's `json_endpoint` (methods, sign-in, 400s, no caching) with this API's 404."""

    def decorate(view: Any) -> Any:
        @functools.wraps(view)
        def inner(request: HttpRequest, user: User, **kwargs: Any) -> HttpResponse:
            try:
                return view(request, user, **kwargs)
            except Missing:
                return error_response(404, "not_found", "No such document, version or suggestion.")

        return json_endpoint(*methods)(inner)

    return decorate


def _document(user: User, document_id: uuid.UUID) -> Document:
    document = selectors.document_owned(user_id=user.pk, document_id=document_id)
    if document is None:
        raise Missing
    return document


def _number(value: Any, name: str) -> int:
    """A version number from a query string or a body (a positive whole number)."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, str) and value.isdecimal() and len(value) <= 9:
        value = int(value)
    if not isinstance(value, int) or not 1 <= value <= 10**9:
        raise BadRequest(f"`{name}` is a version number (1, 2, …).", {name: ["Enter a version number."]})
    return value


def _version(document: Document, number: int) -> DocumentVersion:
    version = selectors.version_of(document=document, number=number)
    if version is None:
        raise Missing
    return version


def _kind_error(error: KindError) -> BadRequest:
    return BadRequest(error.message, {"content": [error.message]}, code="invalid_content")


# --- Documents ---------------------------------------------------------------------------------
@artifact_endpoint("GET")
def documents_list(request: HttpRequest, user: User) -> HttpResponse:
    """The documents of one chat (`?chat=<id>`), oldest first."""
    raw = request.GET.get("chat", "")
    try:
        chat_id = uuid.UUID(raw)
    except ValueError:
        raise BadRequest("`chat` is a chat id.", {"chat": ["Enter a valid id."]}) from None
    documents = selectors.documents_of(user_id=user.pk).filter(chat_id=chat_id).order_by("created_at")
    return JsonResponse({"documents": [selectors.document_summary(document) for document in documents]})


@artifact_endpoint("GET")
def document_detail(request: HttpRequest, user: User, document_id: uuid.UUID) -> HttpResponse:
    return JsonResponse(selectors.document_json(_document(user, document_id)))


@artifact_endpoint("GET", "POST")
def document_versions(request: HttpRequest, user: User, document_id: uuid.UUID) -> HttpResponse:
    """GET: the versions list. POST `{"content", "base_version"?}`: the user's edit as the next
    version (409 when `base_version` is no longer the latest)."""
    document = _document(user, document_id)
    if request.method == "GET":
        return JsonResponse({"versions": [selectors.version_summary(version) for version in document.versions.all()]})
    data = request_json(request)
    content = data.get("content")
    if not isinstance(content, str):
        raise BadRequest("`content` is the document's new text.", {"content": ["Enter text."]})
    handler = kind_handler(document.kind)
    if not handler.text_generated:
        raise BadRequest("A picture cannot be edited as text; ask the model to redraw it.", code="not_editable")
    base = data.get("base_version")
    base_version = None if base is None else _number(base, "base_version")
    try:
        content = handler.validate(content)
        version = services.version_add(
            document=document, content=content, author=Author.USER, base_version=base_version
        )
    except KindError as error:
        raise _kind_error(error) from None
    except services.VersionConflict as conflict:
        return _conflict(f"The document changed meanwhile: its latest version is {conflict.latest}.")
    return JsonResponse(selectors.version_json(document, version), status=201)


def _conflict(message: str) -> HttpResponse:
    return error_response(409, "conflict", message)


@artifact_endpoint("GET")
def version_detail(request: HttpRequest, user: User, document_id: uuid.UUID, number: int) -> HttpResponse:
    document = _document(user, document_id)
    return JsonResponse(selectors.version_json(document, _version(document, number)))


@artifact_endpoint("POST")
def version_restore(request: HttpRequest, user: User, document_id: uuid.UUID, number: int) -> HttpResponse:
    """A new latest version with the content of version `number`."""
    document = _document(user, document_id)
    version = services.version_restore(document=document, version=_version(document, number))
    return JsonResponse(selectors.version_json(document, version), status=201)


@artifact_endpoint("GET")
def document_diff(request: HttpRequest, user: User, document_id: uuid.UUID) -> HttpResponse:
    """`?from=<n>&to=<m>` (default: the latest and the one before)."""
    document = _document(user, document_id)
    latest = document.version_count
    to_number = _number(request.GET.get("to", str(latest)), "to")
    from_number = _number(request.GET.get("from", str(max(to_number - 1, 1))), "from")
    old, new = _version(document, from_number), _version(document, to_number)
    handler = kind_handler(document.kind)
    if not handler.text_generated:
        raise BadRequest("Pictures have no text diff; compare their downloads.", code="not_diffable")
    words = word_diff(old.content, new.content) if handler.word_diff else None
    return JsonResponse(
        {
            "document_id": str(document.pk),
            "from": from_number,
            "to": to_number,
            "unified": unified_diff(old.content, new.content, old_name=f"v{from_number}", new_name=f"v{to_number}"),
            "words": words,
        }
    )


@artifact_endpoint("GET")
def document_download(request: HttpRequest, user: User, document_id: uuid.UUID) -> HttpResponse:
    """`?version=<n>` (default: the latest) as a file: .md, source, .csv or the picture."""
    document = _document(user, document_id)
    version = _version(document, _number(request.GET.get("version", str(document.version_count)), "version"))
    handler = kind_handler(document.kind)
    filename = handler.filename(title=document.title, language=document.language)
    if not handler.text_generated:
        if not version.file:
            raise Missing
        response: HttpResponse = FileResponse(version.file.open("rb"), content_type=handler.media_type)
    else:
        response = HttpResponse(version.content.encode(), content_type=handler.media_type)
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=filename)
    response["X-Content-Type-Options"] = "nosniff"
    return response


# --- Suggestions ---------------------------------------------------------------------------------
@artifact_endpoint("GET")
def document_suggestions(request: HttpRequest, user: User, document_id: uuid.UUID) -> HttpResponse:
    """`?version=<n>` (default: every version) and `?state=pending|accepted|rejected`."""
    document = _document(user, document_id)
    raw = request.GET.get("version")
    number = None if raw is None else _number(raw, "version")
    suggestions = selectors.suggestions_of(document=document, number=number, state=request.GET.get("state"))
    return JsonResponse({"suggestions": [selectors.suggestion_json(suggestion) for suggestion in suggestions]})


def _suggestion(user: User, suggestion_id: uuid.UUID) -> Any:
    suggestion = selectors.suggestion_owned(user_id=user.pk, suggestion_id=suggestion_id)
    if suggestion is None:
        raise Missing
    return suggestion


@artifact_endpoint("POST")
def suggestion_accept(request: HttpRequest, user: User, suggestion_id: uuid.UUID) -> HttpResponse:
    """Applies it to the latest version as a new one: 201 with that version; 409 when it was
    resolved already or its text is gone from the latest version."""
    suggestion = _suggestion(user, suggestion_id)
    try:
        version = services.suggestion_accept(suggestion=suggestion)
    except services.SuggestionStale as stale:
        return _conflict(stale.message)
    except KindError as error:
        raise _kind_error(error) from None
    suggestion.refresh_from_db()
    document = suggestion.version.document
    return JsonResponse(
        {"suggestion": selectors.suggestion_json(suggestion), "version": selectors.version_json(document, version)},
        status=201,
    )


@artifact_endpoint("POST")
def suggestion_reject(request: HttpRequest, user: User, suggestion_id: uuid.UUID) -> HttpResponse:
    suggestion = services.suggestion_reject(suggestion=_suggestion(user, suggestion_id))
    return JsonResponse({"suggestion": selectors.suggestion_json(suggestion)})
