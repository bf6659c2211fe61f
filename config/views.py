from __future__ import annotations

import os

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.services import GuestLimitReached
from accounts.web import request_user_or_guest
from config.health import health_report


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    try:
        user = request_user_or_guest(request)
    except GuestLimitReached as limit:
        return render(request, "guest_limit.html", {"retry_after": limit.retry_after_seconds}, status=429)
    return render(request, "home.html", {"user": user})


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    healthy, report = health_report()
    return JsonResponse(report, status=200 if healthy else 503)


@never_cache
@require_GET
def livez(request: HttpRequest) -> JsonResponse:
    """The process answers; no dependency is checked (for a load balancer's liveness probe).

    X-Arbor-Process names the answering process (its pid, no secret): several web processes
    share a port, and this tells an operator or a test which one answered."""
    response = JsonResponse({"status": "ok"})
    response["X-Arbor-Process"] = str(os.getpid())
    return response
