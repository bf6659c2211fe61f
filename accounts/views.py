"""Sign-up, sign-in and sign-out pages. A guest who signs up keeps their data; a guest who signs
in to an existing account has it moved there."""

from __future__ import annotations

import math

from django.conf import settings
from django.contrib.auth import login, logout
from django.core.exceptions import NON_FIELD_ERRORS
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render, resolve_url
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from accounts.forms import SignInForm, SignUpForm
from accounts.models import User
from accounts.services import (
    EmailTaken,
    SignInLimitReached,
    guest_data_transfer,
    signin_attempt_spend,
    user_sign_up,
)
from accounts.web import MODEL_BACKEND, request_client_ip


def _next_url(request: HttpRequest) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(candidate, {request.get_host()}, require_https=request.is_secure()):
        return candidate
    # Resolved here, and the redirects below never resolve `next` as a URL name: a bare word
    # that names no URL would otherwise raise NoReverseMatch (a 500) after signing in.
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def _current_guest(request: HttpRequest) -> User | None:
    user = request.user
    return user if user.is_authenticated and user.is_guest else None  # type: ignore[union-attr,return-value]


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = user_sign_up(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password"],
                guest=_current_guest(request),
            )
        except EmailTaken:
            form.add_error("email", "An account with this email already exists. Sign in instead.")
        else:
            login(request, user, backend=MODEL_BACKEND)
            return HttpResponseRedirect(_next_url(request))
    return render(request, "accounts/signup.html", {"form": form, "next": _next_url(request)})


@require_http_methods(["GET", "POST"])
def signin(request: HttpRequest) -> HttpResponse:
    form = SignInForm(request.POST or None, request=request)
    if request.method == "POST":
        try:
            signin_attempt_spend(client_ip=request_client_ip(request))
        except SignInLimitReached as limit:
            minutes = math.ceil(limit.retry_after_seconds / 60)
            # An unbound form: validating the posted one would check the password, and the page
            # would then tell a guesser whether it was right.
            form = SignInForm(initial={"email": request.POST.get("email", "")}, request=request)
            form.errors[NON_FIELD_ERRORS] = form.error_class(
                [f"Too many sign-in attempts. Try again in {minutes} minute(s)."],
                error_class="nonfield",
                renderer=form.renderer,
            )
            return render(request, "accounts/signin.html", {"form": form, "next": _next_url(request)}, status=429)
        if form.is_valid() and form.user is not None:
            guest = _current_guest(request)
            if guest is not None:
                guest_data_transfer(guest=guest, target=form.user)
            login(request, form.user, backend=MODEL_BACKEND)
            return HttpResponseRedirect(_next_url(request))
    return render(request, "accounts/signin.html", {"form": form, "next": _next_url(request)})


@require_POST
def signout(request: HttpRequest) -> HttpResponseRedirect:
    logout(request)
    return redirect(settings.LOGOUT_REDIRECT_URL)
