"""Account writes: guests, sign-up (a guest upgraded in place), sign-in (a guest's data moved)."""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction

from accounts.client_ip import client_ip_bucket
from accounts.models import UsageBucket, User
from accounts.ratelimit import BucketRule, bucket_take
from accounts.selectors import (
    tier_guest_default,
    tier_registered_default,
    user_email_taken,
)
from accounts.signals import guest_transfer_merging


class RateLimited(Exception):
    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(f"{self.__doc__} Retry in {retry_after_seconds}s.")
        self.retry_after_seconds = retry_after_seconds


class GuestLimitReached(RateLimited):
    """Too many new guests from this address."""


class SignInLimitReached(RateLimited):
    """Too many sign-in attempts from this address."""


class EmailTaken(Exception):
    pass


def _spend(*, key: str, rule: BucketRule, refusal: type[RateLimited]) -> None:
    decision = bucket_take(key=key, rule=rule)
    if not decision.allowed:
        raise refusal(math.ceil(decision.retry_after_seconds))


def signin_attempt_spend(*, client_ip: str) -> None:
    """Count one sign-in attempt against this address (raises SignInLimitReached when spent)."""
    rule = BucketRule.per_hour(burst=settings.SIGNIN_BURST, per_hour=settings.SIGNIN_PER_HOUR)
    _spend(key=f"signin:{client_ip_bucket(client_ip)}", rule=rule, refusal=SignInLimitReached)


def guest_create(*, client_ip: str) -> User:
    """A new guest, unless this client's address has made too many lately."""
    rule = BucketRule.per_hour(burst=settings.GUEST_CREATE_BURST, per_hour=settings.GUEST_CREATE_PER_HOUR)
    _spend(key=f"guest-create:{client_ip_bucket(client_ip)}", rule=rule, refusal=GuestLimitReached)
    guest = User(is_guest=True, tier=tier_guest_default(), created_ip=client_ip or None)
    guest.set_unusable_password()
    guest.save()
    return guest


def user_sign_up(*, email: str, password: str, guest: User | None = None) -> User:
    """A registered user. A guest becomes one in place: same row, so all their data stays."""
    if user_email_taken(email=email):
        raise EmailTaken(email)
    email = User.objects.normalize_email(email)
    try:
        with transaction.atomic():
            if guest is None or not guest.is_guest:
                return User.objects.create_user(email, password)
            guest.email = email
            guest.is_guest = False
            guest.set_password(password)
            if guest.tier.is_guest_default:
                guest.tier = tier_registered_default()
            guest.save()
            return guest
    except IntegrityError as error:  # the same email signed up between the check and the write
        raise EmailTaken(email) from error


@transaction.atomic
def guest_data_transfer(*, guest: User, target: User) -> None:
    """Give everything a guest owns to `target`, then delete the guest.

    Every one-to-many relation that points at User moves, so a model added later moves with no
    change here. One-to-one rows (per-user singletons) stay with `target`'s own. A model that
    limits rows per user (unique together with the user) merges first, here or in a receiver of
    `guest_transfer_merging`; one that does not makes the move fail loudly rather than lose data.
    """
    if not guest.is_guest or guest.pk == target.pk:
        return
    # The account's own rate-limit buckets govern it; a guest's bucket of a kind it has is dropped.
    target_kinds = UsageBucket.objects.filter(user=target).values("kind")
    UsageBucket.objects.filter(user=guest, kind__in=target_kinds).delete()
    guest_transfer_merging.send(sender=User, guest=guest, target=target)
    for relation in User._meta.related_objects:
        if not relation.one_to_many:
            continue
        field_name = relation.field.name
        relation.related_model._base_manager.filter(**{field_name: guest}).update(**{field_name: target})
    guest.delete()


@dataclass(frozen=True)
class LocalAdmin:
    email: str
    password: str


def local_admin_ensure(*, email: str) -> LocalAdmin | None:
    """A superuser with a random password, unless any superuser exists (then None)."""
    if User.objects.filter(is_superuser=True).exists():
        return None
    password = secrets.token_urlsafe(12)
    User.objects.create_superuser(email, password)
    return LocalAdmin(email=email, password=password)


def profile_update(*, user: User, changes: dict[str, str]) -> User:
    """Set the user's own profile fields (`display_name`, `custom_instructions`) named in
    `changes`, already validated by the caller's schema."""
    editable = {"display_name", "custom_instructions"}
    unknown = set(changes) - editable
    if unknown:
        raise ValueError(f"not editable here: {sorted(unknown)}")
    for field, value in changes.items():
        setattr(user, field, value)
    if changes:
        user.save(update_fields=list(changes))
    return user
