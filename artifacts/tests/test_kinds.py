from __future__ import annotations

import pytest

from artifacts.kinds import KINDS, KindError, kind_handler
from artifacts.kinds.base import MAX_CONTENT_CHARS


def test_every_registered_kind_loads_a_handler_of_its_own_name() -> None:
    assert set(KINDS) == {"text", "code", "sheet", "image"}
    for name in KINDS:
        assert kind_handler(name).name == name


@pytest.mark.parametrize("name", ["video", "", "TEXT", None, 3, ["text"]])
def test_an_unknown_kind_is_refused_naming_the_kinds_there_are(name: object) -> None:
    with pytest.raises(KindError, match="use one of: text, code, sheet, image"):
        kind_handler(name)


@pytest.mark.parametrize(
    ("answer", "saved"),
    [
        ("```markdown\n# Title\n\nBody\n```", "# Title\n\nBody\n"),
        ("\n\n# Title\n\nBody   \n\n", "# Title\n\nBody\n"),
        ("Intro\n```py\nx\n```\n", "Intro\n```py\nx\n```\n"),  # a fence inside is content
    ],
)
def test_a_fence_around_the_whole_answer_is_dropped_and_nothing_else(answer: str, saved: str) -> None:
    assert kind_handler("text").clean(answer) == saved


def test_content_over_the_limit_is_refused() -> None:
    kind_handler("text").validate("x" * MAX_CONTENT_CHARS)
    with pytest.raises(KindError, match="at most 200,000"):
        kind_handler("text").validate("x" * (MAX_CONTENT_CHARS + 1))


@pytest.mark.parametrize(
    ("csv", "message"),
    [
        ('a,b\n"1,2\n', "does not parse"),
        ("a,b,c\n1,2,3\n4,5\n", "row 3 has 2 columns, the header has 3"),
        ("\n\n", "empty"),
    ],
)
def test_a_csv_that_is_not_a_table_is_refused(csv: str, message: str) -> None:
    with pytest.raises(KindError, match=message):
        kind_handler("sheet").validate(csv)


def test_a_csv_with_quoted_commas_and_line_breaks_is_a_table() -> None:
    content = 'name,notes\n"Lovelace, Ada","wrote\nthe first program"\n'
    assert kind_handler("sheet").validate(content) == content


@pytest.mark.parametrize(
    ("language", "stored", "filename"),
    [("Python", "python", "my-tool.py"), ("ts", "typescript", "my-tool.ts"), ("cobol", "cobol", "my-tool.txt")],
)
def test_code_keeps_its_language_and_downloads_with_its_extension(language: str, stored: str, filename: str) -> None:
    code = kind_handler("code")
    assert code.language_clean(language) == stored
    assert code.filename(title="My tool!", language=stored) == filename


def test_only_code_has_a_language() -> None:
    assert kind_handler("text").language_clean("python") == ""
    with pytest.raises(KindError):
        kind_handler("code").language_clean("rm -rf /")
