"""The default catalog `manage.py seed_catalog` loads: current models of OpenAI, Anthropic,
Google and xAI, OpenRouter and Ollama as further providers, the offline demo, and which models
the guest and registered tiers may use.

Seeding only creates what is missing (by slug or model id): an operator's edits are never
overwritten, and a row the operator deleted comes back on the next seed. Prices are US dollars
per million tokens as published by each vendor when this list was written; edit them in the
admin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction

from accounts.models import Tier
from providers.models import Creator, Model, ModelProvider, Provider, TierAccess, WireProtocol

GUEST = "guest"
REGISTERED = "registered"

CREATORS = {
    "openai": "OpenAI",
    "anthropic": "Anthropic",
    "google": "Google",
    "xai": "xAI",
    "meta": "Meta",
    "deepseek": "DeepSeek",
    "arbor": "Arbor",
}

PROVIDERS = [
    # slug, name, protocol, base_url, base_url_env, api_key_env, requires_key
    ("openai", "OpenAI", WireProtocol.OPENAI, "", "OPENAI_BASE_URL", "OPENAI_API_KEY", True),
    ("anthropic", "Anthropic", WireProtocol.ANTHROPIC, "", "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", True),
    ("google", "Google AI Studio", WireProtocol.GOOGLE, "", "GEMINI_BASE_URL", "GEMINI_API_KEY", True),
    ("xai", "xAI", WireProtocol.OPENAI, "https://api.x.ai/v1", "", "XAI_API_KEY", True),
    ("openrouter", "OpenRouter", WireProtocol.OPENAI, "https://openrouter.ai/api/v1", "", "OPENROUTER_API_KEY", True),
    ("ollama", "Ollama", WireProtocol.OPENAI, "", "OLLAMA_BASE_URL", "", False),
    ("demo", "Arbor Demo", WireProtocol.DEMO, "", "", "", False),
]


@dataclass(frozen=True)
class CatalogModel:
    model_id: str
    display_name: str
    routes: tuple[tuple[str, str], ...]  # (provider slug, provider-side id), in priority order
    price_in: str = "0"
    price_out: str = "0"
    tools: bool = True
    reasoning: bool = False
    modalities: tuple[str, ...] = ("text", "image")
    context_window: int = 128_000
    max_output_tokens: int = 16_384
    tiers: tuple[str, ...] = (REGISTERED,)


def _m(model_id: str, name: str, routes: tuple[tuple[str, str], ...], **details: object) -> CatalogModel:
    return CatalogModel(model_id, name, routes, **details)  # type: ignore[arg-type]


BOTH = (GUEST, REGISTERED)
MODELS = [
    _m("openai:gpt-5", "GPT-5", (("openai", "gpt-5"), ("openrouter", "openai/gpt-5")),
       price_in="1.25", price_out="10", reasoning=True, context_window=400_000, max_output_tokens=128_000),
    _m("openai:gpt-5-mini", "GPT-5 mini", (("openai", "gpt-5-mini"), ("openrouter", "openai/gpt-5-mini")),
       price_in="0.25", price_out="2", reasoning=True, context_window=400_000, max_output_tokens=128_000, tiers=BOTH),
    _m("openai:gpt-4.1", "GPT-4.1", (("openai", "gpt-4.1"), ("openrouter", "openai/gpt-4.1")),
       price_in="2", price_out="8", context_window=1_047_576, max_output_tokens=32_768),
    _m("openai:gpt-4.1-mini", "GPT-4.1 mini", (("openai", "gpt-4.1-mini"), ("openrouter", "openai/gpt-4.1-mini")),
       price_in="0.4", price_out="1.6", context_window=1_047_576, max_output_tokens=32_768, tiers=BOTH),
    _m("openai:o4-mini", "o4-mini", (("openai", "o4-mini"),),
       price_in="1.1", price_out="4.4", reasoning=True, context_window=200_000, max_output_tokens=100_000),
    _m("anthropic:claude-opus-4-1", "Claude Opus 4.1", (("anthropic", "claude-opus-4-1"),),
       price_in="15", price_out="75", reasoning=True, context_window=200_000, max_output_tokens=32_000),
    _m("anthropic:claude-sonnet-4-5", "Claude Sonnet 4.5",
       (("anthropic", "claude-sonnet-4-5"), ("openrouter", "anthropic/claude-sonnet-4.5")),
       price_in="3", price_out="15", reasoning=True, context_window=200_000, max_output_tokens=64_000),
    _m("anthropic:claude-haiku-4-5", "Claude Haiku 4.5",
       (("anthropic", "claude-haiku-4-5"), ("openrouter", "anthropic/claude-haiku-4.5")),
       price_in="1", price_out="5", reasoning=True, context_window=200_000, max_output_tokens=64_000, tiers=BOTH),
    _m("google:gemini-2.5-pro", "Gemini 2.5 Pro", (("google", "gemini-2.5-pro"),),
       price_in="1.25", price_out="10", reasoning=True, modalities=("text", "image", "file"),
       context_window=1_048_576, max_output_tokens=65_536),
    _m("google:gemini-2.5-flash", "Gemini 2.5 Flash", (("google", "gemini-2.5-flash"),),
       price_in="0.3", price_out="2.5", reasoning=True, modalities=("text", "image", "file"),
       context_window=1_048_576, max_output_tokens=65_536, tiers=BOTH),
    _m("google:gemini-2.5-flash-lite", "Gemini 2.5 Flash-Lite", (("google", "gemini-2.5-flash-lite"),),
       price_in="0.1", price_out="0.4", modalities=("text", "image", "file"),
       context_window=1_048_576, max_output_tokens=65_536, tiers=BOTH),
    _m("xai:grok-4", "Grok 4", (("xai", "grok-4"), ("openrouter", "x-ai/grok-4")),
       price_in="3", price_out="15", reasoning=True, context_window=256_000, max_output_tokens=64_000),
    _m("xai:grok-3-mini", "Grok 3 mini", (("xai", "grok-3-mini"),),
       price_in="0.3", price_out="0.5", reasoning=True, modalities=("text",), context_window=131_072, tiers=BOTH),
    _m("meta:llama-3.3-70b", "Llama 3.3 70B",
       (("ollama", "llama3.3"), ("openrouter", "meta-llama/llama-3.3-70b-instruct")),
       price_in="0.13", price_out="0.4", modalities=("text",), context_window=131_072, tiers=BOTH),
    _m("deepseek:deepseek-r1", "DeepSeek R1", (("openrouter", "deepseek/deepseek-r1"),),
       price_in="0.55", price_out="2.19", tools=False, reasoning=True, modalities=("text",),
       context_window=163_840, max_output_tokens=32_768),
    _m("arbor:demo", "Arbor Demo (offline)", (("demo", "arbor-demo"),),
       modalities=("text",), context_window=32_768, max_output_tokens=4_096, tiers=()),
]  # fmt: skip

DEFAULT_MODELS = {GUEST: "openai:gpt-5-mini", REGISTERED: "openai:gpt-5-mini"}


@dataclass
class SeedReport:
    created: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str) -> None:
        self.created[kind] = self.created.get(kind, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.created.values())


@transaction.atomic
def catalog_seed() -> SeedReport:
    report = SeedReport()
    creators = {}
    for slug, name in CREATORS.items():
        creators[slug], created = Creator.objects.get_or_create(slug=slug, defaults={"name": name})
        if created:
            report.count("creators")
    providers = {}
    for slug, name, protocol, base_url, base_url_env, key_env, requires_key in PROVIDERS:
        providers[slug], created = Provider.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "protocol": protocol,
                "base_url": base_url,
                "base_url_env": base_url_env,
                "api_key_env": key_env,
                "requires_key": requires_key,
            },
        )
        if created:
            report.count("providers")
    tiers = {tier.slug: tier for tier in Tier.objects.filter(slug__in=[GUEST, REGISTERED])}
    access = {}
    for slug, tier in tiers.items():
        access[slug], created = TierAccess.objects.get_or_create(tier=tier)
        if created:
            report.count("tier access")
    for entry in MODELS:
        _seed_model(entry, creators, providers, access, report)
    for slug, model_id in DEFAULT_MODELS.items():
        if slug in access and access[slug].default_model_id is None and "tier access" in report.created:
            access[slug].default_model = Model.objects.filter(model_id=model_id).first()
            access[slug].save(update_fields=["default_model"])
    return report


def _seed_model(
    entry: CatalogModel,
    creators: dict[str, Creator],
    providers: dict[str, Provider],
    access: dict[str, TierAccess],
    report: SeedReport,
) -> None:
    model, created = Model.objects.get_or_create(
        model_id=entry.model_id,
        defaults={
            "creator": creators[entry.model_id.split(":", 1)[0]],
            "display_name": entry.display_name,
            "input_price_per_mtok": Decimal(entry.price_in),
            "output_price_per_mtok": Decimal(entry.price_out),
            "supports_tools": entry.tools,
            "supports_reasoning": entry.reasoning,
            "input_modalities": list(entry.modalities),
            "context_window": entry.context_window,
            "max_output_tokens": entry.max_output_tokens,
        },
    )
    if not created:
        return
    report.count("models")
    for priority, (provider_slug, provider_model_id) in enumerate(entry.routes):
        ModelProvider.objects.create(
            model=model, provider=providers[provider_slug], provider_model_id=provider_model_id, priority=priority
        )
        report.count("model providers")
    for tier_slug in entry.tiers:
        if tier_slug in access:
            access[tier_slug].allowed_models.add(model)
