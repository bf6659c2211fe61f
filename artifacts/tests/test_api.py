"""The artifacts JSON API over Django's test client, on real PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from accounts.tests.factories import UserFactory
from artifacts.models import Author, Document, DocumentVersion, Suggestion, SuggestionState
from artifacts.services import document_create, suggestion_save, version_add
from chat.services.chats import chat_soft_delete
from chat.services.tree import chat_create

pytestmark = pytest.mark.django_db

ESSAY = "The quick brown fox jumps over the lazy dog.\nIt was a sunny day.\n"


def _document(owner: User, content: str = ESSAY, kind: str = "text", **fields: Any) -> Document:
    document, _ = document_create(
        document_id=uuid.uuid4(),
        owner_id=owner.pk,
        chat_id=chat_create(owner=owner).pk,
        message_id=None,
        kind=kind,
        title=fields.pop("title", "Fox essay"),
        language=fields.pop("language", ""),
        content=content,
    )
    return document


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def owner() -> User:
    return UserFactory()


@pytest.fixture
def client(owner: User) -> Client:
    return _client(owner)


def _post(client: Client, url: str, body: Any = None) -> Any:
    return client.post(url, body if body is not None else {}, content_type="application/json")


# --- Reading --------------------------------------------------------------------------------------------
def test_a_document_answers_with_its_versions_and_latest_content(owner: User, client: Client) -> None:
    document = _document(owner)
    version_add(document=document, content=ESSAY + "More.\n", author=Author.USER)
    response = client.get(f"/api/documents/{document.pk}")
    assert response.status_code == 200
    data = response.json()
    assert (data["id"], data["kind"], data["title"]) == (str(document.pk), "text", "Fox essay")
    assert data["latest_version"] == 2
    assert [(v["number"], v["author"]) for v in data["versions"]] == [(1, "model"), (2, "user")]
    assert data["latest"]["number"] == 2 and data["latest"]["content"] == ESSAY + "More.\n"
    assert "no-store" in response["Cache-Control"]


def test_one_version_answers_with_its_content(owner: User, client: Client) -> None:
    document = _document(owner)
    version_add(document=document, content="Second.\n", author=Author.USER)
    data = client.get(f"/api/documents/{document.pk}/versions/1").json()
    assert (data["number"], data["content"]) == (1, ESSAY)
    assert data["download_url"] == f"/api/documents/{document.pk}/download?version=1"


def test_a_chats_documents_are_listed(owner: User, client: Client) -> None:
    document = _document(owner)
    data = client.get(f"/api/documents?chat={document.chat_id}").json()
    assert [item["id"] for item in data["documents"]] == [str(document.pk)]
    assert client.get("/api/documents?chat=nope").status_code == 400


def test_another_users_document_answers_404_everywhere(owner: User, client: Client) -> None:
    theirs = _document(UserFactory())
    suggestion = suggestion_save(
        version=theirs.versions.get(), batch=uuid.uuid4(), original="quick", suggested="fast", description="Shorter."
    )
    for method, url in (
        ("get", f"/api/documents/{theirs.pk}"),
        ("get", f"/api/documents/{theirs.pk}/versions"),
        ("post", f"/api/documents/{theirs.pk}/versions"),
        ("get", f"/api/documents/{theirs.pk}/versions/1"),
        ("post", f"/api/documents/{theirs.pk}/versions/1/restore"),
        ("get", f"/api/documents/{theirs.pk}/diff?from=1&to=1"),
        ("get", f"/api/documents/{theirs.pk}/download"),
        ("get", f"/api/documents/{theirs.pk}/suggestions"),
        ("post", f"/api/suggestions/{suggestion.pk}/accept"),
        ("post", f"/api/suggestions/{suggestion.pk}/reject"),
    ):
        response = _post(client, url, {"content": "mine now"}) if method == "post" else client.get(url)
        assert response.status_code == 404, url
        assert response.json()["error"]["code"] == "not_found"
    assert theirs.versions.count() == 1
    assert Suggestion.objects.get(pk=suggestion.pk).state == SuggestionState.PENDING


def test_a_version_number_of_another_document_answers_404(owner: User, client: Client) -> None:
    short = _document(owner)
    long = _document(owner)
    version_add(document=long, content="Two.\n", author=Author.USER)
    assert client.get(f"/api/documents/{long.pk}/versions/2").status_code == 200
    assert client.get(f"/api/documents/{short.pk}/versions/2").status_code == 404
    assert _post(client, f"/api/documents/{short.pk}/versions/2/restore").status_code == 404


def test_a_document_of_a_deleted_chat_answers_404(owner: User, client: Client) -> None:
    document = _document(owner)
    chat_soft_delete(chat=document.chat)
    assert client.get(f"/api/documents/{document.pk}").status_code == 404


def test_anonymous_requests_answer_401() -> None:
    document = _document(UserFactory())
    assert Client().get(f"/api/documents/{document.pk}").status_code == 401


# --- Editing and restoring --------------------------------------------------------------------------
def test_the_users_edit_is_saved_as_the_next_version(owner: User, client: Client) -> None:
    document = _document(owner)
    response = _post(client, f"/api/documents/{document.pk}/versions", {"content": "Edited.\n", "base_version": 1})
    assert response.status_code == 201
    assert (response.json()["number"], response.json()["author"]) == (2, "user")
    assert list(document.versions.values_list("number", "content")) == [(1, ESSAY), (2, "Edited.\n")]


def test_an_edit_based_on_an_old_version_answers_409_and_saves_nothing(owner: User, client: Client) -> None:
    document = _document(owner)
    version_add(document=document, content="Other tab.\n", author=Author.USER)
    response = _post(client, f"/api/documents/{document.pk}/versions", {"content": "Stale.\n", "base_version": 1})
    assert response.status_code == 409 and "latest version is 2" in response.json()["error"]["message"]
    assert document.versions.count() == 2


@pytest.mark.parametrize(
    ("kind", "content", "message"),
    [
        ("sheet", 'a,b\n1,"2\n', "does not parse"),
        ("sheet", "a,b\n1\n", "row 2 has 1 columns"),
        ("text", "x" * 200_001, "at most 200,000"),
        ("text", "   \n", "empty"),
    ],
)
def test_bad_content_answers_400_and_saves_nothing(
    owner: User, client: Client, kind: str, content: str, message: str
) -> None:
    document = _document(owner, "a,b\n1,2\n", kind=kind)
    response = _post(client, f"/api/documents/{document.pk}/versions", {"content": content})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_content" and message in response.json()["error"]["message"]
    assert document.versions.count() == 1


def test_an_edit_without_text_content_answers_400(owner: User, client: Client) -> None:
    document = _document(owner)
    assert _post(client, f"/api/documents/{document.pk}/versions", {"content": 5}).status_code == 400
    not_an_object = client.post(f"/api/documents/{document.pk}/versions", "[]", content_type="application/json")
    assert not_an_object.status_code == 400


def test_restore_copies_an_old_version_into_a_new_one(owner: User, client: Client) -> None:
    document = _document(owner)
    version_add(document=document, content="Rewritten.\n", author=Author.MODEL)
    response = _post(client, f"/api/documents/{document.pk}/versions/1/restore")
    assert response.status_code == 201
    assert (response.json()["number"], response.json()["restored_from"]) == (3, 1)
    assert list(document.versions.values_list("number", "content")) == [(1, ESSAY), (2, "Rewritten.\n"), (3, ESSAY)]


# --- Diff and download ---------------------------------------------------------------------------
def test_diff_answers_a_unified_diff_and_a_word_view_for_text(owner: User, client: Client) -> None:
    document = _document(owner)
    version_add(document=document, content=ESSAY.replace("quick", "slow"), author=Author.USER)
    data = client.get(f"/api/documents/{document.pk}/diff?from=1&to=2").json()
    assert (data["from"], data["to"]) == (1, 2)
    assert "--- v1\n+++ v2\n" in data["unified"]
    assert "-The quick brown fox" in data["unified"] and "+The slow brown fox" in data["unified"]
    assert {"op": "delete", "text": "quick"} in data["words"] and {"op": "insert", "text": "slow"} in data["words"]
    # Without numbers: the latest against the one before.
    assert client.get(f"/api/documents/{document.pk}/diff").json()["unified"] == data["unified"]


def test_code_diffs_have_no_word_view(owner: User, client: Client) -> None:
    document = _document(owner, "x = 1\n", kind="code", language="python")
    version_add(document=document, content="x = 2\n", author=Author.USER)
    data = client.get(f"/api/documents/{document.pk}/diff?from=1&to=2").json()
    assert data["words"] is None and "-x = 1\n+x = 2\n" in data["unified"]


def test_diff_with_a_bad_or_missing_version_number(owner: User, client: Client) -> None:
    document = _document(owner)
    assert client.get(f"/api/documents/{document.pk}/diff?from=0&to=1").status_code == 400
    assert client.get(f"/api/documents/{document.pk}/diff?from=abc&to=1").status_code == 400
    assert client.get(f"/api/documents/{document.pk}/diff?from=1&to=9").status_code == 404


DOWNLOADS = {
    "text": ("text", "", ESSAY, "fox-essay.md", "text/markdown; charset=utf-8"),
    "python": ("code", "python", "print(1)\n", "fox-essay.py", "text/plain; charset=utf-8"),
    "rust": ("code", "rust", "fn main() {}\n", "fox-essay.rs", "text/plain; charset=utf-8"),
    "sheet": ("sheet", "", "a,b\n1,2\n", "fox-essay.csv", "text/csv; charset=utf-8"),
}


@pytest.mark.parametrize("case", DOWNLOADS)
def test_download_is_a_file_with_the_kinds_extension(owner: User, client: Client, case: str) -> None:
    kind, language, content, filename, media_type = DOWNLOADS[case]
    document = _document(owner, content, kind=kind, language=language)
    response = client.get(f"/api/documents/{document.pk}/download")
    assert response.status_code == 200
    assert response["Content-Type"] == media_type
    assert response["Content-Disposition"] == f'attachment; filename="{filename}"'
    assert response.content == content.encode()


def test_download_of_an_older_version(owner: User, client: Client) -> None:
    document = _document(owner)
    version_add(document=document, content="New.\n", author=Author.USER)
    assert client.get(f"/api/documents/{document.pk}/download?version=1").content == ESSAY.encode()
    assert client.get(f"/api/documents/{document.pk}/download").content == b"New.\n"


def test_a_pictures_download_is_its_file_and_a_restore_keeps_the_same_file(
    owner: User, client: Client, media_root: Any
) -> None:
    png = b"\x89PNG\r\n\x1a\nfake picture"
    document, _ = document_create(
        document_id=uuid.uuid4(),
        owner_id=owner.pk,
        chat_id=chat_create(owner=owner).pk,
        message_id=None,
        kind="image",
        title="Red fox",
        language="",
        content="A red fox in snow",
        file_data=png,
    )
    version_add(document=document, content="A blue fox", author=Author.MODEL, file_data=b"\x89PNG other")
    restored = _post(client, f"/api/documents/{document.pk}/versions/1/restore").json()
    response = client.get(f"/api/documents/{document.pk}/download?version={restored['number']}")
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"] == 'attachment; filename="red-fox.png"'
    assert b"".join(response.streaming_content) == png
    assert client.get(f"/api/documents/{document.pk}/diff").status_code == 400
    assert _post(client, f"/api/documents/{document.pk}/versions", {"content": "x"}).status_code == 400


# --- Suggestions -------------------------------------------------------------------------------------
def _suggestion(document: Document, original: str = "quick", suggested: str = "swift") -> Suggestion:
    return suggestion_save(
        version=document.versions.get(number=1),
        batch=uuid.uuid4(),
        original=original,
        suggested=suggested,
        description="A stronger word.",
    )


def test_suggestions_are_listed_by_version_and_state(owner: User, client: Client) -> None:
    document = _document(owner)
    suggestion = _suggestion(document)
    data = client.get(f"/api/documents/{document.pk}/suggestions?version=1&state=pending").json()
    assert [(item["id"], item["original"], item["suggested"]) for item in data["suggestions"]] == [
        (str(suggestion.pk), "quick", "swift")
    ]
    assert client.get(f"/api/documents/{document.pk}/suggestions?state=accepted").json()["suggestions"] == []


def test_accepting_a_suggestion_makes_a_new_version(owner: User, client: Client) -> None:
    document = _document(owner)
    suggestion = _suggestion(document)
    response = _post(client, f"/api/suggestions/{suggestion.pk}/accept")
    assert response.status_code == 201
    data = response.json()
    assert data["suggestion"]["state"] == "accepted" and data["suggestion"]["applied_version"] == 2
    assert data["version"]["number"] == 2 and data["version"]["content"] == ESSAY.replace("quick", "swift")
    again = _post(client, f"/api/suggestions/{suggestion.pk}/accept")
    assert again.status_code == 409 and document.versions.count() == 2


def test_a_suggestion_whose_text_is_gone_from_the_latest_version_answers_409(owner: User, client: Client) -> None:
    document = _document(owner)
    suggestion = _suggestion(document)
    version_add(document=document, content="Nothing slow here now.\n", author=Author.USER)
    response = _post(client, f"/api/suggestions/{suggestion.pk}/accept")
    assert response.status_code == 409 and "no longer in the latest version" in response.json()["error"]["message"]
    assert Suggestion.objects.get(pk=suggestion.pk).state == SuggestionState.PENDING


def test_rejecting_a_suggestion_changes_no_version(owner: User, client: Client) -> None:
    document = _document(owner)
    suggestion = _suggestion(document)
    response = _post(client, f"/api/suggestions/{suggestion.pk}/reject")
    assert response.status_code == 200 and response.json()["suggestion"]["state"] == "rejected"
    assert document.versions.count() == 1
    assert _post(client, f"/api/suggestions/{suggestion.pk}/accept").status_code == 409


def test_versions_are_never_changed_once_saved(owner: User) -> None:
    version = _document(owner).versions.get()
    version.content = "rewritten history"
    with pytest.raises(ValueError, match="never changed"):
        version.save()
    assert DocumentVersion.objects.get(pk=version.pk).content == ESSAY
