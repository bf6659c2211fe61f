from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Tier, User
from accounts.selectors import tier_guest_default, tier_registered_default
from accounts.tests.factories import DEFAULT_PASSWORD, GuestFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_for_superuser() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root@example.com", DEFAULT_PASSWORD))
    return client


def _changelist_queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def test_the_user_changelist_loads_with_guests_and_users(admin_client_for_superuser: Client) -> None:
    user = UserFactory(email="listed@example.com")
    guest = GuestFactory()

    response = admin_client_for_superuser.get(reverse("admin:accounts_user_changelist"))

    assert response.status_code == 200
    text = response.content.decode()
    assert user.email in text
    assert str(guest) in text


def test_the_user_changelist_can_be_searched_and_filtered(admin_client_for_superuser: Client) -> None:
    UserFactory(email="findme@example.com")
    UserFactory(email="hidden@example.com")
    GuestFactory()
    url = reverse("admin:accounts_user_changelist")

    searched = admin_client_for_superuser.get(url, {"q": "findme"})
    guests = admin_client_for_superuser.get(url, {"is_guest__exact": "1"})

    assert searched.status_code == 200
    assert [u.email for u in searched.context["cl"].result_list] == ["findme@example.com"]
    assert guests.status_code == 200
    assert all(u.is_guest for u in guests.context["cl"].result_list)
    assert len(guests.context["cl"].result_list) == 1


def test_the_user_change_page_loads_for_a_user_and_a_guest(admin_client_for_superuser: Client) -> None:
    for user in (UserFactory(), GuestFactory()):
        response = admin_client_for_superuser.get(reverse("admin:accounts_user_change", args=[user.pk]))

        assert response.status_code == 200
        assert response.context["original"] == user


def test_the_user_add_page_creates_a_registered_user(admin_client_for_superuser: Client) -> None:
    url = reverse("admin:accounts_user_add")
    assert admin_client_for_superuser.get(url).status_code == 200

    response = admin_client_for_superuser.post(
        url,
        {
            "email": "added@example.com",
            "tier": tier_registered_default().pk,
            "password1": DEFAULT_PASSWORD,
            "password2": DEFAULT_PASSWORD,
            "usable_password": "true",
        },
    )

    assert response.status_code == 302
    added = User.objects.get(email="added@example.com")
    assert not added.is_guest
    assert added.check_password(DEFAULT_PASSWORD)


def test_the_tier_changelist_counts_users(admin_client_for_superuser: Client) -> None:
    GuestFactory.create_batch(2)

    response = admin_client_for_superuser.get(reverse("admin:accounts_tier_changelist"))

    assert response.status_code == 200
    counts = {tier.slug: tier.user_count for tier in response.context["cl"].result_list}
    assert counts["guest"] == 2
    assert counts["registered"] == 1  # the superuser


def test_the_tier_change_page_loads(admin_client_for_superuser: Client) -> None:
    for tier in (tier_guest_default(), TierFactory()):
        response = admin_client_for_superuser.get(reverse("admin:accounts_tier_change", args=[tier.pk]))

        assert response.status_code == 200
        assert response.context["original"] == tier


def test_the_tier_admin_refuses_a_second_guest_default(admin_client_for_superuser: Client) -> None:
    response = admin_client_for_superuser.post(
        reverse("admin:accounts_tier_add"),
        {"name": "Another", "slug": "another", "description": "", "is_guest_default": "on"},
    )

    assert response.status_code == 200
    assert "already the guest default" in response.content.decode()
    assert not Tier.objects.filter(slug="another").exists()


def test_the_user_changelist_query_count_does_not_grow_with_users(admin_client_for_superuser: Client) -> None:
    url = reverse("admin:accounts_user_changelist")
    UserFactory.create_batch(2)
    GuestFactory()
    few = _changelist_queries(admin_client_for_superuser, url)

    UserFactory.create_batch(15)
    GuestFactory.create_batch(12)
    many = _changelist_queries(admin_client_for_superuser, url)

    assert many == few


def test_the_tier_changelist_query_count_does_not_grow_with_tiers(admin_client_for_superuser: Client) -> None:
    url = reverse("admin:accounts_tier_changelist")
    few = _changelist_queries(admin_client_for_superuser, url)

    for tier in TierFactory.create_batch(20):
        UserFactory(tier=tier)
    many = _changelist_queries(admin_client_for_superuser, url)

    assert many == few


def test_a_regular_user_cannot_open_the_user_admin() -> None:
    client = Client()
    client.force_login(UserFactory())

    response = client.get(reverse("admin:accounts_user_changelist"))

    assert response.status_code == 302
    assert "/admin/login/" in response.url
