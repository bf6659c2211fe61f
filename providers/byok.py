"""Bring your own key: a user's keys for platform providers, their own OpenAI-compatible
endpoints, and the models they add on either. Services and selectors, keyword-only.

Invariants kept here (whatever the caller checked): every lookup is scoped to the user, so
another user's id is NotFound; guests (ephemeral) may add nothing; secrets are stored encrypted
and leave only masked; a custom base URL passes the SSRF guard when saved and again when used.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import IntegrityError, transaction

from accounts.models import User
from accounts.ratelimit import BucketRule, bucket_take
from providers.adapters import adapter_for
from providers.contract import Endpoint, ErrorCode, ProviderError
from providers.endpoints import custom_endpoint
from providers.models import (
    Provider,
    UserByokModel,
    UserCustomProvider,
    UserProviderKey,
    WireProtocol,
    default_modalities,
)
from providers.routing import provider_base_url, provider_timeouts
from providers.secrets import SecretUnreadable, decrypt_secret, encrypt_secret, mask_secret
from providers.urlsafety import UnsafeURL, check_base_url

logger = logging.getLogger(__name__)

UNREADABLE_MASK = "(unreadable: add the key again)"
# Saving an endpoint resolves its host, testing one calls it: the server acts for the user, so
# each user gets a bucket of such probes (a candidate for settings: BYOK_PROBE_BURST/PER_HOUR).
PROBE_RULE = BucketRule.per_hour(burst=20, per_hour=120)


class ByokError(Exception):
    """A refusal whose `message` is safe to show the user."""

    def __init__(self, message: str, *, fields: dict[str, list[str]] | None = None) -> None:
        self.message = message
        self.fields = fields or {}
        super().__init__(message)


class ByokNotFound(ByokError):
    """No such row for this user (another user's rows do not exist for them)."""


class ByokGuestRefused(ByokError):
    """Guests are ephemeral: they may not store keys, endpoints or models."""


class ByokRateLimited(ByokError):
    """Too many endpoint saves or tests in a short time."""

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(f"Too many endpoint checks. Try again in {retry_after_seconds} second(s).")
        self.retry_after_seconds = retry_after_seconds


class ByokInvalid(ByokError):
    """The request breaks an invariant (a duplicate name, an unsafe URL, …); `fields` says where."""


def _require_registered(user: User) -> None:
    if user.is_guest:
        raise ByokGuestRefused("Guests cannot store keys, endpoints or models. Sign up to add your own.")


def _probe_spend(user: User) -> None:
    decision = bucket_take(key=f"byok-probe:{user.pk}", rule=PROBE_RULE)
    if not decision.allowed:
        raise ByokRateLimited(math.ceil(decision.retry_after_seconds))


def masked(token: str) -> str:
    """What a person may see of a stored secret."""
    try:
        return mask_secret(decrypt_secret(token))
    except SecretUnreadable:
        return UNREADABLE_MASK


# --- Selectors ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProviderKeyRow:
    id: int
    provider: str
    provider_name: str
    api_key: str  # masked
    created_at: datetime


@dataclass(frozen=True)
class CustomProviderRow:
    id: int
    name: str
    base_url: str
    api_key: str  # masked; empty when the endpoint needs none
    created_at: datetime


def provider_keys_list(*, user: User) -> list[ProviderKeyRow]:
    keys = UserProviderKey.objects.filter(user=user).select_related("provider").order_by("provider__name")
    return [provider_key_row(key=key) for key in keys]


def custom_providers_list(*, user: User) -> list[CustomProviderRow]:
    endpoints = UserCustomProvider.objects.filter(user=user).order_by("name")
    return [custom_provider_row(endpoint=endpoint) for endpoint in endpoints]


def byok_models_list(*, user: User) -> list[UserByokModel]:
    return list(UserByokModel.objects.filter(user=user).select_related("provider", "custom_provider").order_by("slug"))


def provider_key_row(*, key: UserProviderKey) -> ProviderKeyRow:
    return ProviderKeyRow(
        id=key.pk,
        provider=key.provider.slug,
        provider_name=key.provider.name,
        api_key=masked(key.api_key_encrypted),
        created_at=key.created_at,
    )


def custom_provider_row(*, endpoint: UserCustomProvider) -> CustomProviderRow:
    return CustomProviderRow(
        id=endpoint.pk,
        name=endpoint.name,
        base_url=endpoint.base_url,
        api_key=masked(endpoint.api_key_encrypted),
        created_at=endpoint.created_at,
    )


def custom_provider_get(*, user: User, custom_provider_id: int) -> UserCustomProvider:
    try:
        return UserCustomProvider.objects.get(user=user, pk=custom_provider_id)
    except UserCustomProvider.DoesNotExist:
        raise ByokNotFound("No such endpoint.") from None


def provider_key_get(*, user: User, key_id: int) -> UserProviderKey:
    try:
        return UserProviderKey.objects.select_related("provider").get(user=user, pk=key_id)
    except UserProviderKey.DoesNotExist:
        raise ByokNotFound("No such key.") from None


# --- Services: keys for platform providers -----------------------------------------------------
def provider_key_set(*, user: User, provider: Provider, api_key: str) -> UserProviderKey:
    """Add the user's key for `provider`, or replace the one they had."""
    _require_registered(user)
    key, created = UserProviderKey.objects.update_or_create(
        user=user, provider=provider, defaults={"api_key_encrypted": encrypt_secret(api_key)}
    )
    logger.info("user %s %s their key for %s", user.pk, "added" if created else "replaced", provider.slug)
    return key


def provider_key_delete(*, user: User, key_id: int) -> None:
    deleted, _ = UserProviderKey.objects.filter(user=user, pk=key_id).delete()
    if not deleted:
        raise ByokNotFound("No such key.")


def _provider_url(provider: Provider) -> str:
    """Where the user's key for `provider` may go; refused when the operator set no URL (the
    SDK's default endpoint belongs to another vendor: see `routing.provider_base_url`)."""
    base_url = provider_base_url(provider)
    if base_url is None:
        message = f"No URL is configured for {provider.name} on this server; ask its operator to set one."
        raise ByokInvalid(message, fields={"provider": [message]})
    return base_url


# --- Services: custom endpoints ------------------------------------------------------------------
def _url_refused(refusal: UnsafeURL) -> ByokInvalid:
    return ByokInvalid(refusal.message, fields={"base_url": [refusal.message]})


def _safe_base_url(base_url: str) -> str:
    try:
        return check_base_url(base_url, allow_private=settings.ALLOW_PRIVATE_PROVIDER_URLS)
    except UnsafeURL as refusal:
        raise _url_refused(refusal) from None


def custom_provider_create(*, user: User, name: str, base_url: str, api_key: str = "") -> UserCustomProvider:
    """Save an OpenAI-compatible endpoint; its URL must pass the SSRF guard (resolved now)."""
    _require_registered(user)
    _probe_spend(user)
    safe_url = _safe_base_url(base_url)
    taken = ByokInvalid("You already have an endpoint with this name.", fields={"name": ["This name is taken."]})
    if UserCustomProvider.objects.filter(user=user, name=name).exists():
        raise taken
    try:
        with transaction.atomic():
            endpoint = UserCustomProvider.objects.create(
                user=user, name=name, base_url=safe_url, api_key_encrypted=encrypt_secret(api_key) if api_key else ""
            )
    except IntegrityError:  # a concurrent request took the name
        raise taken from None
    logger.info("user %s added the endpoint %s", user.pk, endpoint.pk)
    return endpoint


def custom_provider_delete(*, user: User, custom_provider_id: int) -> None:
    """Delete the endpoint and, with it, the models on it."""
    deleted, _ = UserCustomProvider.objects.filter(user=user, pk=custom_provider_id).delete()
    if not deleted:
        raise ByokNotFound("No such endpoint.")


def custom_provider_endpoint(*, custom_provider: UserCustomProvider) -> Endpoint:
    """How to call a user's endpoint now (`providers.endpoints.custom_endpoint`, which routing
    uses too). Raises ByokInvalid or SecretUnreadable. The caller closes `http_client`."""
    try:
        return custom_endpoint(custom_provider=custom_provider, timeouts=provider_timeouts())
    except UnsafeURL as refusal:
        raise _url_refused(refusal) from None


# --- Services: models --------------------------------------------------------------------------
def byok_model_create(
    *,
    user: User,
    slug: str,
    display_name: str,
    provider_model_id: str,
    provider: Provider | None = None,
    custom_provider: UserCustomProvider | None = None,
    input_modalities: Sequence[str] = (),
    supports_tools: bool = False,
    supports_reasoning: bool = False,
    context_window: int = 128_000,
    max_output_tokens: int = 8_192,
) -> UserByokModel:
    """A model on exactly one of: a platform provider the user has a key for, or their endpoint."""
    _require_registered(user)
    if (provider is None) == (custom_provider is None):
        raise ByokInvalid("Choose either a provider or one of your endpoints.", fields={"provider": ["Choose one."]})
    if custom_provider is not None and custom_provider.user_id != user.pk:
        raise ByokNotFound("No such endpoint.")
    if provider is not None and not UserProviderKey.objects.filter(user=user, provider=provider).exists():
        message = f"Add your key for {provider.name} first."
        raise ByokInvalid(message, fields={"provider": [message]})
    if provider is not None:
        _provider_url(provider)
    taken = ByokInvalid("You already have a model with this slug.", fields={"slug": ["This slug is taken."]})
    if UserByokModel.objects.filter(user=user, slug=slug).exists():
        raise taken
    try:
        with transaction.atomic():
            model = UserByokModel.objects.create(
                user=user,
                slug=slug,
                display_name=display_name,
                provider_model_id=provider_model_id,
                provider=provider,
                custom_provider=custom_provider,
                input_modalities=list(input_modalities) or default_modalities(),
                supports_tools=supports_tools,
                supports_reasoning=supports_reasoning,
                context_window=context_window,
                max_output_tokens=max_output_tokens,
            )
    except IntegrityError:
        raise taken from None
    return model


def byok_model_delete(*, user: User, model_id: int) -> None:
    deleted, _ = UserByokModel.objects.filter(user=user, pk=model_id).delete()
    if not deleted:
        raise ByokNotFound("No such model.")


# --- Testing an endpoint: list its models --------------------------------------------------------
def _endpoint_to_test(
    *, user: User, custom_provider_id: int | None, provider_key_id: int | None
) -> tuple[str, Endpoint]:
    """(protocol, endpoint) for the user's endpoint or for a platform provider with their key."""
    _probe_spend(user)
    try:
        if custom_provider_id is not None:
            custom = custom_provider_get(user=user, custom_provider_id=custom_provider_id)
            return WireProtocol.OPENAI, custom_provider_endpoint(custom_provider=custom)
        if provider_key_id is None:
            raise ByokNotFound("Say which endpoint or key to test.")
        key = provider_key_get(user=user, key_id=provider_key_id)
        # The operator configured this URL: no SSRF guard (it may well be private on purpose).
        return key.provider.protocol, Endpoint(
            base_url=_provider_url(key.provider),
            api_key=decrypt_secret(key.api_key_encrypted),
            timeouts=provider_timeouts(),
            provider=key.provider.slug,
        )
    except SecretUnreadable:
        raise ByokInvalid("The stored key can no longer be read; add it again.") from None


async def endpoint_models_list(
    *, user: User, custom_provider_id: int | None = None, provider_key_id: int | None = None
) -> list[str]:
    """The models an endpoint serves, asked of the endpoint itself (the "test" button).
    Raises ByokError, or ProviderError (its message is safe to show)."""
    protocol, endpoint = await sync_to_async(_endpoint_to_test)(
        user=user, custom_provider_id=custom_provider_id, provider_key_id=provider_key_id
    )
    deadline = endpoint.timeouts.connect + endpoint.timeouts.first_token
    try:
        adapter = adapter_for(protocol, endpoint)
        async with asyncio.timeout(deadline):
            return sorted(await adapter.list_models())
    except TimeoutError:
        raise ProviderError(ErrorCode.TIMEOUT, provider=endpoint.provider) from None
    except ProviderError:
        raise
    except Exception as error:  # noqa: BLE001 - the contract: callers see ProviderError only
        # Only the type is logged: an SDK's message may quote the request.
        logger.warning("listing models of %s failed with %s", endpoint.provider, type(error).__name__)
        raise ProviderError(ErrorCode.PROVIDER_UNAVAILABLE, provider=endpoint.provider) from None
    finally:
        if endpoint.http_client is not None:
            await endpoint.http_client.aclose()
