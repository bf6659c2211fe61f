"""BYOK services and selectors on the real database: encryption at rest, masking, per-user
scoping, guests, the SSRF guard on save and on use, and listing an endpoint's models from the
fake OpenAI server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from asgiref.sync import async_to_sync
from cryptography.fernet import Fernet
from pytest_django.fixtures import Settings

from accounts.models import User
from accounts.tests.factories import GuestFactory, UserFactory
from providers import byok, urlsafety
from providers.contract import ErrorCode, ProviderError
from providers.models import Provider, UserByokModel, UserCustomProvider, UserProviderKey
from providers.secrets import decrypt_secret
from providers.testing.openai_server import OpenAIServer
from providers.tests.catalog_fixtures import make_provider

pytestmark = pytest.mark.django_db

KEY = "sk-proj-abcdefghijklmnop9f2c"
PUBLIC_URL = "https://93.184.216.34/v1"


class ListingServer(OpenAIServer):
    models = ("llama3.1:8b", "qwen2.5:7b", "mistral:7b")


@pytest.fixture(scope="module")
def server() -> Iterator[ListingServer]:
    with ListingServer() as running:
        yield running


@pytest.fixture
def user() -> User:
    return UserFactory()


@pytest.fixture
def provider() -> Provider:
    return make_provider("openai")


def authorization(server: ListingServer) -> str:
    """The Authorization header of the server's last request (header names as sent: any case)."""
    headers = {name.lower(): value for name, value in server.requests[-1].headers.items()}
    return headers.get("authorization", "")


def list_models(**kwargs: object) -> list[str]:
    return async_to_sync(byok.endpoint_models_list)(**kwargs)


# --- Keys -----------------------------------------------------------------------------------
def test_a_key_is_stored_encrypted_and_listed_masked(user: User, provider: Provider) -> None:
    key = byok.provider_key_set(user=user, provider=provider, api_key=KEY)

    stored = UserProviderKey.objects.get(pk=key.pk).api_key_encrypted
    assert KEY not in stored
    assert decrypt_secret(stored) == KEY
    [row] = byok.provider_keys_list(user=user)
    assert (row.provider, row.api_key) == ("openai", "sk-…9f2c")


def test_setting_a_key_again_replaces_it(user: User, provider: Provider) -> None:
    byok.provider_key_set(user=user, provider=provider, api_key=KEY)
    byok.provider_key_set(user=user, provider=provider, api_key="sk-replacement-key-0000")

    [key] = UserProviderKey.objects.filter(user=user)
    assert decrypt_secret(key.api_key_encrypted) == "sk-replacement-key-0000"


def test_a_key_nobody_can_decrypt_is_listed_as_unreadable(user: User, provider: Provider) -> None:
    foreign = Fernet(Fernet.generate_key()).encrypt(KEY.encode()).decode()
    UserProviderKey.objects.create(user=user, provider=provider, api_key_encrypted=foreign)

    [row] = byok.provider_keys_list(user=user)
    assert row.api_key == byok.UNREADABLE_MASK


def test_users_see_only_their_own_keys(user: User, provider: Provider) -> None:
    byok.provider_key_set(user=UserFactory(), provider=provider, api_key=KEY)
    assert byok.provider_keys_list(user=user) == []


def test_deleting_another_users_key_is_not_found_and_keeps_it(user: User, provider: Provider) -> None:
    theirs = byok.provider_key_set(user=UserFactory(), provider=provider, api_key=KEY)
    with pytest.raises(byok.ByokNotFound):
        byok.provider_key_delete(user=user, key_id=theirs.pk)
    assert UserProviderKey.objects.filter(pk=theirs.pk).exists()


def test_guests_may_not_store_keys_endpoints_or_models(provider: Provider) -> None:
    guest = GuestFactory()
    with pytest.raises(byok.ByokGuestRefused, match="Sign up"):
        byok.provider_key_set(user=guest, provider=provider, api_key=KEY)
    with pytest.raises(byok.ByokGuestRefused):
        byok.custom_provider_create(user=guest, name="mine", base_url=PUBLIC_URL)
    with pytest.raises(byok.ByokGuestRefused):
        byok.byok_model_create(user=guest, slug="m", display_name="M", provider_model_id="m", provider=provider)
    assert not UserProviderKey.objects.exists()
    assert not UserCustomProvider.objects.exists()


# --- Custom endpoints --------------------------------------------------------------------------
def test_an_endpoint_is_saved_normalised_with_its_key_encrypted(user: User) -> None:
    endpoint = byok.custom_provider_create(user=user, name="vLLM", base_url="HTTPS://93.184.216.34/v1/", api_key=KEY)

    assert endpoint.base_url == PUBLIC_URL
    assert KEY not in endpoint.api_key_encrypted
    assert decrypt_secret(endpoint.api_key_encrypted) == KEY
    [row] = byok.custom_providers_list(user=user)
    assert (row.name, row.base_url, row.api_key) == ("vLLM", PUBLIC_URL, "sk-…9f2c")


def test_an_endpoint_without_a_key_stores_none(user: User) -> None:
    endpoint = byok.custom_provider_create(user=user, name="ollama", base_url=PUBLIC_URL)
    assert endpoint.api_key_encrypted == ""
    assert byok.custom_providers_list(user=user)[0].api_key == ""


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:11434/v1", "not a public address"),
        ("http://169.254.169.254/latest", "metadata"),
        ("http://localhost:11434/v1", "Local host names"),
        ("http://user:pw@93.184.216.34/v1", "credentials"),
        ("ftp://93.184.216.34/", "http"),
    ],
)
def test_an_unsafe_endpoint_url_is_refused_on_save_with_a_clear_message(user: User, url: str, message: str) -> None:
    with pytest.raises(byok.ByokInvalid, match=message) as refusal:
        byok.custom_provider_create(user=user, name="bad", base_url=url)
    assert "base_url" in refusal.value.fields
    assert not UserCustomProvider.objects.exists()


def test_the_operator_setting_allows_private_endpoints_but_never_metadata(user: User, settings: Settings) -> None:
    settings.ALLOW_PRIVATE_PROVIDER_URLS = True
    assert byok.custom_provider_create(user=user, name="ollama", base_url="http://127.0.0.1:11434/v1")
    with pytest.raises(byok.ByokInvalid, match="metadata"):
        byok.custom_provider_create(user=user, name="meta", base_url="http://169.254.169.254/")


def test_endpoint_names_are_unique_per_user(user: User) -> None:
    byok.custom_provider_create(user=user, name="mine", base_url=PUBLIC_URL)
    with pytest.raises(byok.ByokInvalid) as refusal:
        byok.custom_provider_create(user=user, name="mine", base_url=PUBLIC_URL)
    assert "name" in refusal.value.fields
    assert byok.custom_provider_create(user=UserFactory(), name="mine", base_url=PUBLIC_URL)


def test_deleting_an_endpoint_deletes_its_models(user: User) -> None:
    endpoint = byok.custom_provider_create(user=user, name="mine", base_url=PUBLIC_URL)
    byok.byok_model_create(user=user, slug="m", display_name="M", provider_model_id="m", custom_provider=endpoint)

    byok.custom_provider_delete(user=user, custom_provider_id=endpoint.pk)
    assert not UserByokModel.objects.exists()


def test_deleting_another_users_endpoint_is_not_found(user: User) -> None:
    theirs = byok.custom_provider_create(user=UserFactory(), name="theirs", base_url=PUBLIC_URL)
    with pytest.raises(byok.ByokNotFound):
        byok.custom_provider_delete(user=user, custom_provider_id=theirs.pk)
    assert UserCustomProvider.objects.filter(pk=theirs.pk).exists()


# --- Models ------------------------------------------------------------------------------------
def test_a_model_on_an_endpoint_gets_a_byok_id_and_default_capabilities(user: User) -> None:
    endpoint = byok.custom_provider_create(user=user, name="mine", base_url=PUBLIC_URL)
    model = byok.byok_model_create(
        user=user, slug="llama", display_name="Llama", provider_model_id="llama3.1:8b", custom_provider=endpoint
    )
    assert model.model_id == "byok:llama"
    assert model.input_modalities == ["text"]
    assert byok.byok_models_list(user=user) == [model]
    assert byok.byok_models_list(user=UserFactory()) == []


def test_a_model_on_a_platform_provider_needs_the_users_key_for_it(user: User, provider: Provider) -> None:
    with pytest.raises(byok.ByokInvalid, match="Add your key"):
        byok.byok_model_create(user=user, slug="g", display_name="G", provider_model_id="gpt-4o", provider=provider)
    byok.provider_key_set(user=user, provider=provider, api_key=KEY)
    model = byok.byok_model_create(
        user=user, slug="g", display_name="G", provider_model_id="gpt-4o", provider=provider, supports_tools=True
    )
    assert (model.provider, model.supports_tools) == (provider, True)


def test_a_model_needs_exactly_one_of_provider_or_endpoint(user: User, provider: Provider) -> None:
    endpoint = byok.custom_provider_create(user=user, name="mine", base_url=PUBLIC_URL)
    with pytest.raises(byok.ByokInvalid):
        byok.byok_model_create(user=user, slug="m", display_name="M", provider_model_id="m")
    with pytest.raises(byok.ByokInvalid):
        byok.byok_model_create(
            user=user, slug="m", display_name="M", provider_model_id="m", provider=provider, custom_provider=endpoint
        )


def test_a_model_on_another_users_endpoint_is_not_found(user: User) -> None:
    theirs = byok.custom_provider_create(user=UserFactory(), name="theirs", base_url=PUBLIC_URL)
    with pytest.raises(byok.ByokNotFound):
        byok.byok_model_create(user=user, slug="m", display_name="M", provider_model_id="m", custom_provider=theirs)


def test_model_slugs_are_unique_per_user(user: User) -> None:
    endpoint = byok.custom_provider_create(user=user, name="mine", base_url=PUBLIC_URL)
    byok.byok_model_create(user=user, slug="m", display_name="M", provider_model_id="m", custom_provider=endpoint)
    with pytest.raises(byok.ByokInvalid) as refusal:
        byok.byok_model_create(user=user, slug="m", display_name="M2", provider_model_id="m2", custom_provider=endpoint)
    assert "slug" in refusal.value.fields


def test_deleting_another_users_model_is_not_found(user: User) -> None:
    other = UserFactory()
    endpoint = byok.custom_provider_create(user=other, name="theirs", base_url=PUBLIC_URL)
    model = byok.byok_model_create(
        user=other, slug="m", display_name="M", provider_model_id="m", custom_provider=endpoint
    )
    with pytest.raises(byok.ByokNotFound):
        byok.byok_model_delete(user=user, model_id=model.pk)
    byok.byok_model_delete(user=other, model_id=model.pk)
    assert not UserByokModel.objects.exists()


# --- Testing an endpoint -----------------------------------------------------------------------
def test_testing_an_endpoint_lists_its_models_with_the_users_key(
    user: User, server: ListingServer, settings: Settings
) -> None:
    settings.ALLOW_PRIVATE_PROVIDER_URLS = True
    endpoint = byok.custom_provider_create(user=user, name="local", base_url=server.url + "/v1", api_key=KEY)
    server.requests.clear()

    assert list_models(user=user, custom_provider_id=endpoint.pk) == sorted(ListingServer.models)
    assert server.requests[-1].path == "/v1/models"
    assert authorization(server) == f"Bearer {KEY}"


def test_testing_an_endpoint_rechecks_its_url_when_private_urls_are_no_longer_allowed(
    user: User, server: ListingServer, settings: Settings
) -> None:
    settings.ALLOW_PRIVATE_PROVIDER_URLS = True
    endpoint = byok.custom_provider_create(user=user, name="local", base_url=server.url + "/v1")
    settings.ALLOW_PRIVATE_PROVIDER_URLS = False
    server.requests.clear()

    with pytest.raises(byok.ByokInvalid, match="not a public address"):
        list_models(user=user, custom_provider_id=endpoint.pk)
    assert server.requests == []


def test_testing_an_endpoint_whose_name_now_resolves_privately_is_refused(
    user: User, server: ListingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = {"models.example.com": ["93.184.216.34"]}
    monkeypatch.setattr(urlsafety, "resolve_host", lambda host, port: answers[host])
    endpoint = byok.custom_provider_create(
        user=user, name="rebinding", base_url=f"http://models.example.com:{server.url.rsplit(':', 1)[1]}/v1"
    )
    answers["models.example.com"] = ["127.0.0.1"]
    server.requests.clear()

    with pytest.raises(byok.ByokInvalid):
        list_models(user=user, custom_provider_id=endpoint.pk)
    assert server.requests == []


def test_testing_an_unreachable_endpoint_raises_a_safe_provider_error(user: User, settings: Settings) -> None:
    settings.ALLOW_PRIVATE_PROVIDER_URLS = True
    with ListingServer() as gone:
        url = gone.url
    endpoint = byok.custom_provider_create(user=user, name="gone", base_url=url + "/v1", api_key=KEY)

    with pytest.raises(ProviderError) as failure:
        list_models(user=user, custom_provider_id=endpoint.pk)
    assert failure.value.code == ErrorCode.PROVIDER_UNAVAILABLE
    assert KEY not in failure.value.message


def test_testing_another_users_endpoint_is_not_found(user: User, settings: Settings) -> None:
    settings.ALLOW_PRIVATE_PROVIDER_URLS = True
    theirs = byok.custom_provider_create(user=UserFactory(), name="theirs", base_url=PUBLIC_URL)
    with pytest.raises(byok.ByokNotFound):
        list_models(user=user, custom_provider_id=theirs.pk)


def test_testing_a_key_lists_the_platform_providers_models_with_the_users_key(
    user: User, server: ListingServer
) -> None:
    provider = make_provider("local-openai", base_url=server.url + "/v1")
    key = byok.provider_key_set(user=user, provider=provider, api_key=KEY)
    server.requests.clear()

    assert list_models(user=user, provider_key_id=key.pk) == sorted(ListingServer.models)
    assert authorization(server) == f"Bearer {KEY}"


def test_testing_another_users_key_is_not_found(user: User, provider: Provider) -> None:
    theirs = byok.provider_key_set(user=UserFactory(), provider=provider, api_key=KEY)
    with pytest.raises(byok.ByokNotFound):
        list_models(user=user, provider_key_id=theirs.pk)


def test_testing_a_key_for_a_provider_with_no_url_calls_nothing_and_says_so(
    user: User, server: ListingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The OpenAI SDK's default endpoint, made observable: with no base URL it calls
    # OPENAI_BASE_URL (else api.openai.com). An Ollama key must never arrive there.
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.delenv("OLLAMA_BASE_URL", raising=False)
    ollama = make_provider("ollama", requires_key=False, base_url_env="OLLAMA_BASE_URL")
    key = byok.provider_key_set(user=user, provider=ollama, api_key=KEY)
    server.requests.clear()

    with pytest.raises(byok.ByokInvalid, match="No URL is configured for Ollama"):
        list_models(user=user, provider_key_id=key.pk)
    assert server.requests == []


def test_a_model_on_a_provider_with_no_url_is_refused(user: User, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OLLAMA_BASE_URL", raising=False)
    ollama = make_provider("ollama", requires_key=False, base_url_env="OLLAMA_BASE_URL")
    byok.provider_key_set(user=user, provider=ollama, api_key=KEY)
    with pytest.raises(byok.ByokInvalid) as refusal:
        byok.byok_model_create(user=user, slug="llama", display_name="L", provider_model_id="l", provider=ollama)
    message = "No URL is configured for Ollama on this server; ask its operator to set one."
    assert refusal.value.fields == {"provider": [message]}
    assert not UserByokModel.objects.exists()
