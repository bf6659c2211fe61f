"""The JSON API's one assembly: django-ninja, its schema at `/api/openapi.json`, its docs page at
`/api/docs` (served by the app, offline), and the one place errors become the envelope
(`common.errors`).

Each app keeps its routes in a router of its own (`<app>/api.py`), added here. Endpoints not yet
moved here are still served by the hand-made views under the same `/api/` prefix (`config.urls`
tries this API first); they answer the same envelope.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.operation import PathView

from accounts.api import BrowserSession, PersonalTokenAuth
from accounts.api import router as accounts_router
from chat.api import router as chat_router
from common.errors import ArborError, error_response
from web.api import router as web_router


class ArborAPI(NinjaAPI):
    """Every answer, an error's too, is never cached: they are one user's data."""

    def create_response(self, request: HttpRequest, data: Any, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().create_response(request, data, *args, **kwargs)
        add_never_cache_headers(response)
        return response

    def on_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse:
        response = super().on_exception(request, exc)
        add_never_cache_headers(response)
        return response


api = ArborAPI(
    title="Arbor",
    version="1",
    description=(
        "Arbor's JSON API. The browser signs in with its session (and sends the CSRF token on"
        " writes); a program sends a personal access token: `Authorization: Bearer arb_…`."
    ),
    urls_namespace="api",
    # The browser's session (CSRF on writes), or a personal access token (`Authorization: Bearer`).
    auth=[BrowserSession(), PersonalTokenAuth()],
    docs_url="/docs",
    openapi_url="/openapi.json",
)
api.add_router("", web_router)
api.add_router("", accounts_router)
api.add_router("", chat_router)


@api.exception_handler(ArborError)
def _arbor_error(request: HttpRequest, error: ArborError) -> HttpResponse:
    response = error_response(error.status_code, error.code, error.message, error.fields)
    for name, value in error.headers.items():
        response[name] = value
    return response


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, error: ValidationError) -> HttpResponse:
    fields: dict[str, list[str]] = {}
    for problem in error.errors:
        # ("body", <the view's body parameter>, field, …), ("query", name), ("path", name)
        loc = [str(part) for part in problem.get("loc", ())]
        where = loc[2:] if loc[:1] == ["body"] else loc[1:]
        message = str(problem.get("msg", "Invalid.")).removeprefix("Value error, ")
        fields.setdefault(".".join(where) or "body", []).append(message)
    return error_response(400, "invalid", "Check the highlighted fields.", fields)


@api.exception_handler(AuthenticationError)
def _not_authenticated(request: HttpRequest, error: AuthenticationError) -> HttpResponse:
    return error_response(401, "not_authenticated", "Sign in, or open the app to start as a guest.")


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, error: HttpError) -> HttpResponse:
    codes = {403: "forbidden", 404: "not_found", 429: "rate_limited"}
    return error_response(error.status_code, codes.get(error.status_code, "invalid"), str(error.message))


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, error: Http404) -> HttpResponse:
    return error_response(404, "not_found", "No such object.")


def _method_not_allowed(self: PathView) -> HttpResponse:
    """ninja's answer to a method a path does not take is plain text: the envelope instead."""
    allowed = sorted({method for operation in self.operations for method in operation.methods})
    response = error_response(405, "method_not_allowed", f"Use {' or '.join(allowed)}.")
    response["Allow"] = ", ".join(allowed)
    add_never_cache_headers(response)
    return response


PathView._not_allowed = _method_not_allowed  # type: ignore[method-assign]
