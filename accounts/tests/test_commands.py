from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from accounts.models import User

pytestmark = pytest.mark.django_db


def _ensure_local_admin(*args: str) -> str:
    out = StringIO()
    call_command("ensure_local_admin", *args, stdout=out)
    return out.getvalue()


def _printed(output: str, label: str) -> str:
    match = re.search(rf"^\s*{label}:\s*(\S+)\s*$", output, re.MULTILINE)
    assert match is not None, output
    return match.group(1)


def test_the_first_run_prints_the_default_email_and_a_password() -> None:
    output = _ensure_local_admin()

    assert _printed(output, "email") == "admin@localhost"
    password = _printed(output, "password")
    admin = User.objects.get(email="admin@localhost")
    assert admin.is_superuser
    assert admin.check_password(password)


def test_the_second_run_prints_nothing_and_creates_nobody() -> None:
    _ensure_local_admin("--email", "me@example.com")

    assert _ensure_local_admin("--email", "me@example.com") == ""
    assert _ensure_local_admin("--email", "other@example.com") == ""
    assert User.objects.count() == 1


def test_the_printed_password_signs_in_on_the_sign_in_page() -> None:
    output = _ensure_local_admin("--email", "me@example.com")
    client = Client()

    response = client.post(
        reverse("accounts:signin"),
        {"email": _printed(output, "email"), "password": _printed(output, "password")},
    )

    assert response.status_code == 302
    assert client.get(reverse("admin:index")).status_code == 200
