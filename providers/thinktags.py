"""Split inline `<think>…</think>` reasoning out of a streamed text.

Some models (DeepSeek-R1 distills, QwQ, Qwen3 behind servers without a reasoning parser) write
their reasoning into the answer text between think tags. `ThinkTagSplitter` is fed the text
deltas as they arrive and answers pieces tagged text or reasoning, in order.

Contract: a tag split across deltas ("<th" + "ink>") is still recognised, so the splitter holds
back at most `len(tag) - 1` characters, and only while they could still begin a tag; everything
else is answered at once. `flush()` releases what is held when the stream ends. Tags are
recognised anywhere and may repeat; an unclosed block is reasoning to the end. Newlines right
after a tag are dropped (models put them there for layout, they are no content).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"


class Piece(NamedTuple):
    kind: Literal["text", "reasoning"]
    text: str


class ThinkTagSplitter:
    def __init__(self, open_tag: str = OPEN_TAG, close_tag: str = CLOSE_TAG) -> None:
        self.open_tag = open_tag
        self.close_tag = close_tag
        self.in_reasoning = False
        self._held = ""  # a suffix that may be the start of the next tag
        self._after_tag = False  # drop newlines until the first other character

    def feed(self, chunk: str) -> list[Piece]:
        """The pieces `chunk` completes (possibly none, when all of it may begin a tag)."""
        buffer = self._held + chunk
        self._held = ""
        pieces: list[Piece] = []
        while buffer:
            tag = self.close_tag if self.in_reasoning else self.open_tag
            found = buffer.find(tag)
            if found >= 0:
                self._emit(pieces, buffer[:found])
                buffer = buffer[found + len(tag) :]
                self.in_reasoning = not self.in_reasoning
                self._after_tag = True
                continue
            keep = _partial_tag_length(buffer, tag)
            self._emit(pieces, buffer[: len(buffer) - keep])
            self._held = buffer[len(buffer) - keep :]
            break
        return pieces

    def flush(self) -> list[Piece]:
        """What is still held (a partial tag that never completed is plain content)."""
        pieces: list[Piece] = []
        held, self._held = self._held, ""
        self._emit(pieces, held)
        return pieces

    def _emit(self, pieces: list[Piece], text: str) -> None:
        if self._after_tag:
            text = text.lstrip("\r\n")
            if not text:
                return
            self._after_tag = False
        if not text:
            return
        kind: Literal["text", "reasoning"] = "reasoning" if self.in_reasoning else "text"
        if pieces and pieces[-1].kind == kind:
            pieces[-1] = Piece(kind, pieces[-1].text + text)
        else:
            pieces.append(Piece(kind, text))


def _partial_tag_length(buffer: str, tag: str) -> int:
    """The length of the longest suffix of `buffer` that is a proper prefix of `tag`. Such a
    suffix begins with the tag's first character: only where that character occurs near the end
    is anything compared (this runs for every text delta, and nearly none ends in one)."""
    start = buffer.find(tag[0], max(0, len(buffer) - len(tag) + 1))
    while start >= 0:
        if tag.startswith(buffer[start:]):
            return len(buffer) - start
        start = buffer.find(tag[0], start + 1)
    return 0


def split_think_tags(text: str) -> list[Piece]:
    """The pieces of a whole text at once (for non-streamed answers and tests)."""
    splitter = ThinkTagSplitter()
    pieces: list[Piece] = []
    for piece in [*splitter.feed(text), *splitter.flush()]:
        if pieces and pieces[-1].kind == piece.kind:
            pieces[-1] = Piece(piece.kind, pieces[-1].text + piece.text)
        else:
            pieces.append(piece)
    return pieces
