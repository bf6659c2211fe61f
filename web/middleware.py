"""The Content-Security-Policy of every page: scripts, styles, images and connections come from
this origin only, and no inline script or style attribute runs. So a reply, a title or an
artifact that slipped past the sanitiser still cannot run code or load a remote resource.

The admin is left to Django (its own templates, staff only)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

# `connect-src 'self'` also covers ws:/wss: to this origin (CSP Level 3). `data:` images are the
# highlighter's and inline SVG icons'; remote images in model output are never loaded.
POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
EXEMPT_PREFIXES = ("/admin/",)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith(EXEMPT_PREFIXES):
            response.headers.setdefault("Content-Security-Policy", POLICY)
        return response
