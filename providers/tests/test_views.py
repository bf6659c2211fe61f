"""The BYOK JSON endpoints through Django's test client: auth (401/403), CSRF, validation (400),
per-user scoping (404), masking (no secret in any response or log line), and the test buttons
against the fake OpenAI server."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from accounts.models import User
from accounts.ratelimit import BucketRule
from accounts.tests.factories import GuestFactory, UserFactory
from providers import byok
from providers.models import Provider, UserByokModel, UserCustomProvider, UserProviderKey
from providers.testing.openai_server import OpenAIServer
from providers.tests.catalog_fixtures import make_provider

pytestmark = pytest.mark.django_db

KEY = "sk-live-0123456789abcdef9f2c"
PUBLIC_URL = "https://93.184.216.34/v1"


class ListingServer(OpenAIServer):
    models = ("qwen2.5:7b", "llama3.1:8b")


@pytest.fixture(scope="module")
def server() -> Iterator[ListingServer]:
    with ListingServer() as running:
        yield running


@pytest.fixture
def user() -> User:
    return UserFactory()


@pytest.fixture
def signed_in(client: Client, user: User) -> Client:
    client.force_login(user)
    return client


@pytest.fixture
def provider() -> Provider:
    return make_provider("openai")


def post(client: Client, name: str, body: Any = None, **kwargs: int) -> Any:
    data = body if isinstance(body, str) else json.dumps(body or {})
    return client.post(reverse(f"providers:{name}", kwargs=kwargs), data, content_type="application/json")


def delete(client: Client, name: str, **kwargs: int) -> Any:
    return client.delete(reverse(f"providers:{name}", kwargs=kwargs))


def get(client: Client, name: str) -> Any:
    return client.get(reverse(f"providers:{name}"))


# --- Who may call --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["keys", "endpoints", "models"])
def test_anonymous_visitors_get_401_json(client: Client, name: str) -> None:
    for response in (get(client, name), post(client, name, {})):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "not_authenticated"


def test_anonymous_visitors_get_401_from_the_test_buttons(client: Client) -> None:
    assert post(client, "endpoint-test", endpoint_id=1).status_code == 401
    assert post(client, "key-test", key_id=1).status_code == 401


def test_guests_may_list_but_not_add_and_are_told_to_sign_up(client: Client, provider: Provider) -> None:
    client.force_login(GuestFactory())
    assert get(client, "keys").json() == {"keys": []}
    for name, body in [
        ("keys", {"provider": "openai", "api_key": KEY}),
        ("endpoints", {"name": "mine", "base_url": PUBLIC_URL}),
        ("models", {"slug": "m", "display_name": "M", "provider_model_id": "m", "provider": "openai"}),
    ]:
        response = post(client, name, body)
        assert response.status_code == 403
        assert "Sign up" in response.json()["error"]["message"]
    assert delete(client, "key", key_id=1).status_code == 403
    assert post(client, "endpoint-test", endpoint_id=1).status_code == 403
    assert not UserProviderKey.objects.exists()


def test_writes_need_the_csrf_token_the_browser_sends(user: User, provider: Provider) -> None:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    body = json.dumps({"provider": "openai", "api_key": KEY})
    url = reverse("providers:keys")

    assert browser.post(url, body, content_type="application/json").status_code == 403
    token = "a" * 32  # what the csrftoken cookie holds; the page's script echoes it in X-CSRFToken
    browser.cookies["csrftoken"] = token
    assert browser.post(url, body, content_type="application/json", HTTP_X_CSRFTOKEN=token).status_code == 201
    assert UserProviderKey.objects.filter(user=user).exists()


def test_other_methods_get_405(signed_in: Client) -> None:
    response = signed_in.put(reverse("providers:keys"), "{}", content_type="application/json")
    assert response.status_code == 405
    assert response["Allow"] == "GET, POST"


# --- Keys -------------------------------------------------------------------------------------
def test_adding_a_key_answers_it_masked_and_stores_it_encrypted(
    signed_in: Client, user: User, provider: Provider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = post(signed_in, "keys", {"provider": "openai", "api_key": KEY})

    assert response.status_code == 201
    assert response.json()["api_key"] == "sk-…9f2c"
    assert KEY not in response.content.decode()
    assert KEY not in UserProviderKey.objects.get(user=user).api_key_encrypted
    assert KEY not in caplog.text
    listed = get(signed_in, "keys")
    assert "no-store" in listed["Cache-Control"]
    assert [row["api_key"] for row in listed.json()["keys"]] == ["sk-…9f2c"]
    assert KEY not in listed.content.decode()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"provider": "openai"}, "api_key"),
        ({"provider": "openai", "api_key": ""}, "api_key"),
        ({"provider": "openai", "api_key": 12345}, "api_key"),
        ({"provider": "nobody", "api_key": KEY}, "provider"),
        ({"api_key": KEY}, "provider"),
    ],
)
def test_an_invalid_key_is_refused_with_400_and_the_field(
    signed_in: Client, provider: Provider, body: dict[str, Any], field: str
) -> None:
    response = post(signed_in, "keys", body)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not UserProviderKey.objects.exists()


@pytest.mark.parametrize("body", ["not json", "[1, 2]", '"text"', "\xff"])
def test_a_body_that_is_not_a_json_object_is_refused_with_400(signed_in: Client, body: str) -> None:
    response = post(signed_in, "keys", body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


def test_a_key_can_be_deleted_but_not_another_users(signed_in: Client, user: User, provider: Provider) -> None:
    mine = byok.provider_key_set(user=user, provider=provider, api_key=KEY)
    theirs = byok.provider_key_set(user=UserFactory(), provider=provider, api_key=KEY)

    assert delete(signed_in, "key", key_id=theirs.pk).status_code == 404
    assert delete(signed_in, "key", key_id=mine.pk).status_code == 204
    assert list(UserProviderKey.objects.all()) == [theirs]


def test_testing_a_key_lists_the_providers_models(signed_in: Client, user: User, server: ListingServer) -> None:
    provider = make_provider("local-openai", base_url=server.url + "/v1")
    key = byok.provider_key_set(user=user, provider=provider, api_key=KEY)

    response = post(signed_in, "key-test", key_id=key.pk)
    assert response.status_code == 200
    assert response.json() == {"models": sorted(ListingServer.models)}


def test_testing_another_users_key_is_404(signed_in: Client, provider: Provider) -> None:
    theirs = byok.provider_key_set(user=UserFactory(), provider=provider, api_key=KEY)
    assert post(signed_in, "key-test", key_id=theirs.pk).status_code == 404


# --- Endpoints ----------------------------------------------------------------------------------
def test_adding_an_endpoint_answers_it_normalised_with_the_key_masked(signed_in: Client) -> None:
    response = post(signed_in, "endpoints", {"name": "vLLM", "base_url": PUBLIC_URL + "/", "api_key": KEY})

    assert response.status_code == 201
    body = response.json()
    assert (body["name"], body["base_url"], body["api_key"]) == ("vLLM", PUBLIC_URL, "sk-…9f2c")
    assert KEY not in response.content.decode()
    assert KEY not in get(signed_in, "endpoints").content.decode()


@pytest.mark.parametrize(
    ("base_url", "message"),
    [
        ("http://127.0.0.1:11434/v1", "127.0.0.1 is not a public address"),
        ("http://2130706433/v1", "127.0.0.1 is not a public address"),
        ("http://[::ffff:10.0.0.1]/v1", "not a public address"),
        ("http://169.254.169.254/latest/meta-data/", "Cloud metadata addresses are never allowed"),
        ("http://localhost:11434/v1", "Local host names are not allowed"),
        ("file:///etc/passwd", "http:// or https://"),
    ],
)
def test_an_unsafe_endpoint_url_is_refused_with_400_and_a_clear_message(
    signed_in: Client, base_url: str, message: str
) -> None:
    response = post(signed_in, "endpoints", {"name": "bad", "base_url": base_url})
    assert response.status_code == 400
    error = response.json()["error"]
    assert message in error["message"]
    assert message in error["fields"]["base_url"][0]
    assert not UserCustomProvider.objects.exists()


def test_an_endpoint_without_a_name_is_refused_with_400(signed_in: Client) -> None:
    response = post(signed_in, "endpoints", {"base_url": PUBLIC_URL})
    assert response.status_code == 400
    assert "name" in response.json()["error"]["fields"]


def test_users_list_only_their_own_endpoints(signed_in: Client, user: User) -> None:
    byok.custom_provider_create(user=UserFactory(), name="theirs", base_url=PUBLIC_URL)
    byok.custom_provider_create(user=user, name="mine", base_url=PUBLIC_URL)
    assert [row["name"] for row in get(signed_in, "endpoints").json()["endpoints"]] == ["mine"]


def test_deleting_another_users_endpoint_is_404(signed_in: Client) -> None:
    theirs = byok.custom_provider_create(user=UserFactory(), name="theirs", base_url=PUBLIC_URL)
    assert delete(signed_in, "endpoint", endpoint_id=theirs.pk).status_code == 404
    assert UserCustomProvider.objects.filter(pk=theirs.pk).exists()


def test_testing_an_endpoint_lists_its_models(signed_in: Client, server: ListingServer, settings: Settings) -> None:
    settings.ALLOW_PRIVATE_PROVIDER_URLS = True
    created = post(signed_in, "endpoints", {"name": "local", "base_url": server.url + "/v1", "api_key": KEY})
    assert created.status_code == 201

    response = post(signed_in, "endpoint-test", endpoint_id=created.json()["id"])
    assert response.status_code == 200
    assert response.json() == {"models": sorted(ListingServer.models)}


def test_testing_a_local_endpoint_is_refused_when_private_urls_are_not_allowed(
    signed_in: Client, user: User, server: ListingServer, settings: Settings
) -> None:
    settings.ALLOW_PRIVATE_PROVIDER_URLS = True
    endpoint = byok.custom_provider_create(user=user, name="local", base_url=server.url + "/v1")
    settings.ALLOW_PRIVATE_PROVIDER_URLS = False
    server.requests.clear()

    response = post(signed_in, "endpoint-test", endpoint_id=endpoint.pk)
    assert response.status_code == 400
    assert "not a public address" in response.json()["error"]["message"]
    assert server.requests == []
    refused = post(signed_in, "endpoints", {"name": "again", "base_url": server.url + "/v1"})
    assert refused.status_code == 400


def test_testing_an_unreachable_endpoint_answers_502_with_a_safe_message(
    signed_in: Client, user: User, settings: Settings
) -> None:
    settings.ALLOW_PRIVATE_PROVIDER_URLS = True
    with ListingServer() as gone:
        url = gone.url
    endpoint = byok.custom_provider_create(user=user, name="gone", base_url=url + "/v1", api_key=KEY)

    response = post(signed_in, "endpoint-test", endpoint_id=endpoint.pk)
    assert response.status_code == 502
    assert response.json()["error"] == {
        "code": "provider_unavailable",
        "message": "The provider is unavailable right now.",
    }


def test_saving_and_testing_endpoints_too_often_answers_429(
    signed_in: Client, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(byok, "PROBE_RULE", BucketRule(capacity=2, refill_per_second=0.001))
    endpoint = byok.custom_provider_create(user=user, name="mine", base_url=PUBLIC_URL)  # spends one
    assert post(signed_in, "endpoints", {"name": "second", "base_url": PUBLIC_URL}).status_code == 201

    response = post(signed_in, "endpoint-test", endpoint_id=endpoint.pk)
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert int(response["Retry-After"]) > 0
    assert post(signed_in, "endpoints", {"name": "third", "base_url": PUBLIC_URL}).status_code == 429


def test_testing_another_users_endpoint_is_404(signed_in: Client) -> None:
    theirs = byok.custom_provider_create(user=UserFactory(), name="theirs", base_url=PUBLIC_URL)
    assert post(signed_in, "endpoint-test", endpoint_id=theirs.pk).status_code == 404


# --- Models ------------------------------------------------------------------------------------
def test_adding_a_model_on_an_endpoint_answers_its_byok_id(signed_in: Client, user: User) -> None:
    endpoint = byok.custom_provider_create(user=user, name="mine", base_url=PUBLIC_URL)
    body = {
        "slug": "qwen",
        "display_name": "Qwen 2.5",
        "provider_model_id": "qwen2.5:7b",
        "endpoint": endpoint.pk,
        "input_modalities": ["text", "image"],
        "supports_tools": True,
        "context_window": 32768,
    }
    response = post(signed_in, "models", body)

    assert response.status_code == 201
    created = response.json()
    assert (created["model_id"], created["endpoint"], created["provider"]) == ("byok:qwen", endpoint.pk, None)
    assert (created["supports_tools"], created["context_window"], created["max_output_tokens"]) == (True, 32768, 8192)
    assert [row["model_id"] for row in get(signed_in, "models").json()["models"]] == ["byok:qwen"]


def test_adding_a_model_on_a_platform_provider_needs_the_users_key(
    signed_in: Client, user: User, provider: Provider
) -> None:
    body = {"slug": "gpt", "display_name": "GPT", "provider_model_id": "gpt-4o", "provider": "openai"}
    refused = post(signed_in, "models", body)
    assert refused.status_code == 400
    assert "Add your key" in refused.json()["error"]["message"]

    byok.provider_key_set(user=user, provider=provider, api_key=KEY)
    assert post(signed_in, "models", body).status_code == 201


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"slug": "has space"}, "slug"),
        ({"slug": ""}, "slug"),
        ({"display_name": None}, "display_name"),
        ({"endpoint": None}, "provider"),
        ({"provider": "openai"}, "provider"),
        ({"input_modalities": "text"}, "input_modalities"),
        ({"input_modalities": ["audio"]}, "input_modalities"),
        ({"supports_tools": "yes"}, "supports_tools"),
        ({"context_window": 0}, "context_window"),
        ({"context_window": "lots"}, "context_window"),
    ],
)
def test_an_invalid_model_is_refused_with_400_and_the_field(
    signed_in: Client, user: User, provider: Provider, changes: dict[str, Any], field: str
) -> None:
    endpoint = byok.custom_provider_create(user=user, name="mine", base_url=PUBLIC_URL)
    body = {"slug": "m", "display_name": "M", "provider_model_id": "m", "endpoint": endpoint.pk} | changes
    response = post(signed_in, "models", {name: value for name, value in body.items() if value is not None})
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not UserByokModel.objects.exists()


def test_a_model_on_another_users_endpoint_is_refused(signed_in: Client) -> None:
    theirs = byok.custom_provider_create(user=UserFactory(), name="theirs", base_url=PUBLIC_URL)
    body = {"slug": "m", "display_name": "M", "provider_model_id": "m", "endpoint": theirs.pk}
    response = post(signed_in, "models", body)
    assert response.status_code == 400
    assert "endpoint" in response.json()["error"]["fields"]
    assert not UserByokModel.objects.exists()


def test_a_duplicate_model_slug_is_refused_with_400(signed_in: Client, user: User) -> None:
    endpoint = byok.custom_provider_create(user=user, name="mine", base_url=PUBLIC_URL)
    body = {"slug": "m", "display_name": "M", "provider_model_id": "m", "endpoint": endpoint.pk}
    assert post(signed_in, "models", body).status_code == 201
    response = post(signed_in, "models", body)
    assert response.status_code == 400
    assert "slug" in response.json()["error"]["fields"]


def test_a_model_can_be_deleted_but_not_another_users(signed_in: Client, user: User) -> None:
    other = UserFactory()
    theirs = byok.byok_model_create(
        user=other,
        slug="m",
        display_name="M",
        provider_model_id="m",
        custom_provider=byok.custom_provider_create(user=other, name="theirs", base_url=PUBLIC_URL),
    )
    mine = byok.byok_model_create(
        user=user,
        slug="m",
        display_name="M",
        provider_model_id="m",
        custom_provider=byok.custom_provider_create(user=user, name="mine", base_url=PUBLIC_URL),
    )
    assert delete(signed_in, "model", model_id=theirs.pk).status_code == 404
    assert delete(signed_in, "model", model_id=mine.pk).status_code == 204
    assert list(UserByokModel.objects.all()) == [theirs]
