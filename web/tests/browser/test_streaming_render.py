"""A streaming reply is drawn incrementally (issue 14): the finished paragraphs keep their DOM,
so a selection made in one survives while more tokens arrive, and a partial construct at the
end (a lone backtick, a `|` line before its table exists) is held back instead of flashing as
raw text."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from web.tests.browser.conftest import send, wait_until_idle
from web.tests.browser.reading_fake import reading_fake  # noqa: F401 (autouse fixture)

# Every text the streaming reply showed, recorded on each change of the thread.
RECORD = """() => {
  window.__shown = [];
  const observer = new MutationObserver(() => {
    const text = document.querySelector("article.message.assistant .markdown");
    if (text) window.__shown.push(text.textContent);
  });
  observer.observe(document.getElementById("thread"), { childList: true, subtree: true, characterData: true });
}"""

SELECT_IN_FIRST_PARAGRAPH = """() => {
  const paragraph = document.querySelector("article.message.assistant .markdown > p");
  const text = paragraph.firstChild;
  const start = text.data.indexOf("first paragraph");
  const range = document.createRange();
  range.setStart(text, start);
  range.setEnd(text, start + "first paragraph".length);
  getSelection().removeAllRanges();
  getSelection().addRange(range);
  window.__paragraph = paragraph;
  return getSelection().toString();
}"""


def test_a_selection_in_a_finished_paragraph_survives_the_stream(page: Any) -> None:
    page.goto("/")
    send(page, "[streammd] Stream some Markdown")
    reply = page.locator("article.message.assistant.streaming .markdown")
    expect(reply).to_contain_text("word1")  # the first paragraph is finished
    assert page.evaluate(SELECT_IN_FIRST_PARAGRAPH) == "first paragraph"

    expect(reply).to_contain_text("tail3")  # many more tokens drawn since
    expect(page.locator("article.message.assistant.streaming")).to_have_count(1)  # still streaming
    assert page.evaluate("getSelection().toString()") == "first paragraph"
    assert page.evaluate("window.__paragraph.isConnected")

    wait_until_idle(page)  # the reply's end is drawn in place too
    assert page.evaluate("getSelection().toString()") == "first paragraph"
    assert page.evaluate("window.__paragraph.isConnected")


def test_a_partial_code_span_or_table_row_is_held_back_until_it_is_whole(page: Any) -> None:
    page.goto("/")
    page.evaluate(RECORD)
    send(page, "[streammd] Stream some Markdown")
    wait_until_idle(page)
    reply = page.locator("article.message.assistant .markdown").last
    expect(reply.locator("p code")).to_have_text("code")
    expect(reply.locator("table td").first).to_have_text("1")
    expect(reply).to_contain_text("tail39")

    shown = page.evaluate("window.__shown")
    assert any("word11" in text for text in shown)  # recorded while it streamed
    assert not [text for text in shown if "`" in text]
    assert not [text for text in shown if "|" in text]
