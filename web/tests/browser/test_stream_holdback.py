"""What a streaming reply's unfinished last block shows (issue 14, lib/stream-markdown.js): a
construct still open at the end of the text is held back until it is whole, so it never flashes
as raw Markdown; prices and open code fences are drawn as they come; the reply's end draws
everything. Driven through the page's own module, in the browser."""

from __future__ import annotations

from typing import Any

import pytest

# text so far → what the reply shows while it streams
CASES = [
    ("Use `co", "Use"),
    ("Use `code` and ``more", "Use code and"),
    ("Intro.\n\n| Day | Where |\n", "Intro."),
    ("Intro.\n\n| Day | Where |\n| --- | --- |\n| 1 | Alf", "Intro.DayWhere"),
    ("Intro.\n\n$$\n\\int_0^1 x", "Intro."),
    ("The area is $\\pi r^", "The area is"),
    ("It costs $5 and $10 a day", "It costs $5 and $10 a day"),
    ("Both $a=1$ and $5 here", "Both a=1 and $5 here"),
    ("```python\nx = 1", "pythonWrapCopyx = 1"),
]

DRAW = """async ([text, final]) => {
  const { renderStreaming } = await import("/static/js/lib/stream-markdown.js");
  const target = document.createElement("div");
  renderStreaming(target, text, { final });
  target.querySelectorAll(".katex-mathml").forEach((copy) => copy.remove()); // the screen readers' copy
  return target.textContent.replace(/\\s+/g, "");
}"""


@pytest.fixture
def chat_page(page: Any) -> Any:
    page.goto("/")
    return page


@pytest.mark.parametrize(("text", "shown"), CASES, ids=[text for text, _ in CASES])
def test_an_open_construct_at_the_end_is_held_back_while_streaming(chat_page: Any, text: str, shown: str) -> None:
    assert chat_page.evaluate(DRAW, [text, False]) == shown.replace(" ", "")


def test_the_replys_end_draws_everything(chat_page: Any) -> None:
    assert chat_page.evaluate(DRAW, ["Use `co", True]) == "Use`co"
    assert chat_page.evaluate(DRAW, ["Intro.\n\n| Day | Where |\n", True]) == "Intro.|Day|Where|"
