"""The web UI's own JSON endpoint (`/api/me`): the signed-in user's profile, allowances and the
providers they may add keys for. Served by the API assembled in `config.api`."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Schema
from pydantic import ConfigDict

from accounts.models import User
from accounts.services import profile_update
from common.schemas import text
from web.selectors import key_providers, usage_levels

router = Router(tags=["me"])

DISPLAY_NAME_MAX = User._meta.get_field("display_name").max_length or 150
INSTRUCTIONS_MAX = User._meta.get_field("custom_instructions").max_length or 4000


class Level(Schema):
    available: int
    capacity: int
    per_minute: int


class KeyProvider(Schema):
    slug: str
    name: str


class Profile(Schema):
    email: str | None
    display_name: str
    custom_instructions: str
    is_guest: bool
    tier: str
    usage: dict[str, Level]
    key_providers: list[KeyProvider]


class ProfileChanges(Schema):
    """Either or both; each is trimmed, then held to its length."""

    model_config = ConfigDict(extra="forbid", strict=True)

    # Left out, a field is unchanged (None is never set: `null` is refused).
    display_name: text(max_length=DISPLAY_NAME_MAX, strip=True) = None  # type: ignore[valid-type]
    custom_instructions: text(max_length=INSTRUCTIONS_MAX, strip=True) = None  # type: ignore[valid-type]


def _profile(user: User) -> Profile:
    return Profile(
        email=user.email,
        display_name=user.display_name,
        custom_instructions=user.custom_instructions,
        is_guest=user.is_guest,
        tier=user.tier.name,
        usage=usage_levels(user=user),
        key_providers=key_providers(),
    )


@router.get("/me", response=Profile, summary="Who you are, your allowances now, the providers you may add keys for")
def me(request: HttpRequest) -> Profile:
    return _profile(request.auth)


@router.patch("/me", response=Profile, summary="Change your name or the instructions added to all your chats")
def me_change(request: HttpRequest, changes: ProfileChanges) -> Profile:
    """Guests too: what they set stays with the account when they sign up."""
    return _profile(profile_update(user=request.auth, changes=changes.model_dump(exclude_unset=True)))
