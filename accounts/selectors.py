from __future__ import annotations

from accounts.models import Tier, User

# What a default tier is restored as if none is marked (an operator deleted or unmarked it).
# The same limits as migration 0002 gives the guest tier.
BUILTIN_GUEST_TIER: dict[str, object] = {
    "slug": "guest",
    "name": "Guest",
    "description": "Visitors who have not signed up.",
    "message_capacity": 10,
    "messages_per_minute": 3,
    "token_capacity": 50_000,
    "tokens_per_minute": 20_000,
}
BUILTIN_REGISTERED_TIER: dict[str, object] = {
    "slug": "registered",
    "name": "Registered",
    "description": "Everyone with an account.",
}


def _default_tier(flag: str, builtin: dict[str, object]) -> Tier:
    """The tier marked `flag`. Every user must get a tier, so when none is marked the built-in
    one is restored (the single write a selector does: losing sign-ups is worse)."""
    tier = Tier.objects.filter(**{flag: True}).first()
    if tier is not None:
        return tier
    tier, _ = Tier.objects.get_or_create(slug=str(builtin["slug"]), defaults=builtin)
    if not getattr(tier, flag):
        Tier.objects.filter(pk=tier.pk).update(**{flag: True})
        tier.refresh_from_db()
    return tier


def tier_guest_default() -> Tier:
    return _default_tier("is_guest_default", BUILTIN_GUEST_TIER)


def tier_registered_default() -> Tier:
    return _default_tier("is_registered_default", BUILTIN_REGISTERED_TIER)


def user_email_taken(*, email: str, exclude: User | None = None) -> bool:
    users = User.objects.filter(email__iexact=email)
    if exclude is not None:
        users = users.exclude(pk=exclude.pk)
    return users.exists()
