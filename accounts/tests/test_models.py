from __future__ import annotations

import pytest
from django.contrib.auth import authenticate
from django.db import IntegrityError, transaction

from accounts.models import Tier, User
from accounts.selectors import tier_guest_default, tier_registered_default
from accounts.tests.factories import DEFAULT_PASSWORD, GuestFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_the_two_default_tiers_exist_after_migrations() -> None:
    assert tier_guest_default().slug == "guest"
    assert tier_registered_default().slug == "registered"
    assert tier_guest_default() != tier_registered_default()


def test_a_second_guest_default_tier_is_refused_by_the_database() -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        TierFactory(is_guest_default=True)


def test_a_second_registered_default_tier_is_refused_by_the_database() -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        TierFactory(is_registered_default=True)


def test_any_number_of_tiers_that_are_not_defaults_can_exist() -> None:
    TierFactory.create_batch(3)

    assert Tier.objects.filter(is_guest_default=False, is_registered_default=False).count() == 3


def test_emails_differing_only_in_case_are_refused_when_saved_directly() -> None:
    UserFactory(email="A@x.com")

    duplicate = User(email="a@x.com", is_guest=False, tier=tier_registered_default())
    with pytest.raises(IntegrityError), transaction.atomic():
        duplicate.save()


def test_emails_differing_only_in_case_are_refused_by_a_queryset_update() -> None:
    UserFactory(email="A@x.com")
    other = UserFactory(email="b@x.com")

    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.filter(pk=other.pk).update(email="a@X.COM")


def test_an_email_is_stored_as_typed_apart_from_its_domain() -> None:
    user = User.objects.create_user("Mixed.Case@Example.COM", DEFAULT_PASSWORD)

    user.refresh_from_db()
    assert user.email == "Mixed.Case@example.com"


def test_a_registered_user_without_an_email_is_refused_by_the_database() -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        User(email=None, is_guest=False, tier=tier_registered_default()).save()


def test_a_guest_with_an_email_is_refused_by_the_database() -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        User(email="guest@x.com", is_guest=True, tier=tier_guest_default()).save()


def test_many_guests_without_email_can_coexist() -> None:
    GuestFactory.create_batch(3)

    assert User.objects.filter(is_guest=True, email__isnull=True).count() == 3


def test_create_user_gives_the_registered_default_tier_and_a_working_password() -> None:
    user = User.objects.create_user("new@example.com", DEFAULT_PASSWORD)

    assert user.tier == tier_registered_default()
    assert not user.is_guest
    assert not user.is_staff
    assert not user.is_superuser
    assert user.check_password(DEFAULT_PASSWORD)


def test_create_user_keeps_an_explicit_tier() -> None:
    tier = TierFactory()

    user = User.objects.create_user("tiered@example.com", DEFAULT_PASSWORD, tier=tier)

    assert user.tier == tier


def test_create_user_without_an_email_is_refused() -> None:
    with pytest.raises(ValueError, match="email"):
        User.objects.create_user("", DEFAULT_PASSWORD)


def test_create_superuser_makes_a_staff_superuser() -> None:
    admin = User.objects.create_superuser("root@example.com", DEFAULT_PASSWORD)

    admin.refresh_from_db()
    assert admin.is_superuser
    assert admin.is_staff
    assert not admin.is_guest
    assert admin.tier == tier_registered_default()
    assert admin.check_password(DEFAULT_PASSWORD)


def test_signing_in_by_email_ignores_its_case() -> None:
    user = UserFactory(email="Someone@Example.com")

    assert authenticate(username="someone@EXAMPLE.COM", password=DEFAULT_PASSWORD) == user
    assert authenticate(email="SOMEONE@example.com", password=DEFAULT_PASSWORD) == user


def test_signing_in_with_the_wrong_password_fails() -> None:
    UserFactory(email="someone@example.com")

    assert authenticate(username="someone@example.com", password="not-the-password") is None


def test_a_guest_cannot_authenticate() -> None:
    guest = GuestFactory()

    assert not guest.has_usable_password()
    assert not guest.check_password("")
    assert authenticate(username=None, password="") is None
    assert authenticate(username="", password="") is None
    assert authenticate(username=str(guest), password="") is None


def test_a_user_reads_as_their_email_and_a_guest_as_their_number() -> None:
    user = UserFactory(email="reader@example.com", display_name="")
    guest = GuestFactory()

    assert str(user) == "reader@example.com"
    assert user.get_short_name() == "reader"
    assert str(guest) == f"guest #{guest.pk}"
    assert guest.get_short_name() == "guest"
    assert UserFactory(display_name="Ada").get_full_name() == "Ada"
