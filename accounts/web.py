"""The request-facing side of guests: who the visitor is, made lazily on first need."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import login
from django.http import HttpRequest

from accounts.client_ip import client_ip
from accounts.models import User
from accounts.services import guest_create

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def request_client_ip(request: HttpRequest) -> str:
    return client_ip(request.META, settings.TRUSTED_PROXIES)


def request_user_or_guest(request: HttpRequest) -> User:
    """The signed-in user, or a new guest signed in on this session (may raise GuestLimitReached)."""
    if request.user.is_authenticated:
        return request.user  # type: ignore[return-value]
    guest = guest_create(client_ip=request_client_ip(request))
    login(request, guest, backend=MODEL_BACKEND)
    return guest
