"""The web UI's pages beyond the chat screen (which is `config.views.home`). Their JSON endpoint
(`/api/me`) is in `web.api`."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.services import GuestLimitReached
from accounts.web import request_user_or_guest


@require_GET
def settings_page(request: HttpRequest) -> HttpResponse:
    try:
        user = request_user_or_guest(request)
    except GuestLimitReached as limit:
        return render(request, "guest_limit.html", {"retry_after": limit.retry_after_seconds}, status=429)
    return render(request, "web/settings.html", {"user": user})
