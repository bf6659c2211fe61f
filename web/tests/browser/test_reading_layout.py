"""How a reply reads (issue 14): headings scaled to the message, not the page; a table on a
phone keeps its tokens whole and scrolls sideways; a code block has one padding (no blank band)
and long lines that scroll or, at the reader's choice, wrap."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from web.tests.browser.conftest import PHONE, Console, screenshot, send, wait_until_idle
from web.tests.browser.reading_fake import reading_fake  # noqa: F401 (autouse fixture)

FONT_SIZE = "node => parseFloat(getComputedStyle(node).fontSize)"
# How many lines a cell's text runs over (one rectangle per line box).
LINES = (
    "node => { const range = document.createRange(); range.selectNodeContents(node); "
    "return range.getClientRects().length; }"
)
OVERFLOWS = "node => node.scrollWidth > node.clientWidth"


def _layout_reply(page: Any) -> Any:
    page.goto("/")
    send(page, "[layout] Show me the layout")
    wait_until_idle(page)
    return page.locator("article.message.assistant .markdown").last


def test_reply_headings_are_scaled_to_the_message(page: Any) -> None:
    reply = _layout_reply(page)
    text = reply.locator("p").first.evaluate(FONT_SIZE)
    big = reply.locator("h1").evaluate(FONT_SIZE)
    small = reply.locator("h3").evaluate(FONT_SIZE)
    assert text < small < big <= 1.4 * text  # a browser's own h1 is twice the text


def test_a_code_block_has_one_padding_and_wraps_long_lines_on_request(page: Any) -> None:
    reply = _layout_reply(page)
    block = reply.locator(".code-block")
    pre = block.locator("pre")
    # The first line starts right below the block's head, after the pre's padding only.
    gap = page.evaluate(
        """([head, code]) => {
            const range = document.createRange();
            range.selectNodeContents(code);
            return range.getClientRects()[0].top - head.getBoundingClientRect().bottom;
        }""",
        [block.locator(".code-head").element_handle(), pre.locator("code").element_handle()],
    )
    padding = pre.evaluate("node => parseFloat(getComputedStyle(node).paddingTop)")
    assert gap < padding + 6, (gap, padding)
    # The long line scrolls in the pre itself; Wrap folds it, and unfolds it again.
    assert pre.evaluate(OVERFLOWS)
    wrap = block.get_by_role("button", name="Wrap")
    wrap.click()
    expect(wrap).to_have_attribute("aria-pressed", "true")
    assert not pre.evaluate(OVERFLOWS)
    assert "argument_29" in pre.inner_text()
    wrap.click()
    expect(wrap).to_have_attribute("aria-pressed", "false")
    assert pre.evaluate(OVERFLOWS)


def test_on_a_phone_a_table_keeps_its_tokens_whole_and_scrolls(context: Any, console: Console) -> None:
    page = console.watch(context.new_page())
    page.set_viewport_size(PHONE)
    reply = _layout_reply(page)
    table = reply.locator(".table-wrap")
    for cell in ("transaction_identifier_0123456789", "sha256:9f86d081884c7d659a2feaa0c55ad015"):
        assert reply.get_by_role("cell", name=cell).evaluate(LINES) == 1, cell
    assert table.evaluate(OVERFLOWS)  # it scrolls sideways instead
    screenshot(page, "reply-layout-phone", full_page=True)
