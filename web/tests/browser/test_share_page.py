"""The share page in a real browser draws replies as the chat does (issue 14): Markdown through
the same sanitiser, highlighted code, maths, reasoning collapsed and documents as cards, under
the same Content-Security-Policy (the `console` fixture fails on any refusal); a hostile reply
stays inert there too."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from web.tests.browser.conftest import Console, send, wait_until_idle
from web.tests.browser.reading_fake import reading_fake  # noqa: F401 (autouse fixture)


def _share_url(page: Any) -> str:
    page.locator("#share-chat").click()
    expect(page.locator("#share-url")).to_have_value(re.compile(r"/share/"))
    url = page.locator("#share-url").input_value()
    page.locator("#share-close").click()
    return url


def test_the_share_page_renders_replies_like_the_chat(page: Any, chromium: Any, console: Console) -> None:
    page.goto("/")
    send(page, "[docmaths] A poem about orbits")
    wait_until_idle(page)
    send(page, "[rich] Explain **areas**")
    wait_until_idle(page)
    send(page, "[hostile] try it")
    wait_until_idle(page)
    url = _share_url(page)

    stranger = chromium.new_context(viewport={"width": 1000, "height": 700})
    try:
        shared = console.watch(stranger.new_page())
        shared.goto(url)
        replies = shared.locator(".shared-message.message-assistant")
        expect(replies).to_have_count(3)

        # The document the first reply wrote, as a card (no tool call shown for it).
        first = replies.nth(0)
        expect(first.locator(".artifact-card")).to_contain_text("Orbits")
        expect(first.locator(".artifact-card")).to_contain_text("Text · version 1")
        expect(first.locator(".tool-call")).to_have_count(0)

        # Markdown, highlighted code and maths; the reasoning there but collapsed.
        rich = replies.nth(1)
        expect(rich.locator(".markdown h3")).to_have_text("A heading")
        expect(rich.locator(".markdown strong")).to_have_text("bold")
        expect(rich.locator("pre code.hljs .hljs-keyword").first).to_have_text("def")
        expect(rich.locator(".code-block .code-head")).to_contain_text("python")
        expect(rich.locator(".katex")).to_have_count(1)
        assert "**" not in rich.inner_text() and "###" not in rich.inner_text() and "```" not in rich.inner_text()
        reasoning = rich.locator("details.reasoning")
        expect(reasoning).to_have_count(1)
        expect(reasoning).not_to_have_attribute("open", re.compile(".*"))
        expect(reasoning.locator(".reasoning-text")).to_be_hidden()

        # The user's own words stay as typed (text, not Markdown).
        expect(shared.locator(".shared-message.message-user").nth(1)).to_contain_text("Explain **areas**")

        # A hostile reply: nothing runs, nothing remote loads.
        hostile = replies.nth(2)
        expect(hostile.locator(".markdown")).to_contain_text("the end.")
        expect(hostile.locator(".shared-body script, .shared-body iframe, .shared-body img")).to_have_count(0)
        expect(hostile.locator("a[href^=javascript]")).to_have_count(0)
        assert shared.evaluate("window.__pwned") is None
    finally:
        stranger.close()
