from __future__ import annotations

import pytest

from providers.thinktags import Piece, ThinkTagSplitter, split_think_tags


def feed_all(chunks: list[str]) -> list[Piece]:
    """Every piece the chunks give, neighbours of one kind joined (how a reader sees them)."""
    splitter = ThinkTagSplitter()
    pieces: list[Piece] = []
    for piece in [piece for chunk in chunks for piece in splitter.feed(chunk)] + splitter.flush():
        if pieces and pieces[-1].kind == piece.kind:
            pieces[-1] = Piece(piece.kind, pieces[-1].text + piece.text)
        else:
            pieces.append(piece)
    return pieces


def test_text_without_tags_passes_through_at_once() -> None:
    splitter = ThinkTagSplitter()
    assert splitter.feed("Hello, world.") == [Piece("text", "Hello, world.")]
    assert splitter.flush() == []


def test_a_think_block_becomes_reasoning_and_the_rest_text() -> None:
    assert split_think_tags("<think>Let me see.</think>The answer is 4.") == [
        Piece("reasoning", "Let me see."),
        Piece("text", "The answer is 4."),
    ]


def test_text_before_and_after_the_block_stays_text_in_order() -> None:
    assert split_think_tags("Hmm. <think>inner</think> Done.") == [
        Piece("text", "Hmm. "),
        Piece("reasoning", "inner"),
        Piece("text", " Done."),
    ]


@pytest.mark.parametrize(
    "chunks",
    [
        ["<th", "ink>why</think>so"],
        ["<", "think", ">why<", "/", "think", ">so"],
        ["<think>why</thi", "nk>so"],
        ["<think>why<", "/think>", "so"],
        list("<think>why</think>so"),
    ],
)
def test_tags_split_across_chunks_are_still_recognised(chunks: list[str]) -> None:
    assert feed_all(chunks) == [Piece("reasoning", "why"), Piece("text", "so")]


def test_a_partial_tag_is_held_back_and_nothing_more() -> None:
    splitter = ThinkTagSplitter()
    assert splitter.feed("Answer <thi") == [Piece("text", "Answer ")]
    assert splitter.feed("s is plain") == [Piece("text", "<this is plain")]


def test_held_back_text_never_exceeds_a_partial_tag() -> None:
    splitter = ThinkTagSplitter()
    emitted = ""
    for character in "a<b<th<thin<think>c</d</thi</think>e":
        emitted += "".join(piece.text for piece in splitter.feed(character))
        assert len(splitter._held) < len("</think>")
    emitted += "".join(piece.text for piece in splitter.flush())
    assert emitted == "a<b<th<thinc</d</thie"


def test_a_lone_angle_bracket_at_the_end_is_released_by_flush() -> None:
    splitter = ThinkTagSplitter()
    assert splitter.feed("x <") == [Piece("text", "x ")]
    assert splitter.flush() == [Piece("text", "<")]


def test_an_unclosed_block_is_reasoning_to_the_end() -> None:
    assert feed_all(["<think>still thinking", " and </thi"]) == [Piece("reasoning", "still thinking and </thi")]


def test_newlines_right_after_a_tag_are_dropped() -> None:
    assert feed_all(["<think>\n", "plan\n</think>", "\n\n", "Answer"]) == [
        Piece("reasoning", "plan\n"),
        Piece("text", "Answer"),
    ]


def test_several_blocks_alternate() -> None:
    assert split_think_tags("<think>a</think>b<think>c</think>d") == [
        Piece("reasoning", "a"),
        Piece("text", "b"),
        Piece("reasoning", "c"),
        Piece("text", "d"),
    ]


def test_other_tags_can_be_chosen() -> None:
    splitter = ThinkTagSplitter(open_tag="<thinking>", close_tag="</thinking>")
    assert splitter.feed("<thinking>x</thinking>y") == [Piece("reasoning", "x"), Piece("text", "y")]
