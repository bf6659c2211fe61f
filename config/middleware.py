from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from config import views


class HealthProbeMiddleware:
    """Answers /livez and /healthz ahead of the host check and the HTTPS redirect.

    Load balancers probe each process by its IP over plain HTTP; neither answer depends on
    the host asked for, so ALLOWED_HOSTS and SECURE_SSL_REDIRECT have nothing to protect there.
    """

    probes: dict[str, Callable[[HttpRequest], HttpResponse]] = {
        "/livez": views.livez,
        "/healthz": views.healthz,
    }

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = self.probes.get(request.path_info)
        if probe is not None:
            return probe(request)
        return self.get_response(request)
