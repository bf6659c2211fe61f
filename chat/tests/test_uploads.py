"""Images attached to messages, over HTTP: `POST /api/uploads` stores one image whose type is read
from its bytes (not its name) and answers where to get it; `GET /api/uploads/<id>` serves it to
its owner only. Writes need the CSRF token, like every JSON write."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from pytest_django.fixtures import Settings

from accounts.models import User
from accounts.tests.factories import UserFactory
from chat.models import Upload
from chat.services.uploads import MAX_UPLOAD_BYTES, image_type

pytestmark = pytest.mark.django_db

# A 1x1 PNG, and the first bytes of the other formats (their signatures are all that is read).
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32
GIF = b"GIF89a\x01\x00\x01\x00" + b"\x00" * 32
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 32


@pytest.fixture(autouse=True)
def media(settings: Settings, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def user() -> User:
    return UserFactory()


@pytest.fixture
def signed_in(client: Client, user: User) -> Client:
    client.force_login(user)
    return client


def _post(client: Client, data: bytes, name: str = "picture.png", **extra: Any) -> Any:
    return client.post("/api/uploads", {"file": SimpleUploadedFile(name, data)}, **extra)


@pytest.mark.parametrize(
    ("data", "media_type"), [(PNG, "image/png"), (JPEG, "image/jpeg"), (GIF, "image/gif"), (WEBP, "image/webp")]
)
def test_an_image_is_stored_and_answered_with_its_id_type_size_and_url(
    signed_in: Client, user: User, data: bytes, media_type: str
) -> None:
    response = _post(signed_in, data)
    assert response.status_code == 201
    body = response.json()
    assert body == {"id": body["id"], "media_type": media_type, "size": len(data), "url": f"/api/uploads/{body['id']}"}
    upload = Upload.objects.get(pk=body["id"])
    assert (upload.owner, upload.media_type, upload.size) == (user, media_type, len(data))


def test_the_owner_gets_the_image_back_with_the_checked_type_and_nosniff(signed_in: Client) -> None:
    url = _post(signed_in, PNG, name="holiday.jpg").json()["url"]  # the name says JPEG; the bytes say PNG
    response = signed_in.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == PNG


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>", "picture.png"),
        (b"<html><script>alert(1)</script></html>", "picture.gif"),
        (b"%PDF-1.7 not an image", "picture.jpg"),
        (b"", "empty.png"),
    ],
)
def test_a_file_whose_bytes_are_no_image_is_refused_whatever_its_name(
    signed_in: Client, data: bytes, name: str
) -> None:
    response = _post(signed_in, data, name=name)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unsupported_type"
    assert not Upload.objects.exists()


def test_an_image_of_exactly_five_megabytes_is_taken_and_one_byte_more_is_refused(
    signed_in: Client, media: Path
) -> None:
    at_limit = PNG + b"\x00" * (MAX_UPLOAD_BYTES - len(PNG))
    assert _post(signed_in, at_limit).status_code == 201
    response = _post(signed_in, at_limit + b"\x00")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert Upload.objects.count() == 1
    assert len(list((media / "uploads").rglob("*"))) == 2  # the owner's folder and the one file


def test_a_body_announced_far_over_the_limit_is_refused_before_it_is_read(signed_in: Client) -> None:
    response = _post(signed_in, PNG + b"\x00" * (2 * MAX_UPLOAD_BYTES))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert not Upload.objects.exists()


def test_one_file_is_expected_in_the_file_field(signed_in: Client) -> None:
    response = signed_in.post("/api/uploads", {"image": SimpleUploadedFile("a.png", PNG)})
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"file": ["Attach one image."]}


def test_another_users_image_answers_404_like_a_missing_one(signed_in: Client) -> None:
    stranger = Client()
    stranger.force_login(UserFactory())
    url = _post(stranger, PNG).json()["url"]
    assert stranger.get(url).status_code == 200
    assert signed_in.get(url).status_code == 404
    assert signed_in.get("/api/uploads/00000000-0000-0000-0000-000000000000").status_code == 404


def test_anonymous_visitors_get_401_and_other_methods_405(client: Client, signed_in: Client) -> None:
    url = _post(signed_in, PNG).json()["url"]
    assert Client().get(url).status_code == 401
    assert signed_in.get("/api/uploads").status_code == 405
    assert signed_in.post(url).status_code == 405


def test_an_upload_needs_the_csrf_token_the_browser_sends(user: User) -> None:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    browser.get("/")  # the page sets the CSRF cookie
    assert _post(browser, PNG).status_code == 403
    assert not Upload.objects.exists()
    response = _post(browser, PNG, HTTP_X_CSRFTOKEN=browser.cookies["csrftoken"].value)
    assert response.status_code == 201


def test_the_type_is_read_from_the_signature_only() -> None:
    assert image_type(PNG[:16]) == "image/png"
    assert image_type(b"RIFF\x00\x00\x00\x00WAVE") is None
    assert image_type(b"\x89PNG") is None  # a cut-off signature is no PNG
