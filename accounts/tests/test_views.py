from __future__ import annotations

import re

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth.models import AnonymousUser
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from accounts.models import User
from accounts.selectors import tier_registered_default
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

HOME = "/"
SIGNUP = reverse("accounts:signup")
SIGNIN = reverse("accounts:signin")
SIGNOUT = reverse("accounts:signout")


def _visitor(client: Client) -> User | AnonymousUser:
    """Who the client's session says it is, read through a page that never creates a guest."""
    return client.get(SIGNIN).wsgi_request.user  # type: ignore[return-value]


def _guest_of(client: Client) -> User:
    """A guest made and signed in the way a first visit does it."""
    response = client.get(HOME)
    assert response.status_code == 200
    guest = response.wsgi_request.user
    assert guest.is_guest
    return guest  # type: ignore[return-value]


def _log_entry(user: User, text: str) -> LogEntry:
    return LogEntry.objects.create(user=user, action_flag=ADDITION, object_repr=text)


def _form_errors(response: HttpResponse) -> dict[str, list[str]]:
    return response.context["form"].errors  # type: ignore[attr-defined]


# Home: guests made lazily


def test_a_first_visit_makes_a_guest_and_signs_them_in() -> None:
    client = Client(REMOTE_ADDR="198.51.100.1")

    guest = _guest_of(client)

    assert User.objects.get().pk == guest.pk
    assert guest.created_ip == "198.51.100.1"
    assert _visitor(client) == guest


def test_a_second_visit_reuses_the_same_guest() -> None:
    client = Client()
    guest = _guest_of(client)

    response = client.get(HOME)

    assert response.wsgi_request.user == guest
    assert User.objects.count() == 1


def test_a_signed_in_user_visiting_home_makes_no_guest() -> None:
    client = Client()
    user = UserFactory()
    client.force_login(user)

    response = client.get(HOME)

    assert response.wsgi_request.user == user
    assert User.objects.count() == 1


def test_a_client_over_the_guest_limit_gets_429_with_a_retry_message(settings: Settings) -> None:
    settings.GUEST_CREATE_BURST = 2
    for _ in range(2):
        _guest_of(Client(REMOTE_ADDR="198.51.100.1"))

    response = Client(REMOTE_ADDR="198.51.100.1").get(HOME)

    assert response.status_code == 429
    text = response.content.decode()
    assert "Too many new guest sessions" in text
    match = re.search(r"try again in (\d+) seconds", text)
    assert match is not None
    assert int(match.group(1)) > 0
    assert User.objects.count() == 2


def test_a_guest_already_signed_in_is_not_stopped_by_the_guest_limit(settings: Settings) -> None:
    settings.GUEST_CREATE_BURST = 1
    client = Client(REMOTE_ADDR="198.51.100.1")
    guest = _guest_of(client)
    assert Client(REMOTE_ADDR="198.51.100.1").get(HOME).status_code == 429

    response = client.get(HOME)

    assert response.status_code == 200
    assert response.wsgi_request.user == guest


def test_forwarded_for_is_ignored_from_an_untrusted_address(settings: Settings) -> None:
    settings.GUEST_CREATE_BURST = 1
    settings.TRUSTED_PROXIES = []
    first = Client(REMOTE_ADDR="10.0.0.1").get(HOME, headers={"X-Forwarded-For": "203.0.113.1"})

    second = Client(REMOTE_ADDR="10.0.0.1").get(HOME, headers={"X-Forwarded-For": "203.0.113.2"})

    assert first.status_code == 200
    assert first.wsgi_request.user.created_ip == "10.0.0.1"
    assert second.status_code == 429


def test_forwarded_for_is_believed_from_a_trusted_proxy(settings: Settings) -> None:
    settings.GUEST_CREATE_BURST = 1
    settings.TRUSTED_PROXIES = ["10.0.0.1"]
    first = Client(REMOTE_ADDR="10.0.0.1").get(HOME, headers={"X-Forwarded-For": "203.0.113.1"})

    second = Client(REMOTE_ADDR="10.0.0.1").get(HOME, headers={"X-Forwarded-For": "203.0.113.2"})
    again = Client(REMOTE_ADDR="10.0.0.1").get(HOME, headers={"X-Forwarded-For": "203.0.113.1"})

    assert first.status_code == 200
    assert second.status_code == 200
    assert first.wsgi_request.user.created_ip == "203.0.113.1"
    assert second.wsgi_request.user.created_ip == "203.0.113.2"
    assert again.status_code == 429


# Sign-up


def test_the_sign_up_page_renders_and_creates_nobody() -> None:
    response = Client().get(SIGNUP)

    assert response.status_code == 200
    assert User.objects.count() == 0


@pytest.mark.parametrize(
    ("email", "password", "field"),
    [
        ("not-an-email", DEFAULT_PASSWORD, "email"),
        ("", DEFAULT_PASSWORD, "email"),
        ("short@example.com", "xY7!", "password"),
        ("common@example.com", "password123", "password"),
        ("numeric@example.com", "4815162342108", "password"),
        ("alexander.hamilton@example.com", "alexander.hamilton", "password"),
        ("nopassword@example.com", "", "password"),
    ],
)
def test_invalid_sign_up_rerenders_with_errors_and_creates_nothing(email: str, password: str, field: str) -> None:
    client = Client()

    response = client.post(SIGNUP, {"email": email, "password": password})

    assert response.status_code == 200
    assert field in _form_errors(response)
    assert User.objects.count() == 0
    assert not _visitor(client).is_authenticated


@pytest.mark.parametrize("email", ["dup@example.com", "DUP@Example.com"])
def test_signing_up_with_a_taken_email_rerenders_with_an_error(email: str) -> None:
    existing = UserFactory(email="dup@example.com")
    client = Client()
    guest = _guest_of(client)

    response = client.post(SIGNUP, {"email": email, "password": DEFAULT_PASSWORD})

    assert response.status_code == 200
    assert "already exists" in " ".join(_form_errors(response)["email"])
    assert User.objects.count() == 2
    guest.refresh_from_db()
    assert guest.is_guest
    assert _visitor(client) == guest
    existing.refresh_from_db()
    assert existing.email == "dup@example.com"


def test_a_guest_who_signs_up_keeps_the_same_row() -> None:
    client = Client()
    guest = _guest_of(client)
    _log_entry(guest, "made as a guest")

    response = client.post(SIGNUP, {"email": "kept@example.com", "password": DEFAULT_PASSWORD})

    assert response.status_code == 302
    assert response.url == HOME
    user = User.objects.get()
    assert user.pk == guest.pk
    assert not user.is_guest
    assert user.email == "kept@example.com"
    assert user.tier == tier_registered_default()
    assert user.check_password(DEFAULT_PASSWORD)
    assert LogEntry.objects.get().user_id == user.pk
    visitor = _visitor(client)
    assert visitor == user
    assert not visitor.is_guest


def test_an_anonymous_visitor_who_signs_up_gets_a_new_user() -> None:
    client = Client()

    response = client.post(SIGNUP, {"email": "new@example.com", "password": DEFAULT_PASSWORD})

    assert response.status_code == 302
    user = User.objects.get()
    assert user.email == "new@example.com"
    assert not user.is_guest
    assert user.tier == tier_registered_default()
    assert _visitor(client) == user


def test_sign_up_follows_a_safe_next() -> None:
    response = Client().post(SIGNUP, {"email": "n@example.com", "password": DEFAULT_PASSWORD, "next": "/admin/"})

    assert response.status_code == 302
    assert response.url == "/admin/"


# Sign-in


def _sign_in(client: Client, email: str, password: str = DEFAULT_PASSWORD, **extra: str) -> HttpResponse:
    return client.post(SIGNIN, {"email": email, "password": password, **extra})


def test_signing_in_with_the_right_password_signs_in() -> None:
    user = UserFactory(email="me@example.com")
    client = Client()

    response = _sign_in(client, "ME@example.com")

    assert response.status_code == 302
    assert response.url == HOME
    assert _visitor(client) == user


def test_signing_in_with_the_wrong_password_shows_an_error_and_signs_nobody_in() -> None:
    UserFactory(email="me@example.com")
    client = Client()

    response = _sign_in(client, "me@example.com", "wrong-password")

    assert response.status_code == 200
    assert "do not match" in " ".join(_form_errors(response)["__all__"])
    assert not _visitor(client).is_authenticated


def test_a_guest_who_fails_to_sign_in_stays_the_same_guest() -> None:
    UserFactory(email="me@example.com")
    client = Client()
    guest = _guest_of(client)

    _sign_in(client, "me@example.com", "wrong-password")

    assert _visitor(client) == guest
    assert User.objects.filter(pk=guest.pk).exists()


def test_a_guest_who_signs_in_has_their_data_moved_and_the_guest_deleted() -> None:
    account = UserFactory(email="me@example.com")
    _log_entry(account, "the account's own")
    client = Client()
    guest = _guest_of(client)
    _log_entry(guest, "made as a guest")
    _log_entry(guest, "also made as a guest")

    response = _sign_in(client, "me@example.com")

    assert response.status_code == 302
    assert not User.objects.filter(pk=guest.pk).exists()
    assert set(LogEntry.objects.values_list("user_id", flat=True)) == {account.pk}
    assert LogEntry.objects.count() == 3
    assert _visitor(client) == account


def test_a_signed_in_user_who_signs_in_elsewhere_keeps_their_data() -> None:
    first = UserFactory()
    _log_entry(first, "first's")
    second = UserFactory(email="second@example.com")
    client = Client()
    client.force_login(first)

    _sign_in(client, "second@example.com")

    assert _visitor(client) == second
    assert LogEntry.objects.get().user_id == first.pk


def test_sign_in_attempts_are_limited_per_client_address(settings: Settings) -> None:
    settings.SIGNIN_BURST = 2
    UserFactory(email="me@example.com")
    client = Client(REMOTE_ADDR="198.51.100.1")
    for _ in range(2):
        assert _sign_in(client, "me@example.com", "wrong-password").status_code == 200

    refused = _sign_in(client, "me@example.com")

    assert refused.status_code == 429
    assert "Too many sign-in attempts" in refused.content.decode()
    assert not _visitor(client).is_authenticated
    other = Client(REMOTE_ADDR="198.51.100.2")
    assert _sign_in(other, "me@example.com").status_code == 302


def test_a_refused_sign_in_does_not_tell_whether_the_password_was_right(settings: Settings) -> None:
    settings.SIGNIN_BURST = 1
    UserFactory(email="me@example.com")
    client = Client(REMOTE_ADDR="198.51.100.1")
    _sign_in(client, "me@example.com", "wrong-password")

    wrong = _sign_in(client, "me@example.com", "wrong-password")
    right = _sign_in(client, "me@example.com")

    assert wrong.status_code == right.status_code == 429
    assert _form_errors(wrong) == _form_errors(right)
    assert "do not match" not in wrong.content.decode()
    assert 'value="me@example.com"' in right.content.decode()
    assert not _visitor(client).is_authenticated


@pytest.mark.parametrize("next_url", ["/admin/", "/accounts/signup/?a=b", "http://testserver/admin/"])
def test_sign_in_follows_a_safe_next(next_url: str) -> None:
    UserFactory(email="me@example.com")

    response = _sign_in(Client(), "me@example.com", next=next_url)

    assert response.status_code == 302
    assert response.url == next_url


def test_sign_in_follows_a_safe_next_from_the_query_string() -> None:
    UserFactory(email="me@example.com")

    response = Client().post(f"{SIGNIN}?next=/admin/", {"email": "me@example.com", "password": DEFAULT_PASSWORD})

    assert response.status_code == 302
    assert response.url == "/admin/"


@pytest.mark.parametrize(
    "next_url",
    ["https://evil.example.com/", "//evil.example.com/path", "http://evil.example.com", "javascript:alert(1)"],
)
def test_sign_in_sends_an_unsafe_next_home(next_url: str) -> None:
    UserFactory(email="me@example.com")

    response = _sign_in(Client(), "me@example.com", next=next_url)

    assert response.status_code == 302
    assert response.url == HOME


def test_a_next_that_is_a_bare_word_does_not_break_sign_in() -> None:
    user = UserFactory(email="me@example.com")
    client = Client()

    response = _sign_in(client, "me@example.com", next="chat")

    assert response.status_code == 302
    assert response.url in {"chat", HOME}
    assert _visitor(client) == user


def test_the_sign_in_page_carries_a_usable_next() -> None:
    UserFactory(email="me@example.com")
    client = Client()
    page = client.get(SIGNIN).content.decode()
    match = re.search(r'name="next" value="([^"]*)"', page)
    assert match is not None

    response = _sign_in(client, "me@example.com", next=match.group(1))

    assert response.status_code == 302
    assert response.url == HOME


# Sign-out


def test_sign_out_refuses_get_and_keeps_the_session() -> None:
    user = UserFactory()
    client = Client()
    client.force_login(user)

    response = client.get(SIGNOUT)

    assert response.status_code == 405
    assert _visitor(client) == user


def test_sign_out_by_post_signs_out() -> None:
    client = Client()
    client.force_login(UserFactory())

    response = client.post(SIGNOUT)

    assert response.status_code == 302
    assert response.url == HOME
    assert not _visitor(client).is_authenticated
