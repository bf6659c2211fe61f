"""Factories for accounts: tiers, registered users and guests (the default tiers come from the migration)."""

from __future__ import annotations

import factory
from django.contrib.auth.hashers import make_password
from factory.django import DjangoModelFactory

from accounts.models import Tier, User
from accounts.selectors import tier_guest_default, tier_registered_default

DEFAULT_PASSWORD = "a-long-and-unusual-passphrase-42"


class TierFactory(DjangoModelFactory):
    class Meta:
        model = Tier

    slug = factory.Sequence(lambda n: f"tier-{n}")
    name = factory.Sequence(lambda n: f"Tier {n}")
    description = ""


class UserFactory(DjangoModelFactory):
    """A registered user whose password is DEFAULT_PASSWORD."""

    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    is_guest = False
    tier = factory.LazyFunction(tier_registered_default)
    password = factory.LazyFunction(lambda: make_password(DEFAULT_PASSWORD))


class GuestFactory(DjangoModelFactory):
    """A guest: no email, no usable password, the guest default tier."""

    class Meta:
        model = User

    email = None
    is_guest = True
    tier = factory.LazyFunction(tier_guest_default)
    password = factory.LazyFunction(lambda: make_password(None))
    created_ip = "203.0.113.7"
