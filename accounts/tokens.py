"""Personal access tokens: made, listed and revoked by their user (through the session, never
through another token), and turned back into their user when a program sends one.

A token is `arb_` and 43 random URL-safe characters (256 bits). Only its SHA-256 is stored, so a
database leak reveals no usable token, and a lookup is one indexed read (a plain hash suffices:
the secret is random, not a password). Its scope is `read` (GET and HEAD) or `chat` (every method
the API allows its user). A token of a guest, a disabled user, revoked or past its expiry
authenticates nobody; its last use is written at most once a minute.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import PersonalToken, User
from common.errors import ArborError

TOKEN_PREFIX = "arb_"
SHOWN_PREFIX_CHARACTERS = 12  # `arb_` and 8 of the secret: enough to tell a user's tokens apart
MAX_TOKENS_PER_USER = 50
MAX_LIFETIME = timedelta(days=366)
LAST_USED_EVERY = timedelta(minutes=1)
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class TokenRefused(ArborError):
    status = 400
    code = "invalid"


@dataclass(frozen=True)
class TokenMade:
    token: PersonalToken
    secret: str  # shown to its user once, never stored


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_create(*, user: User, name: str, scope: str, expires_at: datetime | None = None) -> TokenMade:
    if user.is_guest:
        raise TokenRefused("Guests cannot make tokens. Sign up first.", status=403, code="sign_up_required")
    name = name.strip()
    if not name:
        raise TokenRefused("Name the token.", fields={"name": ["Required."]})
    if scope not in PersonalToken.Scope.values:
        raise TokenRefused("Choose a scope.", fields={"scope": ["One of: read, chat."]})
    now = timezone.now()
    if expires_at is not None and not now < expires_at <= now + MAX_LIFETIME:
        raise TokenRefused("A token expires within a year.", fields={"expires_at": ["In the future, within a year."]})
    if tokens_of(user=user).count() >= MAX_TOKENS_PER_USER:
        raise TokenRefused(f"You have {MAX_TOKENS_PER_USER} tokens: revoke one first.", code="too_many")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = PersonalToken.objects.create(
        user=user,
        name=name,
        scope=scope,
        prefix=secret[:SHOWN_PREFIX_CHARACTERS],
        digest=_digest(secret),
        expires_at=expires_at,
    )
    return TokenMade(token=token, secret=secret)


def tokens_of(*, user: User) -> QuerySet[PersonalToken]:
    """The user's tokens that still work or may again be listed: not revoked, newest first
    (expired ones stay listed, marked by their `expires_at`, until revoked)."""
    return PersonalToken.objects.filter(user=user, revoked_at__isnull=True).order_by("-created_at", "-pk")


def token_revoke(*, user: User, token_id: int) -> None:
    revoked = tokens_of(user=user).filter(pk=token_id).update(revoked_at=timezone.now())
    if not revoked:
        raise TokenRefused("No such token.", status=404, code="not_found")


def token_user(*, secret: str, method: str) -> User | None:
    """The user a token acts for, or None when it acts for nobody (unknown, revoked, expired, a
    guest's or a disabled user's). A `read` token used to write raises `TokenRefused` (403)."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    now = timezone.now()
    token = (
        PersonalToken.objects.select_related("user", "user__tier")
        .filter(digest=_digest(secret), revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .first()
    )
    if token is None or not token.user.is_active or token.user.is_guest:
        return None
    if token.scope == PersonalToken.Scope.READ and method not in READ_METHODS:
        raise TokenRefused("This token may only read.", status=403, code="insufficient_scope")
    if token.last_used_at is None or token.last_used_at < now - LAST_USED_EVERY:
        PersonalToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


def tokens_revoke_all(tokens: QuerySet[PersonalToken]) -> int:
    """Revoke these tokens (an operator's action); how many were still valid."""
    return tokens.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
