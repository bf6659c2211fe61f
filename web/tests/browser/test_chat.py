"""The chat screen in a real browser: streaming, stop, edit, regenerate, branches both ways,
fork, votes, reload mid-stream, two tabs, and a hostile reply that stays inert."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from web.tests.browser.conftest import (
    SLOW_WORDS,
    Console,
    api_json,
    chat_id,
    reply_text,
    screenshot,
    send,
    wait_until_idle,
)

ALL_WORDS = [f"word{index}" for index in range(SLOW_WORDS)]


def _message(page: Any, role: str, index: int = -1) -> Any:
    return page.locator(f"article.message.{role}").nth(index)


def test_a_reply_streams_in_and_the_chat_gets_a_title(page: Any) -> None:
    page.goto("/")
    expect(page.locator("#model option")).not_to_have_count(0)
    send(page, "[slow] Tell me a long story")

    streaming = page.locator("article.message.assistant.streaming")
    expect(streaming).to_have_count(1)
    expect(page.locator("#stop")).to_be_visible()
    expect(streaming.locator(".markdown")).to_contain_text("word3")
    assert ALL_WORDS[-1] not in reply_text(page)  # seen while still being written
    screenshot(page, "streaming-desktop")

    wait_until_idle(page)
    assert reply_text(page).split() == ALL_WORDS
    expect(page.locator("#chat-title")).to_have_text("About Tell me a long")
    expect(page.locator(".chat-link[aria-current=page]")).to_have_text("About Tell me a long")


def test_markdown_renders_tables_and_highlighted_code_with_a_copy_button(page: Any) -> None:
    page.goto("/")
    send(page, "Plan a trip")
    wait_until_idle(page)
    reply = _message(page, "assistant")
    expect(reply.locator("table td").first).to_have_text("1")
    expect(reply.locator(".code-block .code-head")).to_contain_text("python")
    expect(reply.locator("pre code.hljs .hljs-keyword").first).to_have_text("def")
    expect(reply.locator("strong")).to_have_text("plan")
    reply.locator(".copy-code").click()
    expect(reply.locator(".copy-code")).to_have_text("Copied")


def test_stop_by_keyboard_keeps_the_partial_reply(page: Any) -> None:
    page.goto("/")
    page.locator("#prompt").focus()
    page.keyboard.type("[slow] first line")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("second line")
    page.keyboard.press("Enter")
    expect(_message(page, "user")).to_contain_text("first line\nsecond line")
    expect(_message(page, "assistant").locator(".markdown")).to_contain_text("word2")
    page.keyboard.press("Escape")

    expect(_message(page, "assistant").locator(".message-note")).to_have_text("Stopped")
    expect(page.locator("#send")).to_be_visible()
    shown = reply_text(page).split()
    assert 0 < len(shown) < SLOW_WORDS and shown == ALL_WORDS[: len(shown)]
    saved = api_json(page, f"/api/chats/{chat_id(page)}")["messages"]
    assert [message["status"] for message in saved] == ["complete", "stopped"]


def test_edit_and_regenerate_make_branches_that_switch_both_ways_and_stay_switched(page: Any) -> None:
    page.goto("/")
    send(page, "What is a tree?")
    wait_until_idle(page)
    first_reply = reply_text(page)

    # Edit the question: a second version of it, with its own reply.
    _message(page, "user").locator(".action-edit").click()
    page.locator(".edit-text").fill("What is a forest?")
    page.locator(".edit-text").press("Enter")
    wait_until_idle(page)
    expect(_message(page, "user").locator(".branch-position")).to_have_text("2/2")
    expect(_message(page, "user")).to_contain_text("What is a forest?")
    edited_reply = reply_text(page)
    assert edited_reply != first_reply

    # Regenerate that reply: a second version of the answer.
    _message(page, "assistant").locator(".action-regenerate").click()
    _message(page, "assistant").locator(".regenerate-same").click()
    wait_until_idle(page)
    expect(_message(page, "assistant").locator(".branch-position")).to_have_text("2/2")
    regenerated = reply_text(page)
    assert regenerated not in {first_reply, edited_reply}
    screenshot(page, "branches-desktop")

    # Back and forth between the two answers, then between the two questions.
    _message(page, "assistant").locator(".branch-prev").click()
    expect(_message(page, "assistant").locator(".branch-position")).to_have_text("1/2")
    assert reply_text(page) == edited_reply
    _message(page, "assistant").locator(".branch-next").click()
    assert reply_text(page) == regenerated
    _message(page, "user").locator(".branch-prev").click()
    expect(_message(page, "user").locator(".branch-position")).to_have_text("1/2")
    expect(_message(page, "user")).to_contain_text("What is a tree?")
    assert reply_text(page) == first_reply
    expect(_message(page, "assistant").locator(".branches")).to_have_count(0)

    # The switch was saved: a reload shows the same branch.
    page.wait_for_timeout(300)
    page.reload()
    expect(_message(page, "user")).to_contain_text("What is a tree?")
    expect(_message(page, "assistant").locator(".markdown")).to_contain_text(first_reply.split(".")[0] + ".")
    assert reply_text(page) == first_reply
    _message(page, "user").locator(".branch-next").click()
    expect(_message(page, "user")).to_contain_text("What is a forest?")
    assert reply_text(page) == regenerated


def test_fork_continues_from_a_reply_in_a_new_chat_and_votes_stick(page: Any) -> None:
    page.goto("/")
    send(page, "Fork me")
    wait_until_idle(page)
    original = chat_id(page)
    reply = _message(page, "assistant")

    reply.locator(".vote-up").click()
    expect(reply.locator(".vote-up")).to_have_attribute("aria-pressed", "true")
    page.reload()
    expect(_message(page, "assistant").locator(".vote-up")).to_have_attribute("aria-pressed", "true")

    _message(page, "assistant").locator(".action-fork").click()
    expect(page).not_to_have_url(f"/?chat={original}")
    page.wait_for_url("**/?chat=*")
    assert chat_id(page) != original
    expect(_message(page, "user")).to_contain_text("Fork me")
    send(page, "And then?")
    wait_until_idle(page)
    expect(page.locator("article.message")).to_have_count(4)
    assert len(api_json(page, f"/api/chats/{original}")["messages"]) == 2  # the original is unchanged


def test_a_reload_mid_stream_resumes_the_reply_without_duplicates(page: Any) -> None:
    page.goto("/")
    send(page, "[slow] keep going")
    expect(_message(page, "assistant").locator(".markdown")).to_contain_text("word5")
    page.reload()
    expect(page.locator("article.message.assistant.streaming")).to_have_count(1)
    wait_until_idle(page)
    assert reply_text(page).split() == ALL_WORDS


def test_a_dropped_connection_resumes_after_the_last_seq(page: Any) -> None:
    page.goto("/")
    send(page, "[slow] over a flaky network")
    expect(_message(page, "assistant").locator(".markdown")).to_contain_text("word3")
    page.evaluate("window.arbor.socket.drop()")
    wait_until_idle(page)
    assert reply_text(page).split() == ALL_WORDS


def test_a_second_tab_shows_the_same_stream_live(context: Any, console: Console) -> None:
    first = console.watch(context.new_page())
    first.goto("/")
    send(first, "Hello")
    wait_until_idle(first)
    second = console.watch(context.new_page())
    second.goto(f"/?chat={chat_id(first)}")
    expect(second.locator("article.message")).to_have_count(2)

    send(first, "[slow] now stream to both")
    expect(second.locator("article.message.assistant.streaming")).to_have_count(1)
    expect(second.locator("article.message.assistant").nth(-1).locator(".markdown")).to_contain_text("word2")
    wait_until_idle(first)
    wait_until_idle(second)
    assert reply_text(second).split() == ALL_WORDS == reply_text(first).split()


def test_a_hostile_reply_stays_inert(page: Any) -> None:
    page.goto("/")
    send(page, "[hostile] show me")
    wait_until_idle(page)
    reply = _message(page, "assistant").locator(".markdown")
    expect(reply).to_contain_text("<script>window.__pwned = 'script'</script>")  # shown as text
    for link in reply.locator("a").all():
        assert link.get_attribute("rel") == "noopener noreferrer"
        assert not (link.get_attribute("href") or "").lower().startswith("javascript:")
    assert reply.locator("script, iframe, img, [onerror]").count() == 0
    expect(reply.locator("a.remote-image")).to_have_text("Image: remote (not loaded)")
    reply.get_by_text("click me").click()  # a link whose script was removed does nothing
    page.wait_for_timeout(300)
    assert page.evaluate("window.__pwned") is None


def test_reasoning_is_shown_collapsed_above_the_answer(page: Any) -> None:
    page.goto("/")
    send(page, "[think] Should I?")
    wait_until_idle(page)
    reasoning = _message(page, "assistant").locator("details.reasoning")
    expect(reasoning).not_to_have_attribute("open", "")
    expect(reasoning.locator(".reasoning-text")).to_be_hidden()
    reasoning.locator("summary").click()
    expect(reasoning.locator(".reasoning-text")).to_have_text("Weighing the options first. ")
    expect(_message(page, "assistant").locator(".markdown strong")).to_have_text("yes")
