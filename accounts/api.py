"""Personal access tokens over the JSON API (`/api/tokens`), and the bearer authentication that
lets a program use the API with one (`PersonalTokenAuth`). Tokens are managed through the
browser's session only: a token cannot make, list or revoke tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Router, Schema, Status
from ninja.security import HttpBearer, SessionAuth
from pydantic import ConfigDict, Field

from accounts.tokens import token_create, token_revoke, token_user, tokens_of
from common.schemas import text


class BrowserSession(SessionAuth):
    """The browser's session, with the CSRF check on writes. A request without the session
    cookie is not checked (it cannot ride on a session) and is left to the next way to sign in:
    ninja's own class checks CSRF first and refused a program's token for a missing CSRF cookie."""

    def __init__(self) -> None:
        super().__init__(csrf=True)

    def _get_key(self, request: HttpRequest) -> str | None:
        if self.param_name not in request.COOKIES:
            return None
        return super()._get_key(request)


router = Router(tags=["tokens"], auth=BrowserSession())


class PersonalTokenAuth(HttpBearer):
    """`Authorization: Bearer arb_…`: the token's user, as `request.auth`."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = token_user(secret=token, method=request.method or "GET")
        if user is not None:
            request.user = user  # type: ignore[assignment] - what the views and services read
        return user


class Token(Schema):
    id: int
    name: str
    scope: Literal["read", "chat"]
    prefix: str = Field(description="The token's first characters, to tell it apart")
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


class TokenMade(Token):
    secret: str = Field(description="The token itself: shown this once, never again")


class TokenNew(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: text(min_length=1, max_length=100, strip=True)  # type: ignore[valid-type]
    scope: Literal["read", "chat"]
    # An ISO 8601 text in JSON: read leniently (strict mode takes only datetime objects).
    expires_at: datetime | None = Field(default=None, strict=False, description="Optional, within a year")


@router.get("/tokens", response=list[Token], summary="Your personal access tokens")
def tokens_list(request: HttpRequest) -> Any:
    return list(tokens_of(user=request.auth))


@router.post("/tokens", response={201: TokenMade}, summary="Make a token (its secret is shown once)")
def tokens_make(request: HttpRequest, new: TokenNew) -> Any:
    made = token_create(user=request.auth, name=new.name, scope=new.scope, expires_at=new.expires_at)
    return Status(201, {**Token.model_validate(made.token).model_dump(), "secret": made.secret})


@router.delete("/tokens/{token_id}", response={204: None}, summary="Revoke a token")
def tokens_revoke(request: HttpRequest, token_id: int) -> Any:
    token_revoke(user=request.auth, token_id=token_id)
    return Status(204, None)
