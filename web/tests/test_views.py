"""The web UI's own pages and endpoint: the chat and settings pages, /api/me, and the
Content-Security-Policy every page carries."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import UsageBucket
from accounts.tests.factories import GuestFactory, TierFactory, UserFactory
from web.middleware import POLICY

pytestmark = pytest.mark.django_db


def test_the_chat_page_loads_its_module_script_and_no_inline_script(client: Client) -> None:
    response = client.get("/")
    page = response.content.decode()
    assert response.status_code == 200
    assert '<script type="module" src="/static/js/chat/main.js"></script>' in page
    assert page.count("<script") == 1
    assert response["Content-Security-Policy"] == POLICY
    assert "script-src 'self'" in POLICY and "unsafe-inline" not in POLICY


def test_every_form_on_the_chat_page_carries_a_csrf_token(client: Client) -> None:
    client.force_login(UserFactory())
    page = client.get("/").content.decode()
    assert page.count("<form") == page.count('name="csrfmiddlewaretoken"') == 2  # sign out, composer


def test_the_admin_is_left_without_the_policy(client: Client) -> None:
    assert "Content-Security-Policy" not in client.get("/admin/login/")


def test_the_settings_page_makes_a_guest_for_a_new_visitor(client: Client) -> None:
    response = client.get("/settings/")
    assert response.status_code == 200
    assert "Sign up</a> to add your own API keys" in response.content.decode()


def test_me_answers_anonymous_requests_401(client: Client) -> None:
    assert client.get("/api/me").status_code == 401


def test_me_shows_profile_tier_and_full_allowances_of_a_new_user(client: Client) -> None:
    tier = TierFactory(name="Plus", message_capacity=50, messages_per_minute=5, token_capacity=1000)
    user = UserFactory(tier=tier, display_name="Ada")
    client.force_login(user)
    body = client.get("/api/me").json()
    assert body["email"] == user.email and body["display_name"] == "Ada" and body["is_guest"] is False
    assert body["tier"] == "Plus"
    assert body["usage"]["messages"] == {"available": 50, "capacity": 50, "per_minute": 5}
    assert body["usage"]["tokens"]["available"] == 1000


def test_me_counts_a_used_bucket_with_its_refill_since_the_last_change(client: Client) -> None:
    tier = TierFactory(message_capacity=20, messages_per_minute=6)
    user = UserFactory(tier=tier)
    UsageBucket.objects.create(user=user, kind="messages", tokens=3, updated_at=timezone.now() - timedelta(seconds=30))
    client.force_login(user)
    assert client.get("/api/me").json()["usage"]["messages"]["available"] == 6  # 3 + 30 s at 6 a minute


def test_me_renames_the_user(client: Client) -> None:
    user = GuestFactory()
    client.force_login(user)
    response = client.patch("/api/me", json.dumps({"display_name": "  Grace "}), content_type="application/json")
    assert response.status_code == 200 and response.json()["display_name"] == "Grace"
    user.refresh_from_db()
    assert user.display_name == "Grace"


def test_me_keeps_custom_instructions_that_every_later_turn_is_prompted_with(client: Client) -> None:
    from chat.models import Chat
    from chat.prompts import system_prompt_for

    user = UserFactory()
    client.force_login(user)
    body = json.dumps({"custom_instructions": " I am a nurse; answer briefly. "})
    response = client.patch("/api/me", body, content_type="application/json")
    assert response.status_code == 200 and response.json()["custom_instructions"] == "I am a nurse; answer briefly."
    user.refresh_from_db()
    assert system_prompt_for(chat=Chat(), user=user).endswith("I am a nurse; answer briefly.")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "x@example.com"}, "email"),
        ({"display_name": 3}, "display_name"),
        ({"display_name": "x" * 151}, "display_name"),
        ({"custom_instructions": ["be brief"]}, "custom_instructions"),
        ({"custom_instructions": "x" * 4001}, "custom_instructions"),
    ],
)
def test_me_refuses_other_fields_and_bad_names(client: Client, body: dict[str, object], field: str) -> None:
    client.force_login(UserFactory())
    response = client.patch("/api/me", json.dumps(body), content_type="application/json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_me_needs_the_csrf_token_to_change_anything() -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory(display_name="Before"))
    response = client.patch("/api/me", json.dumps({"display_name": "After"}), content_type="application/json")
    assert response.status_code == 403
