from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from accounts.selectors import tier_registered_default
from accounts.tests.factories import UserFactory
from providers.catalog import catalog_seed
from providers.models import Model, Provider, TierAccess, UserProviderKey
from providers.secrets import decrypt_secret, encrypt_secret

pytestmark = pytest.mark.django_db

SECRET = "sk-admin-secret-0123456789abcd"


@pytest.fixture
def admin_client() -> Client:
    catalog_seed()
    client = Client()
    client.force_login(User.objects.create_superuser("root@example.com", "pw-for-the-admin-42"))
    return client


@pytest.mark.parametrize(
    "name",
    [
        "providers_creator_changelist",
        "providers_provider_changelist",
        "providers_model_changelist",
        "providers_userproviderkey_changelist",
        "providers_usercustomprovider_changelist",
        "providers_userbyokmodel_changelist",
        "accounts_tier_changelist",
    ],
)
def test_every_catalog_page_renders_for_a_superuser(admin_client: Client, name: str) -> None:
    assert admin_client.get(reverse(f"admin:{name}")).status_code == 200


def test_the_model_page_shows_its_providers_inline(admin_client: Client) -> None:
    model = Model.objects.get(model_id="openai:gpt-5")
    page = admin_client.get(reverse("admin:providers_model_change", args=[model.pk])).content.decode()
    assert "openai/gpt-5" in page  # the OpenRouter route's provider-side id


def test_a_key_set_in_the_admin_is_stored_encrypted_and_shown_masked(admin_client: Client) -> None:
    provider = Provider.objects.get(slug="xai")
    url = reverse("admin:providers_provider_change", args=[provider.pk])
    form = {
        "slug": "xai",
        "name": "xAI",
        "protocol": "openai",
        "base_url": provider.base_url,
        "base_url_env": "",
        "api_key_env": "XAI_API_KEY",
        "requires_key": "on",
        "enabled": "on",
        "new_api_key": SECRET,
    }
    assert admin_client.post(url, form).status_code == 302
    provider.refresh_from_db()
    assert SECRET not in provider.api_key_encrypted
    assert decrypt_secret(provider.api_key_encrypted) == SECRET
    for page in (admin_client.get(url), admin_client.get(reverse("admin:providers_provider_changelist"))):
        body = page.content.decode()
        assert SECRET not in body
        assert "sk-…abcd" in body


def test_users_keys_are_listed_masked_and_cannot_be_edited(admin_client: Client) -> None:
    row = UserProviderKey.objects.create(
        user=UserFactory(), provider=Provider.objects.get(slug="openai"), api_key_encrypted=encrypt_secret(SECRET)
    )
    listing = admin_client.get(reverse("admin:providers_userproviderkey_changelist")).content.decode()
    assert "sk-…abcd" in listing and SECRET not in listing
    detail = admin_client.get(reverse("admin:providers_userproviderkey_change", args=[row.pk])).content.decode()
    assert SECRET not in detail and row.api_key_encrypted not in detail
    assert admin_client.post(reverse("admin:providers_userproviderkey_add")).status_code == 403


def test_the_tier_page_edits_which_models_the_tier_may_use(admin_client: Client) -> None:
    tier = tier_registered_default()
    access = TierAccess.objects.get(tier=tier)
    keep = list(Model.objects.filter(model_id__in=["openai:gpt-5", "xai:grok-4"]).values_list("pk", flat=True))
    form = {
        "slug": tier.slug,
        "name": tier.name,
        "description": tier.description,
        "is_registered_default": "on",
        "model_access-TOTAL_FORMS": "1",
        "model_access-INITIAL_FORMS": "1",
        "model_access-MIN_NUM_FORMS": "0",
        "model_access-MAX_NUM_FORMS": "1",
        "model_access-0-id": str(access.pk),
        "model_access-0-tier": str(tier.pk),
        "model_access-0-allowed_models": [str(pk) for pk in keep],
        "model_access-0-default_model": str(keep[0]),
    }
    response = admin_client.post(reverse("admin:accounts_tier_change", args=[tier.pk]), form)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert set(access.allowed_models.values_list("pk", flat=True)) == set(keep)


def test_the_disable_action_switches_models_off(admin_client: Client) -> None:
    model = Model.objects.get(model_id="xai:grok-4")
    admin_client.post(
        reverse("admin:providers_model_changelist"), {"action": "disable", "_selected_action": [str(model.pk)]}
    )
    model.refresh_from_db()
    assert not model.enabled
