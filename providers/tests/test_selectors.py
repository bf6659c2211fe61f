from __future__ import annotations

import pytest

from accounts.selectors import tier_registered_default
from accounts.tests.factories import GuestFactory, UserFactory
from providers.catalog import catalog_seed
from providers.models import Provider, TierAccess, UserByokModel, UserCustomProvider, UserProviderKey
from providers.secrets import encrypt_secret
from providers.selectors import default_model_for, models_available_to

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_platform_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "XAI_API_KEY", "OPENROUTER_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.delenv("OLLAMA_BASE_URL", raising=False)


def _ids(user: object) -> list[str]:
    return [option.model_id for option in models_available_to(user)]  # type: ignore[arg-type]


def test_with_no_keys_anywhere_only_the_offline_demo_is_offered() -> None:
    catalog_seed()
    assert _ids(GuestFactory()) == ["arbor:demo"]
    assert default_model_for(GuestFactory()).model_id == "arbor:demo"  # type: ignore[union-attr]


def test_a_platform_key_offers_that_providers_models_in_the_users_tier(monkeypatch: pytest.MonkeyPatch) -> None:
    catalog_seed()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    guest, registered = _ids(GuestFactory()), _ids(UserFactory())
    assert "openai:gpt-5-mini" in guest and "openai:gpt-5" not in guest
    assert {"openai:gpt-5", "openai:gpt-5-mini", "openai:o4-mini"} <= set(registered)
    assert not any(model_id.startswith("anthropic:") for model_id in registered)
    assert "arbor:demo" not in registered  # a real key retires the demo


def test_a_model_served_by_another_configured_provider_is_offered_through_it(monkeypatch: pytest.MonkeyPatch) -> None:
    catalog_seed()
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-test")
    assert "anthropic:claude-sonnet-4-5" in _ids(UserFactory())


def test_the_tiers_default_model_is_chosen_when_the_user_can_use_it(monkeypatch: pytest.MonkeyPatch) -> None:
    catalog_seed()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert default_model_for(UserFactory()).model_id == "openai:gpt-5-mini"  # type: ignore[union-attr]
    access = TierAccess.objects.get(tier=tier_registered_default())
    access.default_model = None
    access.save()
    assert default_model_for(UserFactory()) is not None


def test_registered_users_see_their_own_byok_models_and_nobody_elses() -> None:
    catalog_seed()
    owner = UserFactory()
    endpoint = UserCustomProvider.objects.create(user=owner, name="home", base_url="https://llm.example.com/v1")
    UserByokModel.objects.create(
        user=owner, slug="home-llama", display_name="Home Llama", custom_provider=endpoint, provider_model_id="llama"
    )
    assert "byok:home-llama" in _ids(owner)
    assert "byok:home-llama" not in _ids(UserFactory())


def test_a_byok_model_on_a_provider_with_no_url_is_not_offered(monkeypatch: pytest.MonkeyPatch) -> None:
    catalog_seed()
    user = UserFactory()
    ollama = Provider.objects.get(slug="ollama")  # seeded with its URL only from OLLAMA_BASE_URL
    UserProviderKey.objects.create(user=user, provider=ollama, api_key_encrypted=encrypt_secret("sk-own"))
    UserByokModel.objects.create(user=user, slug="llama", display_name="L", provider=ollama, provider_model_id="l")
    assert "byok:llama" not in _ids(user)
    monkeypatch.setenv("OLLAMA_BASE_URL", "http://127.0.0.1:11434/v1")
    assert "byok:llama" in _ids(user)
