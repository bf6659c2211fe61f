"""`GET /v1/models` through the official OpenAI SDK, authenticated by a personal access token."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import openai
import pytest
from django.core.wsgi import get_wsgi_application
from django.test import Client

from accounts.tests.factories import UserFactory
from accounts.tokens import token_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_platform_keys")]


@pytest.fixture
def sdk_http() -> Iterator[httpx2.Client]:
    """The SDK's HTTP client, talking to this Django in-process (no socket, no network)."""
    with httpx2.Client(transport=httpx2.WSGITransport(app=get_wsgi_application())) as client:
        yield client


def _sdk(http: httpx2.Client, key: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url="http://testserver/v1", http_client=http, max_retries=0)


def test_the_sdk_lists_the_models_the_token_s_user_may_use(sdk_http: httpx2.Client) -> None:
    from providers.catalog import catalog_seed

    catalog_seed()
    secret = token_create(user=UserFactory(), name="sdk", scope="read").secret
    models = _sdk(sdk_http, secret).models.list()
    assert [model.id for model in models.data] == ["arbor:demo"]
    assert models.data[0].owned_by == "arbor" and models.data[0].object == "model"


def test_the_sdk_is_refused_with_openai_s_authentication_error_for_a_bad_token(sdk_http: httpx2.Client) -> None:
    with pytest.raises(openai.AuthenticationError) as refused:
        _sdk(sdk_http, "arb_not-a-token").models.list()
    assert refused.value.status_code == 401
    assert refused.value.body["code"] == "invalid_api_key"  # type: ignore[index]
    assert refused.value.body["type"] == "authentication_error"  # type: ignore[index]


def test_a_session_does_not_open_the_openai_compatible_api(client: Client) -> None:
    client.force_login(UserFactory())
    assert client.get("/v1/models").status_code == 401
