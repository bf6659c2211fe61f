"""The end of a reply in a real browser: the `done` frame carries the saved message, so neither the
tab that sent it nor another tab following it reads the whole chat again (a long chat's tree is
megabytes); each patches its tree in place and shows the reply as saved."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import expect

from web.tests.browser.conftest import SLOW_WORDS, Console, chat_id, reply_text, send, wait_until_idle

ALL_WORDS = [f"word{index}" for index in range(SLOW_WORDS)]
# A late re-read of the chat would come this long after the reply ended (the old client's came
# 150 ms after `done`).
SETTLE_MS = 600


class ChatReads:
    """Every `GET /api/chats/<id>` (the whole tree) a page makes, by chat id."""

    def __init__(self, page: Any) -> None:
        self.paths: list[str] = []
        page.on("request", self._note)

    def _note(self, request: Any) -> None:
        path = urlsplit(request.url).path
        if request.method == "GET" and path.startswith("/api/chats/") and path.count("/") == 3:
            self.paths.append(path)

    def of(self, chat: str) -> int:
        return self.paths.count(f"/api/chats/{chat}")


def _saved_reply(page: Any) -> dict[str, Any]:
    """The last reply as this tab's tree holds it."""
    return page.evaluate(
        """() => {
            const reply = window.arbor.state.tree.activeLeaf();
            return {status: reply.status, content: reply.content, usage: reply.usage,
                    finish_reason: reply.finish_reason, model_id: reply.model_id,
                    created_at: reply.created_at ?? null};
        }"""
    )


def _shown_as_saved(page: Any) -> None:
    reply = page.locator("article.message.assistant").nth(-1)
    expect(reply).not_to_have_class(re.compile(r"\bstreaming\b"))
    expect(reply).to_have_attribute("aria-busy", "false")
    expect(reply.locator(".action-regenerate")).to_be_visible()  # only a finished reply has it
    expect(reply.locator(".model-used")).not_to_have_text("")


def test_the_tab_that_sent_patches_the_reply_from_done_without_reading_the_chat_again(
    page: Any,
) -> None:
    reads = ChatReads(page)
    page.goto("/")
    send(page, "[think] Should I?")
    wait_until_idle(page)
    chat = chat_id(page)
    send(page, "[think] And then?")  # a reply at the end of a chat that already has one
    wait_until_idle(page)
    page.wait_for_timeout(SETTLE_MS)

    assert reads.of(chat) == 0
    _shown_as_saved(page)
    reply = page.locator("article.message.assistant").nth(-1)
    expect(reply.locator(".markdown strong")).to_have_text("yes")
    expect(reply.locator("details.reasoning .reasoning-text")).to_have_text("Weighing the options first. ")
    saved = _saved_reply(page)
    assert saved["status"] == "complete" and saved["finish_reason"] == "stop"
    assert [part["type"] for part in saved["content"]] == ["reasoning", "text"]
    assert saved["content"][1]["text"] == "Thought it through: **yes**."
    # The saved usage, not what the turn reserved (which the tree holds while it streams).
    assert set(saved["usage"]) == {"input_tokens", "output_tokens", "reasoning_tokens"}
    assert saved["model_id"] and saved["created_at"]  # fields only the server knows


def test_another_tab_following_the_reply_patches_it_from_done_without_a_second_read(
    context: Any, console: Console
) -> None:
    first = console.watch(context.new_page())
    first.goto("/")
    send(first, "Hello")
    wait_until_idle(first)
    chat = chat_id(first)
    second = console.watch(context.new_page())
    reads = ChatReads(second)
    second.goto(f"/?chat={chat}")
    expect(second.locator("article.message")).to_have_count(2)
    assert reads.of(chat) == 1  # the page load
    # A pong means the server has added this socket to the user's group: it hears of the generation.
    second.evaluate("window.arbor.socket.request({type: 'ping'})")

    send(first, "[slow] now stream to both")
    streaming = second.locator("article.message.assistant.streaming")
    expect(streaming).to_have_count(1)  # told of the generation (one read), then following it
    expect(streaming.locator(".markdown")).to_contain_text("word2")
    wait_until_idle(first)
    wait_until_idle(second)
    second.wait_for_timeout(SETTLE_MS)

    assert reads.of(chat) == 2  # the page load and the `generation` notice; none after `done`
    _shown_as_saved(second)
    assert reply_text(second).split() == ALL_WORDS == reply_text(first).split()
    saved = _saved_reply(second)
    assert saved["status"] == "complete"
    assert saved["usage"]["output_tokens"] == SLOW_WORDS
    assert "".join(part["text"] for part in saved["content"]).split() == ALL_WORDS
