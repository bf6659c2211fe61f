"""JSON endpoints for a signed-in user's own keys, endpoints and models (BYOK).

Session auth, CSRF on writes (the browser sends X-CSRFToken). Anonymous: 401; guests may read
(their lists are empty) but not write: 403. Bodies are JSON objects validated here by small
forms (400 `{"error": {"code", "message", "fields"}}`); byok.py does the rest. No response or
log line carries a secret in clear: keys leave masked (`sk-…9f2c`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers

from accounts.models import User
from common.errors import error_response
from common.jsonbody import json_object
from providers import byok
from providers.contract import ProviderError
from providers.models import BYOK_SLUG, Modality, Provider, UserByokModel, UserCustomProvider

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


# --- Answers -------------------------------------------------------------------------------------
def _refusal(request: HttpRequest, user: Any, methods: tuple[str, ...]) -> JsonResponse | None:
    if request.method not in methods:
        response = error_response(405, "method_not_allowed", f"Use {' or '.join(methods)}.")
        response["Allow"] = ", ".join(methods)
        return response
    if not user.is_authenticated:
        return error_response(401, "not_authenticated", "Sign in to manage your keys and endpoints.")
    if request.method in WRITE_METHODS and user.is_guest:
        return error_response(403, "sign_up_required", "Guests cannot add their own keys or endpoints. Sign up first.")
    return None


def _answer_error(error: Exception) -> JsonResponse:
    if isinstance(error, byok.ByokNotFound):
        return error_response(404, "not_found", error.message)
    if isinstance(error, byok.ByokRateLimited):
        response = error_response(429, "rate_limited", error.message)
        response["Retry-After"] = str(error.retry_after_seconds)
        return response
    if isinstance(error, byok.ByokGuestRefused):
        return error_response(403, "sign_up_required", error.message)
    if isinstance(error, byok.ByokError):
        return error_response(400, "invalid", error.message, error.fields)
    if isinstance(error, ProviderError):
        return error_response(502, str(error.code), error.message)
    raise error


def json_api(*methods: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Refuse other methods, anonymous users and guests' writes; pass the user; answer byok's
    refusals and provider errors as JSON; nothing is cached. Works on sync and async views."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_wrapper(request: HttpRequest, **kwargs: Any) -> HttpResponse:
                user = await request.auser()
                refusal = _refusal(request, user, methods)
                if refusal is not None:
                    return refusal
                try:
                    response = await view(request, user, **kwargs)
                except (byok.ByokError, ProviderError) as error:
                    response = _answer_error(error)
                add_never_cache_headers(response)
                return response

            return async_wrapper

        @functools.wraps(view)
        def wrapper(request: HttpRequest, **kwargs: Any) -> HttpResponse:
            refusal = _refusal(request, request.user, methods)
            if refusal is not None:
                return refusal
            try:
                response = view(request, request.user, **kwargs)
            except byok.ByokError as error:
                response = _answer_error(error)
            add_never_cache_headers(response)
            return response

        return wrapper

    return decorate


class BadBody(Exception):
    pass


def _body(request: HttpRequest) -> dict[str, Any]:
    try:
        return json_object(request.body)
    except ValueError:
        raise BadBody from None


def _validated(form_class: type[JsonForm], request: HttpRequest, **kwargs: Any) -> JsonForm | JsonResponse:
    try:
        form = form_class(_body(request), **kwargs)
    except BadBody:
        return error_response(400, "invalid_json", "Send a JSON object.")
    if not form.is_valid():
        fields = {name: [str(message) for message in messages] for name, messages in form.errors.items()}
        return error_response(400, "invalid", "Check the highlighted fields.", fields)
    return form


# --- Forms (validation at the edge) ----------------------------------------------------------
class JsonForm(forms.Form):
    """A form over a parsed JSON object: text fields must be JSON strings."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name, field in self.fields.items():
            raw = self.data.get(name)
            if raw is None:
                continue
            if isinstance(field, forms.CharField) and not isinstance(raw, str):
                self.add_error(name, "Enter text.")
            elif isinstance(field, forms.BooleanField) and not isinstance(raw, bool):
                self.add_error(name, "Enter true or false.")
        return cleaned


def _key_providers() -> Any:
    return Provider.objects.filter(enabled=True).exclude(protocol="demo")


class ProviderKeyForm(JsonForm):
    provider = forms.ModelChoiceField(queryset=_key_providers(), to_field_name="slug")
    api_key = forms.CharField(max_length=1000)


class CustomProviderForm(JsonForm):
    name = forms.CharField(max_length=100)
    base_url = forms.CharField(max_length=500)
    api_key = forms.CharField(max_length=1000, required=False)


class ByokModelForm(JsonForm):
    slug = forms.CharField(max_length=150, validators=[BYOK_SLUG])
    display_name = forms.CharField(max_length=150)
    provider_model_id = forms.CharField(max_length=200)
    provider = forms.ModelChoiceField(queryset=_key_providers(), to_field_name="slug", required=False)
    endpoint = forms.ModelChoiceField(queryset=UserCustomProvider.objects.none(), required=False)
    input_modalities = forms.MultipleChoiceField(choices=Modality.choices, required=False)
    supports_tools = forms.BooleanField(required=False)
    supports_reasoning = forms.BooleanField(required=False)
    context_window = forms.IntegerField(min_value=1, max_value=100_000_000, required=False)
    max_output_tokens = forms.IntegerField(min_value=1, max_value=100_000_000, required=False)

    def __init__(self, data: dict[str, Any], *, user: User) -> None:
        super().__init__(data)
        self.fields["endpoint"].queryset = UserCustomProvider.objects.filter(user=user)  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        chosen_badly = self.has_error("provider") or self.has_error("endpoint")
        if bool(cleaned.get("provider")) == bool(cleaned.get("endpoint")) and not chosen_badly:
            self.add_error("provider", "Give either a provider or one of your endpoints.")
        return cleaned


# --- Rendering ------------------------------------------------------------------------------
def _model_json(model: UserByokModel) -> dict[str, Any]:
    return {
        "id": model.pk,
        "model_id": model.model_id,
        "slug": model.slug,
        "display_name": model.display_name,
        "provider_model_id": model.provider_model_id,
        "provider": model.provider.slug if model.provider else None,
        "endpoint": model.custom_provider_id,
        "input_modalities": model.input_modalities,
        "supports_tools": model.supports_tools,
        "supports_reasoning": model.supports_reasoning,
        "context_window": model.context_window,
        "max_output_tokens": model.max_output_tokens,
        "created_at": model.created_at,
    }


def _no_content() -> HttpResponse:
    return HttpResponse(status=204)


# --- Keys for platform providers -------------------------------------------------------------
@json_api("GET", "POST")
def keys(request: HttpRequest, user: User) -> HttpResponse:
    if request.method == "GET":
        return JsonResponse({"keys": [asdict(row) for row in byok.provider_keys_list(user=user)]})
    form = _validated(ProviderKeyForm, request)
    if isinstance(form, JsonResponse):
        return form
    key = byok.provider_key_set(user=user, provider=form.cleaned_data["provider"], api_key=form.cleaned_data["api_key"])
    return JsonResponse(asdict(byok.provider_key_row(key=key)), status=201)


@json_api("DELETE")
def key_detail(request: HttpRequest, user: User, key_id: int) -> HttpResponse:
    byok.provider_key_delete(user=user, key_id=key_id)
    return _no_content()


@json_api("POST")
async def key_test(request: HttpRequest, user: User, key_id: int) -> HttpResponse:
    models = await byok.endpoint_models_list(user=user, provider_key_id=key_id)
    return JsonResponse({"models": models})


# --- Custom endpoints ------------------------------------------------------------------------
@json_api("GET", "POST")
def endpoints(request: HttpRequest, user: User) -> HttpResponse:
    if request.method == "GET":
        return JsonResponse({"endpoints": [asdict(row) for row in byok.custom_providers_list(user=user)]})
    form = _validated(CustomProviderForm, request)
    if isinstance(form, JsonResponse):
        return form
    endpoint = byok.custom_provider_create(user=user, **form.cleaned_data)
    return JsonResponse(asdict(byok.custom_provider_row(endpoint=endpoint)), status=201)


@json_api("DELETE")
def endpoint_detail(request: HttpRequest, user: User, endpoint_id: int) -> HttpResponse:
    byok.custom_provider_delete(user=user, custom_provider_id=endpoint_id)
    return _no_content()


@json_api("POST")
async def endpoint_test(request: HttpRequest, user: User, endpoint_id: int) -> HttpResponse:
    models = await byok.endpoint_models_list(user=user, custom_provider_id=endpoint_id)
    return JsonResponse({"models": models})


# --- Models -------------------------------------------------------------------------------
@json_api("GET", "POST")
def byok_models(request: HttpRequest, user: User) -> HttpResponse:
    if request.method == "GET":
        return JsonResponse({"models": [_model_json(model) for model in byok.byok_models_list(user=user)]})
    form = _validated(ByokModelForm, request, user=user)
    if isinstance(form, JsonResponse):
        return form
    data = form.cleaned_data
    optional = {name: data[name] for name in ("context_window", "max_output_tokens") if data[name] is not None}
    model = byok.byok_model_create(
        user=user,
        slug=data["slug"],
        display_name=data["display_name"],
        provider_model_id=data["provider_model_id"],
        provider=data["provider"],
        custom_provider=data["endpoint"],
        input_modalities=data["input_modalities"],
        supports_tools=data["supports_tools"],
        supports_reasoning=data["supports_reasoning"],
        **optional,
    )
    return JsonResponse(_model_json(model), status=201)


@json_api("DELETE")
def byok_model_detail(request: HttpRequest, user: User, model_id: int) -> HttpResponse:
    byok.byok_model_delete(user=user, model_id=model_id)
    return _no_content()
