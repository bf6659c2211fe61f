from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection


@pytest.mark.django_db
def test_the_ltree_extension_is_installed_and_answers_ancestry_queries() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT extname FROM pg_extension WHERE extname = 'ltree'")
        assert cursor.fetchone() == ("ltree",)
        cursor.execute("SELECT 'chat.1.2'::ltree <@ 'chat.1'::ltree, 'chat.2'::ltree <@ 'chat.1'::ltree")
        assert cursor.fetchone() == (True, False)


@pytest.mark.django_db
def test_the_models_have_no_changes_missing_a_migration() -> None:
    output = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=output)
    assert "No changes detected" in output.getvalue()
