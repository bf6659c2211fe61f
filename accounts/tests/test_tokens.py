"""Personal access tokens: made once and shown once, stored hashed, scoped, expiring, revocable,
and accepted by the JSON API (never by the admin) in place of a session."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import PersonalToken
from accounts.tests.factories import GuestFactory, UserFactory
from accounts.tokens import token_create

pytestmark = pytest.mark.django_db


def _bearer(secret: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def test_a_token_made_in_the_browser_is_shown_once_and_stored_only_as_its_hash(client: Client) -> None:
    client.force_login(UserFactory())
    response = client.post(
        "/api/tokens", json.dumps({"name": " CLI ", "scope": "read"}), content_type="application/json"
    )
    assert response.status_code == 201
    made = response.json()
    assert made["name"] == "CLI" and made["secret"].startswith("arb_") and made["secret"].startswith(made["prefix"])
    stored = PersonalToken.objects.get(pk=made["id"])
    assert made["secret"] not in json.dumps([stored.digest, stored.prefix, stored.name])
    listed = client.get("/api/tokens").json()
    assert [token["id"] for token in listed] == [made["id"]] and "secret" not in listed[0]


def test_a_guest_cannot_make_a_token(client: Client) -> None:
    client.force_login(GuestFactory())
    response = client.post("/api/tokens", json.dumps({"name": "x", "scope": "chat"}), content_type="application/json")
    assert (response.status_code, response.json()["error"]["code"]) == (403, "sign_up_required")


def test_a_token_drives_the_api_without_a_session_or_csrf_token() -> None:
    user = UserFactory(display_name="Before")
    secret = token_create(user=user, name="script", scope="chat").secret
    client = Client(enforce_csrf_checks=True)
    assert client.get("/api/me", **_bearer(secret)).json()["display_name"] == "Before"
    body = json.dumps({"display_name": "After"})
    response = client.patch("/api/me", body, content_type="application/json", **_bearer(secret))
    assert response.status_code == 200 and response.json()["display_name"] == "After"


def test_a_read_token_may_not_write() -> None:
    user = UserFactory(display_name="Kept")
    secret = token_create(user=user, name="reader", scope="read").secret
    client = Client()
    response = client.patch("/api/me", '{"display_name": "x"}', content_type="application/json", **_bearer(secret))
    assert (response.status_code, response.json()["error"]["code"]) == (403, "insufficient_scope")
    user.refresh_from_db()
    assert user.display_name == "Kept"


@pytest.mark.parametrize("spoil", ["revoked", "expired", "disabled user", "unknown"])
def test_a_token_that_acts_for_nobody_is_answered_401(spoil: str) -> None:
    user = UserFactory()
    made = token_create(user=user, name="t", scope="chat", expires_at=timezone.now() + timedelta(days=1))
    secret = made.secret
    if spoil == "revoked":
        Client().logout()
        client = Client()
        client.force_login(user)
        assert client.delete(f"/api/tokens/{made.token.pk}").status_code == 204
    elif spoil == "expired":
        PersonalToken.objects.filter(pk=made.token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    elif spoil == "disabled user":
        user.is_active = False
        user.save()
    else:
        secret = secret[:-4] + "AAAA"
    response = Client().get("/api/me", **_bearer(secret))
    assert (response.status_code, response.json()["error"]["code"]) == (401, "not_authenticated")


def test_a_token_cannot_manage_tokens() -> None:
    secret = token_create(user=UserFactory(), name="t", scope="chat").secret
    assert Client().get("/api/tokens", **_bearer(secret)).status_code == 401


def test_a_token_does_not_open_the_admin() -> None:
    staff = UserFactory(is_staff=True, is_superuser=True)
    secret = token_create(user=staff, name="t", scope="chat").secret
    response = Client().get("/admin/", **_bearer(secret))
    assert response.status_code == 302 and "/login" in response["Location"]


def test_another_users_token_cannot_be_revoked_and_answers_like_a_missing_one(client: Client) -> None:
    theirs = token_create(user=UserFactory(), name="theirs", scope="chat").token
    client.force_login(UserFactory())
    response = client.delete(f"/api/tokens/{theirs.pk}")
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_last_use_is_recorded_at_most_once_a_minute() -> None:
    made = token_create(user=UserFactory(), name="t", scope="read")
    Client().get("/api/me", **_bearer(made.secret))
    first = PersonalToken.objects.get(pk=made.token.pk).last_used_at
    assert first is not None
    Client().get("/api/me", **_bearer(made.secret))
    assert PersonalToken.objects.get(pk=made.token.pk).last_used_at == first
    PersonalToken.objects.filter(pk=made.token.pk).update(last_used_at=first - timedelta(minutes=2))
    Client().get("/api/me", **_bearer(made.secret))
    assert PersonalToken.objects.get(pk=made.token.pk).last_used_at > first


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "", "scope": "read"}, "name"),
        ({"name": "x", "scope": "admin"}, "scope"),
        ({"name": "x", "scope": "read", "expires_at": "2000-01-01T00:00:00Z"}, "expires_at"),
    ],
)
def test_a_bad_token_request_names_its_field(client: Client, body: dict[str, str], field: str) -> None:
    client.force_login(UserFactory())
    response = client.post("/api/tokens", json.dumps(body), content_type="application/json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_an_operator_revokes_tokens_from_the_admin_and_never_sees_their_hash() -> None:
    made = token_create(user=UserFactory(), name="leaked", scope="chat")
    operator = Client()
    operator.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = operator.get(f"/admin/accounts/personaltoken/{made.token.pk}/change/").content.decode()
    assert made.token.prefix in page and made.token.digest not in page
    operator.post(
        "/admin/accounts/personaltoken/", {"action": "revoke", "_selected_action": [made.token.pk]}, follow=True
    )
    assert Client().get("/api/me", **_bearer(made.secret)).status_code == 401


def test_a_token_with_an_expiry_expires_then(client: Client) -> None:
    client.force_login(UserFactory())
    expiry = (timezone.now() + timedelta(days=30)).replace(microsecond=0)
    body = json.dumps({"name": "monthly", "scope": "read", "expires_at": expiry.isoformat()})
    response = client.post("/api/tokens", body, content_type="application/json")
    assert response.status_code == 201
    assert PersonalToken.objects.get(pk=response.json()["id"]).expires_at == expiry
