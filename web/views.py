"""The web UI's pages beyond the chat screen (which is `config.views.home`), and the one JSON
endpoint they need that the chat and provider APIs do not give: the signed-in user's profile
and usage (`/api/me`)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.models import User
from accounts.services import GuestLimitReached
from accounts.web import request_user_or_guest
from chat.api import BadRequest, json_endpoint, request_json
from web.selectors import key_providers, usage_levels

DISPLAY_NAME_MAX = User._meta.get_field("display_name").max_length or 150
# What PATCH /api/me may change, with each field's length limit.
EDITABLE = {
    "display_name": DISPLAY_NAME_MAX,
    "custom_instructions": User._meta.get_field("custom_instructions").max_length or 4000,
}


@require_GET
def settings_page(request: HttpRequest) -> HttpResponse:
    try:
        user = request_user_or_guest(request)
    except GuestLimitReached as limit:
        return render(request, "guest_limit.html", {"retry_after": limit.retry_after_seconds}, status=429)
    return render(request, "web/settings.html", {"user": user})


def _profile(user: User) -> dict[str, Any]:
    return {
        "email": user.email,
        "display_name": user.display_name,
        "custom_instructions": user.custom_instructions,
        "is_guest": user.is_guest,
        "tier": user.tier.name,
        "usage": usage_levels(user=user),
        "key_providers": key_providers(),
    }


@json_endpoint("GET", "PATCH")
def me(request: HttpRequest, user: User) -> HttpResponse:
    """GET: who you are, your tier's allowances now, and the providers you may add keys for.
    PATCH `{"display_name": "…", "custom_instructions": "…"}` (either or both): your name and
    the instructions added to every conversation of yours (guests too; they stay with the account)."""
    if request.method == "PATCH":
        data = request_json(request)
        unknown = sorted(set(data) - set(EDITABLE))
        if unknown:
            message = "Only `display_name` and `custom_instructions` can be changed here."
            raise BadRequest(message, {key: ["Unknown field."] for key in unknown})
        errors = {
            field: [f"Up to {limit} characters."]
            for field, limit in EDITABLE.items()
            if field in data and (not isinstance(data[field], str) or len(data[field].strip()) > limit)
        }
        if errors:
            raise BadRequest("Check the highlighted fields.", errors)
        for field in data:
            setattr(user, field, data[field].strip())
        user.save(update_fields=list(data))
    return JsonResponse(_profile(user))
