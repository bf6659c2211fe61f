from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.selectors import tier_guest_default, tier_registered_default
from providers.catalog import MODELS, catalog_seed
from providers.models import Creator, Model, ModelProvider, Provider, TierAccess

pytestmark = pytest.mark.django_db


def _snapshot() -> dict[str, list[tuple[object, ...]]]:
    return {
        "creators": list(Creator.objects.order_by("slug").values_list("slug", "name")),
        "providers": list(Provider.objects.order_by("slug").values_list("slug", "protocol", "api_key_env", "enabled")),
        "models": list(
            Model.objects.order_by("model_id").values_list("model_id", "display_name", "input_price_per_mtok")
        ),
        "routes": list(
            ModelProvider.objects.order_by("model__model_id", "priority").values_list(
                "model__model_id", "provider__slug", "provider_model_id", "priority"
            )
        ),
        "access": list(TierAccess.objects.order_by("tier__slug").values_list("tier__slug", "allowed_models__model_id")),
    }


def test_seeding_twice_leaves_the_same_rows() -> None:
    first = catalog_seed()
    after_first = _snapshot()
    second = catalog_seed()
    assert first.total > 0
    assert second.total == 0
    assert _snapshot() == after_first
    assert len(after_first["models"]) == len(MODELS)


def test_seeding_never_overwrites_an_operators_edits() -> None:
    catalog_seed()
    Model.objects.filter(model_id="openai:gpt-5").update(display_name="Our GPT", input_price_per_mtok=Decimal("9"))
    Provider.objects.filter(slug="xai").update(enabled=False)
    catalog_seed()
    model = Model.objects.get(model_id="openai:gpt-5")
    assert (model.display_name, model.input_price_per_mtok) == ("Our GPT", Decimal("9"))
    assert not Provider.objects.get(slug="xai").enabled


def test_the_platform_keys_and_urls_come_from_the_environment_variables_the_issue_names() -> None:
    catalog_seed()
    keys = dict(Provider.objects.values_list("slug", "api_key_env"))
    urls = dict(Provider.objects.values_list("slug", "base_url_env"))
    assert keys["openai"] == "OPENAI_API_KEY" and urls["openai"] == "OPENAI_BASE_URL"
    assert keys["anthropic"] == "ANTHROPIC_API_KEY" and urls["anthropic"] == "ANTHROPIC_BASE_URL"
    assert keys["google"] == "GEMINI_API_KEY" and urls["google"] == "GEMINI_BASE_URL"
    assert keys["xai"] == "XAI_API_KEY"
    assert keys["openrouter"] == "OPENROUTER_API_KEY"
    assert urls["ollama"] == "OLLAMA_BASE_URL"


def test_guests_get_the_smaller_models_and_registered_users_all_but_the_demo() -> None:
    catalog_seed()
    guest = set(tier_guest_default().model_access.allowed_models.values_list("model_id", flat=True))
    registered = set(tier_registered_default().model_access.allowed_models.values_list("model_id", flat=True))
    assert "openai:gpt-5-mini" in guest
    assert "anthropic:claude-opus-4-1" not in guest
    assert guest < registered
    assert "arbor:demo" not in registered
    assert tier_registered_default().model_access.default_model.model_id == "openai:gpt-5-mini"


def test_a_model_the_operator_deleted_comes_back_with_its_routes() -> None:
    catalog_seed()
    Model.objects.filter(model_id="xai:grok-4").delete()
    report = catalog_seed()
    assert report.created == {"models": 1, "model providers": 2}
    assert Model.objects.get(model_id="xai:grok-4").routes.count() == 2
