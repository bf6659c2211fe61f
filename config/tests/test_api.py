"""The JSON API's assembly (config.api): its schema, its docs page (offline) and its one error
envelope, whatever refused the request."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

from accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_the_openapi_schema_describes_the_endpoints_served_here(client: Client) -> None:
    schema = client.get("/api/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    assert {"get", "patch"} <= set(schema["paths"]["/api/me"])
    changes = schema["components"]["schemas"]["ProfileChanges"]
    assert changes["additionalProperties"] is False
    assert changes["properties"]["display_name"]["maxLength"] == 150


def test_the_docs_page_loads_its_scripts_and_styles_from_this_site(client: Client) -> None:
    page = client.get("/api/docs").content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert any(source.endswith("swagger-ui-bundle.js") for source in sources)
    assert all(source.startswith("/") for source in sources)  # no CDN
    for source in sources:
        assert finders.find(source.removeprefix("/static/")), source


def test_a_method_a_path_does_not_take_is_answered_in_the_envelope(client: Client) -> None:
    client.force_login(UserFactory())
    response = client.delete("/api/me")
    assert response.status_code == 405
    assert response["Allow"] == "GET, PATCH"
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_anonymous_requests_are_answered_401_in_the_envelope_and_never_cached(client: Client) -> None:
    response = client.get("/api/me")
    assert (response.status_code, response.json()["error"]["code"]) == (401, "not_authenticated")
    assert "no-cache" in response["Cache-Control"]


def test_answers_are_never_cached(client: Client) -> None:
    client.force_login(UserFactory())
    assert "no-store" in client.get("/api/me")["Cache-Control"]


@pytest.mark.parametrize("body", ["{not json", "[1, 2]", '{"display_name": null}', '{"display_name": "a\\u0000b"}'])
def test_a_body_that_is_not_the_schema_s_is_a_400_in_the_envelope(client: Client, body: str) -> None:
    client.force_login(UserFactory(display_name="Kept"))
    response = client.patch("/api/me", body, content_type="application/json")
    assert response.status_code == 400
    assert set(response.json()["error"]) >= {"code", "message"}
    assert client.get("/api/me").json()["display_name"] == "Kept"


def test_a_missing_csrf_token_is_refused_in_the_envelope() -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory())
    response = client.patch("/api/me", "{}", content_type="application/json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


def test_routes_not_moved_here_yet_are_still_served_under_the_same_prefix(client: Client) -> None:
    client.force_login(UserFactory())
    assert client.get("/api/chats").status_code == 200


def test_an_arbor_error_is_rendered_with_its_status_code_fields_and_headers(rf: Any) -> None:
    from common.errors import ArborError
    from config.api import api

    refusal = ArborError("Slow down.", status=429, code="rate_limited", fields={"content": ["Too often."]})
    refusal.headers["Retry-After"] = "3"
    response = api.on_exception(rf.get("/api/me"), refusal)
    assert response.status_code == 429 and response["Retry-After"] == "3"
    assert json.loads(response.content) == {
        "error": {"code": "rate_limited", "message": "Slow down.", "fields": {"content": ["Too often."]}}
    }
    assert "no-store" in response["Cache-Control"]
