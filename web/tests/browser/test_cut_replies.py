"""Replies that did not finish, in a real browser: the text that came is shown, and so is why it
ended (a provider that dropped the stream, a reply cut at its length limit), so a partial answer
never reads as a whole one. The fake vendor's faults are named in the prompt (`fault:<name>`)."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from providers.testing.base import ENDLESS_TEXT
from web.tests.browser.conftest import reply_text, send, wait_until_idle


def _last_reply(page: Any) -> Any:
    return page.locator("article.message.assistant").nth(-1)


def test_a_stream_the_provider_dropped_shows_its_text_and_the_error(page: Any) -> None:
    page.goto("/")
    send(page, "Explain fault:drop")
    wait_until_idle(page)
    reply = _last_reply(page)
    expect(reply.locator(".message-error")).to_have_text("The provider's connection ended before the reply finished.")
    assert reply_text(page).startswith("Reply ")
    expect(reply.locator(".message-note")).to_have_count(0)


def test_an_endless_reply_is_cut_at_the_length_limit_and_says_so(page: Any) -> None:
    page.goto("/")
    send(page, "Hello")  # the chat's first reply asks for its title: not an endless one
    wait_until_idle(page)
    send(page, "Go on forever fault:endless")
    wait_until_idle(page)
    reply = _last_reply(page)
    expect(reply.locator(".message-note")).to_have_text("Cut off at the length limit")
    expect(reply.locator(".message-error")).to_have_count(0)
    assert reply_text(page).count(ENDLESS_TEXT.strip()) > 100
    saved = page.evaluate("() => window.arbor.state.tree.activeLeaf()")
    assert (saved["status"], saved["finish_reason"]) == ("complete", "length")
    assert sum(len(part["text"]) for part in saved["content"]) == 20000
