"""Operator actions on the catalog: checking providers' keys and syncing their model lists."""

from __future__ import annotations

from dataclasses import dataclass, field

from asgiref.sync import async_to_sync
from django.db import transaction

from providers.adapters import adapter_for
from providers.contract import ProviderError
from providers.models import Creator, Model, ModelProvider, Provider
from providers.routing import platform_endpoint, provider_base_url


@dataclass(frozen=True)
class ProviderHealth:
    provider: str
    configured: bool
    healthy: bool
    detail: str
    model_count: int = 0


async def _list_models(provider: Provider) -> list[str]:
    endpoint = platform_endpoint(provider)
    if endpoint is None:
        raise LookupError(provider.slug)
    return await adapter_for(provider.protocol, endpoint).list_models()


def provider_check(*, provider: Provider) -> ProviderHealth:
    """Call the provider with the platform key (listing its models: cheap and authenticated)."""
    if platform_endpoint(provider) is None:
        detail = "no URL configured" if provider_base_url(provider) is None else "no key set"
        return ProviderHealth(provider.slug, configured=False, healthy=False, detail=detail)
    try:
        models = async_to_sync(_list_models)(provider)
    except ProviderError as error:
        return ProviderHealth(provider.slug, configured=True, healthy=False, detail=f"{error.code}: {error.message}")
    return ProviderHealth(provider.slug, True, True, f"{len(models)} models listed", model_count=len(models))


@dataclass
class SyncReport:
    new: list[str] = field(default_factory=list)  # listed by the provider, not in the catalog
    gone: list[str] = field(default_factory=list)  # in the catalog, no longer listed
    added: list[str] = field(default_factory=list)  # model ids created (with --apply)


def provider_models_sync(*, provider: Provider, apply: bool = False) -> SyncReport:
    """Compare the provider's model list with the catalog; with `apply`, add the new ones as
    disabled models (an operator enables them after setting prices). Raises ProviderError."""
    listed = set(async_to_sync(_list_models)(provider))
    known = set(ModelProvider.objects.filter(provider=provider).values_list("provider_model_id", flat=True))
    report = SyncReport(new=sorted(listed - known), gone=sorted(known - listed))
    if apply:
        with transaction.atomic():
            for provider_model_id in report.new:
                report.added.append(_add_disabled_model(provider, provider_model_id))
    return report


def _add_disabled_model(provider: Provider, provider_model_id: str) -> str:
    # "meta-llama/llama-3.3" on an aggregator names its creator; elsewhere the provider is it.
    creator_slug = provider_model_id.split("/", 1)[0] if "/" in provider_model_id else provider.slug
    creator, _ = Creator.objects.get_or_create(slug=creator_slug[:50], defaults={"name": creator_slug})
    name = provider_model_id.split("/", 1)[-1]
    model, _ = Model.objects.get_or_create(
        model_id=f"{creator.slug}:{name}", defaults={"creator": creator, "display_name": name, "enabled": False}
    )
    ModelProvider.objects.get_or_create(
        model=model, provider=provider, defaults={"provider_model_id": provider_model_id, "priority": 10}
    )
    return model.model_id
