from __future__ import annotations

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from pytest_django.fixtures import Settings

from accounts.models import UsageBucket, User
from accounts.selectors import tier_guest_default, tier_registered_default
from accounts.services import (
    EmailTaken,
    GuestLimitReached,
    guest_create,
    guest_data_transfer,
    local_admin_ensure,
    user_sign_up,
)
from accounts.tests.factories import DEFAULT_PASSWORD, GuestFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db


def _log_entry(user: User, text: str) -> LogEntry:
    """A row with a real foreign key to the user model: the data a guest transfer must move."""
    return LogEntry.objects.create(user=user, action_flag=ADDITION, object_repr=text)


@pytest.fixture
def small_guest_limit(settings: Settings) -> int:
    settings.GUEST_CREATE_BURST = 2
    settings.GUEST_CREATE_PER_HOUR = 20
    return 2


def test_guest_create_makes_a_guest_on_the_guest_tier() -> None:
    guest = guest_create(client_ip="198.51.100.4")

    guest.refresh_from_db()
    assert guest.is_guest
    assert guest.email is None
    assert guest.tier == tier_guest_default()
    assert not guest.has_usable_password()
    assert guest.created_ip == "198.51.100.4"


def test_guest_create_without_a_known_address_stores_none() -> None:
    guest = guest_create(client_ip="")

    guest.refresh_from_db()
    assert guest.created_ip is None


def test_guest_create_is_limited_per_client_address(small_guest_limit: int) -> None:
    for _ in range(small_guest_limit):
        guest_create(client_ip="198.51.100.4")

    with pytest.raises(GuestLimitReached) as refusal:
        guest_create(client_ip="198.51.100.4")

    assert refusal.value.retry_after_seconds > 0
    assert User.objects.filter(is_guest=True).count() == small_guest_limit


def test_the_guest_limit_retry_is_about_one_refill_interval(small_guest_limit: int, settings: Settings) -> None:
    for _ in range(small_guest_limit):
        guest_create(client_ip="198.51.100.4")

    with pytest.raises(GuestLimitReached) as refusal:
        guest_create(client_ip="198.51.100.4")

    interval = 3600 / settings.GUEST_CREATE_PER_HOUR
    assert interval - 2 <= refusal.value.retry_after_seconds <= interval


def test_another_address_is_not_limited_by_the_first(small_guest_limit: int) -> None:
    for _ in range(small_guest_limit):
        guest_create(client_ip="198.51.100.4")

    guest = guest_create(client_ip="198.51.100.5")

    assert guest.created_ip == "198.51.100.5"


def test_ipv6_addresses_in_the_same_64_share_one_guest_limit(small_guest_limit: int) -> None:
    for host in range(1, small_guest_limit + 1):
        guest_create(client_ip=f"2001:db8:1:2::{host}")

    with pytest.raises(GuestLimitReached):
        guest_create(client_ip="2001:db8:1:2:ffff:ffff:ffff:ffff")
    assert guest_create(client_ip="2001:db8:1:3::1").is_guest


def test_an_ipv4_mapped_address_shares_the_limit_of_its_ipv4_address(small_guest_limit: int) -> None:
    for _ in range(small_guest_limit):
        guest_create(client_ip="198.51.100.4")

    with pytest.raises(GuestLimitReached):
        guest_create(client_ip="::ffff:198.51.100.4")


def test_a_guest_who_signs_up_keeps_the_same_row() -> None:
    guest = GuestFactory()
    _log_entry(guest, "guest's work")

    user = user_sign_up(email="kept@example.com", password=DEFAULT_PASSWORD, guest=guest)

    assert user.pk == guest.pk
    user.refresh_from_db()
    assert not user.is_guest
    assert user.email == "kept@example.com"
    assert user.tier == tier_registered_default()
    assert user.check_password(DEFAULT_PASSWORD)
    assert User.objects.count() == 1
    assert LogEntry.objects.get().user_id == guest.pk


def test_a_guest_on_a_custom_tier_keeps_it_when_signing_up() -> None:
    special = TierFactory()
    guest = GuestFactory(tier=special)

    user = user_sign_up(email="special@example.com", password=DEFAULT_PASSWORD, guest=guest)

    user.refresh_from_db()
    assert user.tier == special


def test_signing_up_without_a_guest_creates_a_new_user() -> None:
    other_guest = GuestFactory()

    user = user_sign_up(email="fresh@example.com", password=DEFAULT_PASSWORD)

    assert user.pk != other_guest.pk
    user.refresh_from_db()
    assert not user.is_guest
    assert user.tier == tier_registered_default()
    assert user.check_password(DEFAULT_PASSWORD)
    assert User.objects.count() == 2


def test_a_registered_user_passed_as_guest_is_left_alone() -> None:
    existing = UserFactory(email="existing@example.com")

    user = user_sign_up(email="second@example.com", password=DEFAULT_PASSWORD, guest=existing)

    assert user.pk != existing.pk
    existing.refresh_from_db()
    assert existing.email == "existing@example.com"


@pytest.mark.parametrize("email", ["taken@example.com", "TAKEN@example.com", "Taken@Example.COM"])
def test_signing_up_with_a_taken_email_in_any_case_raises_email_taken(email: str) -> None:
    UserFactory(email="taken@example.com")
    guest = GuestFactory()

    with pytest.raises(EmailTaken):
        user_sign_up(email=email, password=DEFAULT_PASSWORD, guest=guest)

    guest.refresh_from_db()
    assert guest.is_guest
    assert guest.email is None
    assert User.objects.count() == 2


def test_guest_data_transfer_moves_every_row_and_deletes_the_guest() -> None:
    guest = GuestFactory()
    target = UserFactory()
    bystander = UserFactory()
    for text in ("one", "two", "three"):
        _log_entry(guest, text)
    _log_entry(target, "target's own")
    _log_entry(bystander, "someone else's")

    guest_data_transfer(guest=guest, target=target)

    assert not User.objects.filter(pk=guest.pk).exists()
    assert set(LogEntry.objects.filter(user=target).values_list("object_repr", flat=True)) == {
        "one",
        "two",
        "three",
        "target's own",
    }
    assert list(LogEntry.objects.filter(user=bystander).values_list("object_repr", flat=True)) == ["someone else's"]


def test_guest_data_transfer_keeps_the_accounts_own_rate_limit_buckets_and_takes_the_others() -> None:
    from django.utils import timezone

    guest, target = GuestFactory(), UserFactory()
    now = timezone.now()
    UsageBucket.objects.create(user=guest, kind=UsageBucket.Kind.MESSAGES, tokens=1, updated_at=now)
    UsageBucket.objects.create(user=guest, kind=UsageBucket.Kind.TOKENS, tokens=500, updated_at=now)
    UsageBucket.objects.create(user=target, kind=UsageBucket.Kind.MESSAGES, tokens=7, updated_at=now)

    guest_data_transfer(guest=guest, target=target)

    levels = dict(UsageBucket.objects.filter(user=target).values_list("kind", "tokens"))
    assert levels == {UsageBucket.Kind.MESSAGES: 7, UsageBucket.Kind.TOKENS: 500}
    assert not User.objects.filter(pk=guest.pk).exists()


def test_guest_data_transfer_does_nothing_for_a_registered_user() -> None:
    source = UserFactory()
    target = UserFactory()
    _log_entry(source, "mine")

    guest_data_transfer(guest=source, target=target)

    assert User.objects.filter(pk=source.pk).exists()
    assert LogEntry.objects.get().user_id == source.pk


def test_guest_data_transfer_to_the_same_row_does_nothing() -> None:
    guest = GuestFactory()
    _log_entry(guest, "mine")

    guest_data_transfer(guest=guest, target=guest)

    assert User.objects.filter(pk=guest.pk).exists()
    assert LogEntry.objects.get().user_id == guest.pk


def test_local_admin_ensure_creates_a_superuser_once() -> None:
    created = local_admin_ensure(email="admin@example.com")

    assert created is not None
    admin = User.objects.get(email="admin@example.com")
    assert admin.is_superuser
    assert admin.is_staff
    assert admin.check_password(created.password)
    assert local_admin_ensure(email="admin@example.com") is None
    assert local_admin_ensure(email="another@example.com") is None
    assert User.objects.filter(is_superuser=True).count() == 1


def test_local_admin_ensure_gives_a_fresh_random_password_each_install() -> None:
    first = local_admin_ensure(email="admin@example.com")
    User.objects.all().delete()
    second = local_admin_ensure(email="admin@example.com")

    assert first is not None
    assert second is not None
    assert first.password != second.password
    assert len(second.password) >= 12
