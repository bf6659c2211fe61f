"""Catalog rows for tests: a creator, providers, models and tier access, made explicitly."""

from __future__ import annotations

from decimal import Decimal

from accounts.models import Tier
from providers.models import Creator, Model, ModelProvider, Provider, TierAccess, WireProtocol


def make_provider(
    slug: str,
    *,
    protocol: str = WireProtocol.OPENAI,
    base_url: str | None = None,
    api_key_env: str = "",
    requires_key: bool = True,
    enabled: bool = True,
    base_url_env: str = "",
) -> Provider:
    """A provider row. Without `base_url` or `base_url_env` it gets a URL that never resolves
    (RFC 6761 `.invalid`): a provider with no URL has nowhere to call unless it is the vendor
    whose SDK default that is (`routing.provider_base_url`); pass `base_url=""` to test that."""
    if base_url is None:
        base_url = "" if base_url_env or protocol == WireProtocol.DEMO else f"https://{slug}.invalid/v1"
    return Provider.objects.create(
        slug=slug,
        name=slug.title(),
        protocol=protocol,
        base_url=base_url,
        base_url_env=base_url_env,
        api_key_env=api_key_env,
        requires_key=requires_key,
        enabled=enabled,
    )


def make_model(
    model_id: str,
    *routes: tuple[Provider, str],
    tiers: tuple[Tier, ...] = (),
    enabled: bool = True,
    supports_tools: bool = True,
) -> Model:
    creator_slug = model_id.split(":", maxsplit=1)[0]
    creator, _ = Creator.objects.get_or_create(slug=creator_slug, defaults={"name": creator_slug})
    model = Model.objects.create(
        model_id=model_id,
        creator=creator,
        display_name=model_id.split(":")[1],
        enabled=enabled,
        supports_tools=supports_tools,
        input_price_per_mtok=Decimal("1"),
        output_price_per_mtok=Decimal("2"),
    )
    for priority, (provider, provider_model_id) in enumerate(routes):
        ModelProvider.objects.create(
            model=model, provider=provider, provider_model_id=provider_model_id, priority=priority
        )
    for tier in tiers:
        TierAccess.objects.get_or_create(tier=tier)[0].allowed_models.add(model)
    return model
