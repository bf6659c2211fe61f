from __future__ import annotations

from artifacts.diffs import WORD_DIFF_MAX_CHARS, unified_diff, word_diff


def test_the_word_view_rebuilds_both_texts() -> None:
    old, new = "The cat sat on the mat.", "The black cat sat on a mat!"
    runs = word_diff(old, new)
    assert runs is not None
    assert "".join(run["text"] for run in runs if run["op"] != "insert") == old
    assert "".join(run["text"] for run in runs if run["op"] != "delete") == new
    assert {"op": "delete", "text": "the"} in runs and {"op": "insert", "text": "a"} in runs


def test_the_word_view_is_left_out_for_very_long_texts() -> None:
    assert word_diff("a" * (WORD_DIFF_MAX_CHARS + 1), "b") is None


def test_a_unified_diff_marks_a_missing_final_newline() -> None:
    diff = unified_diff("one\ntwo", "one\nthree", old_name="v1", new_name="v2")
    assert diff.startswith("--- v1\n+++ v2\n")
    assert "-two\n\\ No newline at end of file\n+three\n\\ No newline at end of file\n" in diff


def test_identical_versions_have_an_empty_diff() -> None:
    assert unified_diff("same\n", "same\n", old_name="v1", new_name="v2") == ""
    assert word_diff("same", "same") == [{"op": "equal", "text": "same"}]
