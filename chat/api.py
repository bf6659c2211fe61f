"""The chat JSON API (`/api/…`) and the public share pages (`/share/<token>`).

Session auth, CSRF on writes (X-CSRFToken). Anonymous: 401. Guests may do everything here: their
chats are theirs. Every chat and message id is looked up within the signed-in user's chats that
are not deleted, so another user's ids (and deleted chats) answer 404 exactly like missing ones.
Views parse and validate, call one selector or service (`chat.queries`, `chat.services.chats`)
and render; errors are `{"error": {"code", "message", "fields"?}}`; nothing is cached.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import content_disposition_header
from django.utils.text import slugify
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from ninja import Field, Router, Schema

from accounts.models import User
from accounts.services import GuestLimitReached
from accounts.web import request_user_or_guest
from chat import queries
from chat.models import Chat, Message, Visibility
from chat.services import chats as chat_services
from chat.sharing import shared_chat_read
from common.errors import ArborError, error_response
from common.jsonbody import json_object
from providers.selectors import default_model_for, models_available_to

SEARCH_MAX_LENGTH = 200
# PATCH /api/chats/<id>: field → (JSON type, longest text).
PATCH_FIELDS: dict[str, tuple[type, int]] = {
    "title": (str, 200),
    "default_model": (str, 200),
    "instructions": (str, 20_000),
    "pinned": (bool, 0),
    "archived": (bool, 0),
}


class BadRequest(ArborError):
    def __init__(self, message: str, fields: dict[str, list[str]] | None = None, code: str = "invalid") -> None:
        super().__init__(message, code=code, fields=fields)


def json_endpoint(*methods: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Refuse other methods (405) and anonymous users (401); pass the user; answer Http404 and
    BadRequest as JSON errors; nothing is cached."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                response = error_response(405, "method_not_allowed", f"Use {' or '.join(methods)}.")
                response["Allow"] = ", ".join(methods)
            elif not request.user.is_authenticated:
                response = error_response(401, "not_authenticated", "Sign in, or open the app to start as a guest.")
            else:
                try:
                    response = view(request, request.user, **kwargs)
                except Http404:
                    response = error_response(404, "not_found", "No such chat or message.")
                except BadRequest as error:
                    response = error_response(400, error.code, error.message, error.fields)
            add_never_cache_headers(response)
            return response

        return wrapper

    return decorate


# --- Parsing ----------------------------------------------------------------------------------
def request_json(request: HttpRequest) -> dict[str, Any]:
    """The request's JSON object body, or a 400 `invalid_json` (for every JSON endpoint)."""
    try:
        return json_object(request.body)
    except ValueError:
        raise BadRequest("Send a JSON object.", code="invalid_json") from None


def _choice(request: HttpRequest, name: str, choices: tuple[str, ...]) -> str:
    value = request.GET.get(name, choices[0])
    if value not in choices:
        raise BadRequest(f"`{name}` is one of: {', '.join(choices)}.", {name: ["Not a valid choice."]})
    return value


def _uuid(value: Any, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        raise BadRequest(f"`{name}` is a message id.", {name: ["Enter a valid id."]}) from None


def _patch_changes(data: dict[str, Any], user: User) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    changes: dict[str, Any] = {}
    for name, value in data.items():
        if name not in PATCH_FIELDS:
            errors[name] = ["Unknown field."]
            continue
        kind, longest = PATCH_FIELDS[name]
        if not isinstance(value, kind):
            errors[name] = ["Enter text." if kind is str else "Enter true or false."]
        elif kind is str and len(value.strip()) > longest:
            errors[name] = [f"Use at most {longest} characters."]
        else:
            changes[name] = value.strip() if kind is str else value
    picked = changes.get("default_model")
    if picked and picked not in {option.model_id for option in models_available_to(user)}:
        errors["default_model"] = ["Pick one of the models you may use."]
    if errors:
        raise BadRequest("Check the highlighted fields.", errors)
    return changes


def _since(request: HttpRequest) -> datetime:
    raw = request.GET.get("since", "")
    try:
        since = datetime.fromisoformat(raw)
    except ValueError:
        raise BadRequest("`since` is an ISO 8601 timestamp, such as a previous answer's `now`.") from None
    if since.tzinfo is None:
        raise BadRequest("`since` needs a timezone (`Z` or an offset).")
    return since


# --- Lookups (always scoped to the user) ---------------------------------------------------------
def _owned_chat(user: User, chat_id: uuid.UUID) -> Chat:
    return get_object_or_404(Chat, pk=chat_id, owner=user, deleted_at__isnull=True)


def _share_url(request: HttpRequest, chat: Chat) -> str | None:
    if chat.visibility != Visibility.PUBLIC or not chat.share_token:
        return None
    return request.build_absolute_uri(reverse("share", args=[chat.share_token]))


def _json_text(body: str, status: int = 200) -> HttpResponse:
    return HttpResponse(body, content_type="application/json", status=status)


# --- Endpoints served by the described API (config.api) ----------------------------------------
router = Router(tags=["chat"])


class ModelChoice(Schema):
    id: str
    name: str
    supports_tools: bool
    supports_reasoning: bool
    input_modalities: list[str]
    byok: bool = Field(description="Served by the user's own key or endpoint")


class ModelChoices(Schema):
    models: list[ModelChoice]
    default: str | None = Field(description="The model to preselect, if any")


@router.get("/models", response=ModelChoices, summary="The models you may pick now, and which to preselect")
def models_available(request: HttpRequest) -> ModelChoices:
    user = request.auth
    default = default_model_for(user)
    return ModelChoices(
        models=[
            ModelChoice(
                id=option.model_id,
                name=option.display_name,
                supports_tools=option.supports_tools,
                supports_reasoning=option.supports_reasoning,
                input_modalities=list(option.input_modalities),
                byok=option.byok,
            )
            for option in models_available_to(user)
        ],
        default=default.model_id if default else None,
    )


# --- Endpoints still served here --------------------------------------------------------------
@json_endpoint("GET")
def chats_list(request: HttpRequest, user: User) -> HttpResponse:
    archived = {"false": False, "true": True, "all": None}[_choice(request, "archived", ("false", "true", "all"))]
    raw_limit = request.GET.get("limit", "50")
    if not raw_limit.isdecimal() or not 1 <= int(raw_limit) <= queries.LIST_LIMIT_MAX:
        raise BadRequest(f"`limit` is from 1 to {queries.LIST_LIMIT_MAX}.", {"limit": ["Out of range."]})
    search = request.GET.get("q", "")[:SEARCH_MAX_LENGTH]
    try:
        page = queries.chat_list(
            owner=user, archived=archived, search=search, cursor=request.GET.get("cursor"), limit=int(raw_limit)
        )
    except queries.InvalidCursor:
        raise BadRequest("Use the `next_cursor` of a previous page.", code="invalid_cursor") from None
    return JsonResponse({"chats": page.chats, "next_cursor": page.next_cursor})


@json_endpoint("GET")
def chats_changes(request: HttpRequest, user: User) -> HttpResponse:
    changes = queries.chat_changes(owner=user, since=_since(request))
    now = changes.now.isoformat().replace("+00:00", "Z")
    return JsonResponse({"chats": changes.chats, "deleted": changes.deleted, "now": now})


@json_endpoint("GET", "PATCH", "DELETE")
def chat_detail(request: HttpRequest, user: User, chat_id: uuid.UUID) -> HttpResponse:
    chat = _owned_chat(user, chat_id)
    if request.method == "DELETE":
        chat_services.chat_soft_delete(chat=chat)
        return HttpResponse(status=204)
    if request.method == "PATCH":
        chat = chat_services.chat_update(chat=chat, **_patch_changes(request_json(request), user))
        return JsonResponse({**queries.chat_summary(chat), "share_url": _share_url(request, chat)})
    return _json_text(queries.chat_detail_json(chat, share_url=_share_url(request, chat)))


@json_endpoint("POST")
def chat_fork(request: HttpRequest, user: User, chat_id: uuid.UUID) -> HttpResponse:
    """A copy of root→message (default: the active leaf) as a new chat of this user."""
    chat = _owned_chat(user, chat_id)
    raw_message_id = request_json(request).get("message_id")
    message = None
    if raw_message_id is not None:
        message = get_object_or_404(Message, pk=_uuid(raw_message_id, "message_id"), chat=chat)
    fork = chat_services.chat_copy(chat=chat, owner=user, message=message)
    return JsonResponse(queries.chat_summary(fork), status=201)


@json_endpoint("POST", "DELETE")
def chat_share(request: HttpRequest, user: User, chat_id: uuid.UUID) -> HttpResponse:
    chat = _owned_chat(user, chat_id)
    if request.method == "DELETE":
        chat_services.chat_unshare(chat=chat)
        return HttpResponse(status=204)
    chat = chat_services.chat_share(chat=chat)
    return JsonResponse({"visibility": chat.visibility, "share_url": _share_url(request, chat)})


@json_endpoint("GET")
def chat_export(request: HttpRequest, user: User, chat_id: uuid.UUID) -> HttpResponse:
    chat = _owned_chat(user, chat_id)
    kind = _choice(request, "format", ("json", "markdown"))
    branch = _choice(request, "branch", queries.BRANCHES)
    stem = f"{slugify(chat.title)[:60] or 'chat'}-{chat.pk.hex[:8]}"
    if kind == "json":
        response = _json_text(queries.chat_export_json(chat, branch=branch))
        filename = f"{stem}.json"
    else:
        response = HttpResponse(
            queries.chat_export_markdown(chat, branch=branch), content_type="text/markdown; charset=utf-8"
        )
        filename = f"{stem}.md"
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=filename)
    return response


@json_endpoint("POST")
def message_vote(request: HttpRequest, user: User, message_id: uuid.UUID) -> HttpResponse:
    value = request_json(request).get("value")
    if type(value) is not int or value not in chat_services.VOTES:
        raise BadRequest("`value` is 1 (up), -1 (down) or 0 (none).", {"value": ["Enter 1, -1 or 0."]})
    message = get_object_or_404(
        Message.objects.defer("path"), pk=message_id, chat__owner=user, chat__deleted_at__isnull=True
    )
    try:
        message = chat_services.message_vote(message=message, value=value)
    except chat_services.NotVotable:
        raise BadRequest("Only assistant messages take votes.", code="not_votable") from None
    return JsonResponse({"id": message.pk, "vote": message.vote})


# --- Public share pages ---------------------------------------------------------------------------
def _shared_chat(token: str) -> Chat:
    """The chat shared under `token`; a revoked token, or a deleted chat, is a 404."""
    chats = Chat.objects.select_related("active_leaf")
    return get_object_or_404(chats, share_token=token, visibility=Visibility.PUBLIC, deleted_at__isnull=True)


@never_cache
@require_GET
def share_page(request: HttpRequest, token: str) -> HttpResponse:
    """The shared chat's active branch, read-only, titled from that branch (`chat.sharing`)."""
    shared = shared_chat_read(chat=_shared_chat(token))
    response = render(request, "chat/share.html", {"title": shared.title, "messages": shared.messages, "token": token})
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


@require_POST
def share_fork(request: HttpRequest, token: str) -> HttpResponse:
    """Continue a shared chat in the viewer's account (a new guest's when nobody is signed in)."""
    chat = _shared_chat(token)
    try:
        viewer = request_user_or_guest(request)
    except GuestLimitReached as limit:
        return render(request, "guest_limit.html", {"retry_after": limit.retry_after_seconds}, status=429)
    fork = chat_services.chat_copy_shared(chat=chat, owner=viewer)
    return redirect(f"{reverse('home')}?chat={fork.pk}")
