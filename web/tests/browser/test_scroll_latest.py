"""The "Latest" button (issue 14): a reader who scrolls up while a reply streams is left where
they are, with a button that brings them back to the end, where the view follows the stream
again."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from web.tests.browser.conftest import PHONE, Console, screenshot, send, wait_until_idle
from web.tests.browser.reading_fake import reading_fake  # noqa: F401 (autouse fixture)

DISTANCE_FROM_END = (
    "(() => { const m = document.getElementById('messages'); return m.scrollHeight - m.scrollTop - m.clientHeight; })()"
)


def _paragraphs(page: Any) -> int:
    return page.locator("article.message.assistant .markdown > p").count()


def test_scrolling_up_during_a_stream_shows_a_button_back_to_the_latest(context: Any, console: Console) -> None:
    page = console.watch(context.new_page())
    page.set_viewport_size(PHONE)  # a small screen: the reply overflows early
    page.goto("/")
    button = page.locator("#scroll-latest")
    send(page, "[long] A long answer please")
    expect(page.locator("article.message.assistant .markdown")).to_contain_text("Paragraph 12 ")
    expect(button).to_be_hidden()  # following the stream at the end

    page.locator("#messages").evaluate("node => node.scrollTo(0, 0)")
    expect(button).to_be_visible()
    screenshot(page, "scroll-latest-phone")
    seen = _paragraphs(page)
    expect(page.locator("article.message.assistant .markdown > p")).not_to_have_count(seen)  # more arrived
    assert page.evaluate("document.getElementById('messages').scrollTop") == 0  # left where they read
    expect(page.locator("article.message.assistant.streaming")).to_have_count(1)

    button.click()
    expect(button).to_be_hidden()
    assert page.evaluate(DISTANCE_FROM_END) < 80
    # Following the stream again: still at the end after more paragraphs.
    seen = _paragraphs(page)
    expect(page.locator("article.message.assistant .markdown > p")).not_to_have_count(seen)
    assert page.evaluate(DISTANCE_FROM_END) < 80
    expect(button).to_be_hidden()
    wait_until_idle(page)
