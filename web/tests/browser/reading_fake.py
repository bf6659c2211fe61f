"""The fake model's answers for the "Reading" tests (issue 14), by keyword in the last user
message, on top of conftest's `KeywordOpenAI`: maths, a text document with maths, a rich reply
with reasoning, and slow Markdown streams."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from providers.testing.base import Behaviour, Call, Count, End, Reply, Say, Think, reply
from web.tests.browser.conftest import KeywordOpenAI

MATHS_REPLY = (
    "Euler's identity $e^{i\\pi} + 1 = 0$ is free, unlike $5 and $10 lunches.\n\n"
    "$$\n\\int_0^1 x^2\\,dx = \\frac{1}{3}\n$$\n\n"
    "Inline with brackets: \\(a_1 * b_2\\), and a broken one: $\\frac{1}{$ left as is."
)
POEM_WITH_MATHS = "# Orbits\n\nThe planet turns,\nthe planet goes,\nits path is $r = a(1 - e^2)$\nas Kepler knows.\n"
RICH_REPLY = (
    "### A heading\n\nSome **bold** words and `inline code`.\n\n"
    "```python\ndef area(r: float) -> float:\n    return 3.14 * r * r\n```\n\n"
    "The area is $\\pi r^2$.\n"
)
# Streamed in small pieces: a first paragraph, then constructs that are wrong while partial (an
# inline code span, a table) arriving a little at a time.
STREAM_PIECES = (
    "The first paragraph is finished early and stays put. ",
    "It has two sentences.\n\n",
    *(f"word{index} " for index in range(12)),
    "and `",
    "code",
    "` done.\n\n",
    "| Day ",
    "| Where |\n",
    "| --- | --- |\n",
    "| 1 | Alfama |\n\n",
    *(f"tail{index} " for index in range(40)),
)
# Headings, a table of long tokens (no space to wrap at) and a code block with a long line.
LAYOUT_REPLY = (
    "# Big heading\n\nIntro text.\n\n### Small heading\n\n"
    "| Identifier | Checksum |\n| --- | --- |\n"
    "| transaction_identifier_0123456789 | sha256:9f86d081884c7d659a2feaa0c55ad015 |\n\n"
    "```python\nvalue = compute(" + ", ".join(f"argument_{index}" for index in range(30)) + ")\nprint(value)\n```\n"
)
LONG_PARAGRAPHS = 60  # enough to overflow the thread, then some


def _messages(body: Any) -> tuple[str, str, list[dict[str, Any]]]:
    messages = body.get("messages", []) if isinstance(body, dict) else []
    system = " ".join(str(m.get("content")) for m in messages if m.get("role") == "system")
    users = [m for m in messages if m.get("role") == "user"]
    return system, str(users[-1].get("content")) if users else "", messages


def _document(system: str, messages: list[dict[str, Any]]) -> Behaviour:
    if system.startswith("You write the content of a document"):
        return reply(Say(POEM_WITH_MATHS))
    if messages[-1].get("role") == "tool":
        return reply(Say("Done: the poem is beside the chat."))
    call = Call("call_1", "create_document", json.dumps({"title": "Orbits", "kind": "text"}))
    return Reply(events=(call, Count(20, 10), End("tool_calls")))


def _streamed_markdown() -> Behaviour:
    return Reply(events=(*(Say(piece) for piece in STREAM_PIECES), Count(20, 80), End()), delay=0.15)


def _long() -> Behaviour:
    pieces = tuple(Say(f"Paragraph {index} of a long answer.\n\n") for index in range(LONG_PARAGRAPHS))
    return Reply(events=(*pieces, Count(20, 600), End()), delay=0.12)


# Keyword → the reply (one model call each).
REPLIES = {
    "[maths]": lambda: reply(Say("Here: "), Say(MATHS_REPLY)),
    "[rich]": lambda: reply(Think("Checking the formula first."), Say(RICH_REPLY)),
    "[streammd]": _streamed_markdown,
    "[long]": _long,
    "[layout]": lambda: reply(Say(LAYOUT_REPLY)),
}


def reading_behaviour(body: Any) -> Behaviour | None:
    system, last_user, messages = _messages(body)
    if last_user.rstrip().endswith("Title:"):
        return None  # a chat title: conftest's answer
    if "[docmaths]" in last_user:
        return _document(system, messages)
    keyword = next((word for word in REPLIES if word in last_user), None)
    return REPLIES[keyword]() if keyword else None


@pytest.fixture(autouse=True)
def reading_fake(fake_openai: KeywordOpenAI) -> Iterator[KeywordOpenAI]:
    original = fake_openai.next_behaviour

    def next_behaviour() -> Behaviour:
        body = fake_openai.requests[-1].body if fake_openai.requests else None
        return reading_behaviour(body) or original()

    fake_openai.next_behaviour = next_behaviour  # type: ignore[method-assign]
    try:
        yield fake_openai
    finally:
        del fake_openai.next_behaviour
