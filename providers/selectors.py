"""What a user may choose from: their tier's models that a provider can serve now, the demo
while it is offered, and their own BYOK models."""

from __future__ import annotations

from dataclasses import dataclass

from accounts.models import User
from providers.models import Model, Provider, UserByokModel, WireProtocol
from providers.routing import demo_offered, platform_api_key


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
    return {provider.pk for provider in Provider.objects.filter(enabled=True) if platform_api_key(provider) is not None}


def models_available_to(user: User) -> list[ModelOption]:
    serving = configured_provider_ids()
    platform = (
        Model.objects.filter(
            enabled=True,
            tier_access__tier_id=user.tier_id,
            routes__enabled=True,
            routes__provider_id__in=serving,
        )
        .exclude(routes__provider__protocol=WireProtocol.DEMO)
        .distinct()
        .order_by("display_name")
    )
    options = [_option(model) for model in platform]
    if demo_offered():
        demo = Model.objects.filter(enabled=True, routes__provider__protocol=WireProtocol.DEMO).first()
        if demo is not None:
            options.append(_option(demo))
    if not user.is_guest:
        options += [_option(model, byok=True) for model in UserByokModel.objects.filter(user=user).order_by("slug")]
    return options


def default_model_for(user: User) -> ModelOption | None:
    """The tier's default if the user can use it now, else the first model they can."""
    options = models_available_to(user)
    access = getattr(user.tier, "model_access", None)
    if access is not None and access.default_model_id is not None:
        for option in options:
            if option.model_id == access.default_model.model_id:
                return option
    return options[0] if options else None
