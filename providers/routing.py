"""From a model id to everything needed to call it: `route_for(user=…, model_id=…)`.

A platform model ("creator:model") is served by its enabled providers in priority order, each
with the platform's key; a BYOK model ("byok:slug") by the user's own key or endpoint. The
route is refused, with a clear code, when the model is unknown (or another user's BYOK model:
the two answer alike, so ids cannot be probed), disabled, outside the user's tier, or has no
provider with credentials.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from django.conf import settings

from accounts.models import User
from providers.catalogcache import catalog_snapshot
from providers.contract import Endpoint, Timeouts
from providers.endpoints import custom_endpoint
from providers.models import Model, Provider, UserByokModel, UserProviderKey, WireProtocol
from providers.secrets import decrypt_secret
from providers.urlsafety import UnsafeURL

BYOK_PREFIX = "byok:"


class RouteErrorCode(StrEnum):
    UNKNOWN_MODEL = "unknown_model"
    MODEL_DISABLED = "model_disabled"
    NOT_IN_TIER = "not_in_tier"
    NO_CREDENTIALS = "no_credentials"
    ENDPOINT_REFUSED = "endpoint_refused"
    NO_BASE_URL = "no_base_url"


ROUTE_MESSAGES = {
    RouteErrorCode.UNKNOWN_MODEL: "There is no model {model_id!r}.",
    RouteErrorCode.MODEL_DISABLED: "The model {model_id!r} is switched off.",
    RouteErrorCode.NOT_IN_TIER: "Your plan does not include {model_id!r}.",
    RouteErrorCode.NO_CREDENTIALS: "No provider of {model_id!r} is set up with a key.",
    RouteErrorCode.ENDPOINT_REFUSED: "The endpoint of {model_id!r} points at an address Arbor may not call.",
    RouteErrorCode.NO_BASE_URL: "The provider of {model_id!r} has no URL configured.",
}


class RouteError(Exception):
    def __init__(self, code: RouteErrorCode, model_id: str) -> None:
        self.code = code
        self.message = ROUTE_MESSAGES[code].format(model_id=model_id[:100])
        super().__init__(self.message)


@dataclass(frozen=True)
class Candidate:
    provider: str  # slug, for the breaker and attribution
    protocol: str
    provider_model_id: str
    endpoint: Endpoint


@dataclass(frozen=True)
class Route:
    """Built for one generation: a candidate's `endpoint.http_client` (the SSRF-guarded client
    of a user's endpoint) belongs to the route, and is closed when its stream ends."""

    model_id: str
    display_name: str
    supports_tools: bool
    supports_reasoning: bool
    input_modalities: tuple[str, ...]
    context_window: int
    max_output_tokens: int
    input_price_per_mtok: Decimal
    output_price_per_mtok: Decimal
    byok: bool
    candidates: tuple[Candidate, ...]


def provider_timeouts() -> Timeouts:
    return Timeouts(
        connect=settings.PROVIDER_CONNECT_TIMEOUT,
        first_token=settings.PROVIDER_FIRST_TOKEN_TIMEOUT,
        idle=settings.PROVIDER_IDLE_TIMEOUT,
    )


# The providers an SDK's default endpoint belongs to: with no base URL, the OpenAI SDK calls
# api.openai.com, Anthropic's api.anthropic.com, Google's its API. Only the provider that IS that
# vendor (by slug, as `seed_catalog` makes them) may leave its URL empty; any other provider
# (Ollama, an operator's OpenAI-compatible gateway) would hand its key to the vendor.
VENDOR_PROVIDERS = {
    "openai": WireProtocol.OPENAI,
    "anthropic": WireProtocol.ANTHROPIC,
    "google": WireProtocol.GOOGLE,
}


def provider_base_url(provider: Provider) -> str | None:
    """Where a provider's calls go: its configured URL; "" (the SDK's default) only for the vendor
    whose SDK it is, and for the offline demo, which calls nothing; otherwise None: no URL, so
    no call is made (its key must never reach another vendor's default endpoint)."""
    url = provider.effective_base_url().strip()
    if url:
        return url
    if provider.protocol == WireProtocol.DEMO or VENDOR_PROVIDERS.get(provider.slug) == provider.protocol:
        return ""
    return None


def platform_api_key(provider: Provider) -> str | None:
    """The operator's key for a provider ("" for one that needs none), or None when the
    provider is not set up (no key, or nowhere to call: see `provider_base_url`)."""
    if provider.protocol == WireProtocol.DEMO:
        return ""
    if provider_base_url(provider) is None:
        return None
    key = decrypt_secret(provider.api_key_encrypted) if provider.api_key_encrypted else ""
    if not key and provider.api_key_env:
        key = os.environ.get(provider.api_key_env, "")
    if key:
        return key
    # A keyless server (Ollama) counts as set up once it has somewhere to call (checked above).
    if not provider.requires_key:
        return ""
    return None


def platform_endpoint(provider: Provider) -> Endpoint | None:
    key = platform_api_key(provider)
    base_url = provider_base_url(provider)
    if key is None or base_url is None:
        return None
    return Endpoint(base_url=base_url, api_key=key, timeouts=provider_timeouts(), provider=provider.slug)


def demo_offered(providers: tuple[Provider, ...] | None = None) -> bool:
    """The demo model: always, never, or ("auto") while no real provider has a key."""
    mode = settings.DEMO_MODEL.lower()
    if mode in {"on", "true", "1"}:
        return True
    if mode in {"off", "false", "0"}:
        return False
    if providers is None:
        providers = catalog_snapshot().providers
    real = [provider for provider in providers if provider.enabled and provider.protocol != WireProtocol.DEMO]
    return not any(platform_api_key(provider) and provider.requires_key for provider in real)


def tier_allows(user: User, model: Model) -> bool:
    return user.tier_id in catalog_snapshot().tiers.get(model.pk, frozenset())


def route_for(*, user: User, model_id: str) -> Route:
    if model_id.startswith(BYOK_PREFIX):
        return _byok_route(user, model_id)
    # The process's catalog snapshot: no catalogue row is read while the catalog is unchanged.
    catalog = catalog_snapshot()
    model = catalog.models.get(model_id)
    if model is None:
        raise RouteError(RouteErrorCode.UNKNOWN_MODEL, model_id)
    if not model.enabled:
        raise RouteError(RouteErrorCode.MODEL_DISABLED, model_id)
    is_demo = model.pk in catalog.demo
    if is_demo and not demo_offered(catalog.providers):
        raise RouteError(RouteErrorCode.MODEL_DISABLED, model_id)
    if not is_demo and user.tier_id not in catalog.tiers.get(model.pk, frozenset()):
        raise RouteError(RouteErrorCode.NOT_IN_TIER, model_id)
    candidates = []
    for route in catalog.routes.get(model.pk, ()):
        endpoint = platform_endpoint(route.provider)
        if endpoint is not None:
            candidates.append(
                Candidate(route.provider.slug, route.provider.protocol, route.provider_model_id, endpoint)
            )
    if not candidates:
        routes = catalog.routes.get(model.pk, ())
        nowhere = any(provider_base_url(route.provider) is None for route in routes)
        raise RouteError(RouteErrorCode.NO_BASE_URL if nowhere else RouteErrorCode.NO_CREDENTIALS, model_id)
    return _route(model, model_id=model.model_id, byok=False, candidates=candidates)


def _byok_route(user: User, model_id: str) -> Route:
    byok = (
        UserByokModel.objects.filter(user=user, slug=model_id.removeprefix(BYOK_PREFIX))
        .select_related("provider", "custom_provider")
        .first()
    )
    if byok is None:
        raise RouteError(RouteErrorCode.UNKNOWN_MODEL, model_id)
    if byok.custom_provider is not None:
        try:
            # The URL is checked again now, and every connection re-checks where it resolves.
            endpoint = custom_endpoint(custom_provider=byok.custom_provider, timeouts=provider_timeouts())
        except UnsafeURL:
            raise RouteError(RouteErrorCode.ENDPOINT_REFUSED, model_id) from None
        candidate = Candidate(endpoint.provider, WireProtocol.OPENAI, byok.provider_model_id, endpoint)
    else:
        provider = byok.provider
        assert provider is not None  # a check constraint: exactly one of the two
        key = UserProviderKey.objects.filter(user=user, provider=provider).first()
        if key is None or not provider.enabled:
            raise RouteError(RouteErrorCode.NO_CREDENTIALS, model_id)
        base_url = provider_base_url(provider)
        if base_url is None:  # the user's key goes to its own provider's URL or nowhere
            raise RouteError(RouteErrorCode.NO_BASE_URL, model_id)
        endpoint = Endpoint(
            base_url=base_url,
            api_key=decrypt_secret(key.api_key_encrypted),
            timeouts=provider_timeouts(),
            provider=provider.slug,
        )
        candidate = Candidate(provider.slug, provider.protocol, byok.provider_model_id, endpoint)
    return _route(byok, model_id=byok.model_id, byok=True, candidates=[candidate])


def _route(model: Model | UserByokModel, *, model_id: str, byok: bool, candidates: list[Candidate]) -> Route:
    return Route(
        model_id=model_id,
        display_name=model.display_name,
        supports_tools=model.supports_tools,
        supports_reasoning=model.supports_reasoning,
        input_modalities=tuple(model.input_modalities),
        context_window=model.context_window,
        max_output_tokens=model.max_output_tokens,
        input_price_per_mtok=getattr(model, "input_price_per_mtok", Decimal(0)),
        output_price_per_mtok=getattr(model, "output_price_per_mtok", Decimal(0)),
        byok=byok,
        candidates=tuple(candidates),
    )
