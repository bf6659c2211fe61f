"""What a user may choose from: their tier's models that a provider can serve now, the demo
while it is offered, and their own BYOK models."""

from __future__ import annotations

from dataclasses import dataclass

from accounts.models import User
from providers.catalogcache import catalog_snapshot
from providers.models import Model, UserByokModel
from providers.routing import demo_offered, platform_api_key, provider_base_url


@dataclass(frozen=True)
class ModelOption:
    model_id: str
    display_name: str
    supports_tools: bool
    supports_reasoning: bool
    input_modalities: tuple[str, ...]
    byok: bool = False


def _option(model: Model | UserByokModel, *, byok: bool = False) -> ModelOption:
    return ModelOption(
        model_id=model.model_id,
        display_name=model.display_name,
        supports_tools=model.supports_tools,
        supports_reasoning=model.supports_reasoning,
        input_modalities=tuple(model.input_modalities),
        byok=byok,
    )


def configured_provider_ids() -> set[int]:
    """Enabled providers that can be called now (a key, or a keyless server with a URL)."""
    providers = catalog_snapshot().providers
    return {provider.pk for provider in providers if provider.enabled and platform_api_key(provider) is not None}


def models_available_to(user: User) -> list[ModelOption]:
    """From the process's catalog snapshot (`providers.catalogcache`); only BYOK models are read."""
    catalog = catalog_snapshot()
    serving = {
        provider.pk for provider in catalog.providers if provider.enabled and platform_api_key(provider) is not None
    }
    platform = [
        model
        for model in catalog.models.values()
        if model.enabled
        and model.pk not in catalog.demo
        and user.tier_id in catalog.tiers.get(model.pk, frozenset())
        and any(route.provider_id in serving for route in catalog.routes.get(model.pk, ()))
    ]
    options = [_option(model) for model in sorted(platform, key=lambda model: (model.display_name, model.model_id))]
    if demo_offered(catalog.providers):
        demo = next((model for model in catalog.models.values() if model.enabled and model.pk in catalog.demo), None)
        if demo is not None:
            options.append(_option(demo))
    if not user.is_guest:
        byok = UserByokModel.objects.filter(user=user).select_related("provider").order_by("slug")
        # A model on a platform provider with no URL configured cannot be called (see
        # `provider_base_url`), so it is not offered; the user's own endpoints always have one.
        options += [
            _option(model, byok=True)
            for model in byok
            if model.provider is None or provider_base_url(model.provider) is not None
        ]
    return options


def default_model_for(user: User) -> ModelOption | None:
    """The tier's default if the user can use it now, else the first model they can."""
    options = models_available_to(user)
    catalog = catalog_snapshot()
    default_pk = catalog.tier_defaults.get(user.tier_id)
    default = next((model for model in catalog.models.values() if model.pk == default_pk), None)
    if default is not None:
        for option in options:
            if option.model_id == default.model_id:
                return option
    return options[0] if options else None
