"""Version numbering under concurrency, on real PostgreSQL (threads, each its own connection)."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connection

from accounts.tests.factories import UserFactory
from artifacts.models import Author, DocumentVersion
from artifacts.services import VersionConflict, document_create, version_add, version_restore
from chat.services.tree import chat_create


def _document() -> object:
    owner = UserFactory()
    document, _ = document_create(
        document_id=uuid.uuid4(),
        owner_id=owner.pk,
        chat_id=chat_create(owner=owner).pk,
        message_id=None,
        kind="text",
        title="Notes",
        language="",
        content="v1\n",
    )
    return document


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_get_consecutive_version_numbers() -> None:
    document = _document()
    errors: list[BaseException] = []

    def write(index: int) -> None:
        try:
            version_add(document=document, content=f"edit {index}\n", author=Author.USER)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    numbers = list(DocumentVersion.objects.filter(document=document).values_list("number", flat=True))
    assert numbers == list(range(1, 10))
    document.refresh_from_db()
    assert document.version_count == 9


@pytest.mark.django_db
def test_an_edit_based_on_the_latest_version_is_saved_and_one_based_on_an_older_is_refused() -> None:
    document = _document()
    assert version_add(document=document, content="v2\n", author=Author.USER, base_version=1).number == 2
    with pytest.raises(VersionConflict) as conflict:
        version_add(document=document, content="late\n", author=Author.USER, base_version=1)
    assert conflict.value.latest == 2


@pytest.mark.django_db
def test_a_restore_is_a_new_version_that_copies_the_old_one_and_names_it() -> None:
    document = _document()
    version_add(document=document, content="v2\n", author=Author.MODEL)
    restored = version_restore(document=document, version=DocumentVersion.objects.get(document=document, number=1))
    assert (restored.number, restored.content, restored.restored_from, restored.author) == (3, "v1\n", 1, "user")
