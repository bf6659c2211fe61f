"""A socket the server closes with 1011 (what daphne sends when the application fails a socket,
as during a Redis outage): the page connects again by itself and resumes the reply it was
showing, with no word missing or twice (issue 12, item 9)."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from web.tests.browser.conftest import SLOW_WORDS, reply_text, send, wait_until_idle

ALL_WORDS = [f"word{index}" for index in range(SLOW_WORDS)]
# The close codes the page's sockets saw, in order.
RECORD_CLOSE_CODES = """
window.closeCodes = [];
const Native = window.WebSocket;
window.WebSocket = class extends Native {
  constructor(...args) {
    super(...args);
    this.addEventListener("close", (event) => window.closeCodes.push(event.code));
  }
};
"""


def test_a_socket_closed_by_the_server_with_1011_reconnects_and_resumes_the_reply(page: Any) -> None:
    sockets: list[Any] = []

    def relay(socket: Any) -> None:  # the page's socket, passed through to the real server
        socket.connect_to_server()
        sockets.append(socket)

    page.route_web_socket(re.compile(r"/ws/chat/$"), relay)
    page.add_init_script(RECORD_CLOSE_CODES)
    page.goto("/")
    send(page, "[slow] through an outage")
    expect(page.locator("article.message.assistant .markdown").last).to_contain_text("word3")
    assert len(sockets) == 1

    sockets[0].close(code=1011, reason="Internal server error")  # as the page sees a server failure

    wait_until_idle(page)
    assert page.evaluate("window.closeCodes")[0] == 1011
    assert len(sockets) >= 2  # it connected again by itself
    assert reply_text(page).split() == ALL_WORDS
