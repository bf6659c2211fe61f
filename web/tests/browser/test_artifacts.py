"""The artifacts panel in a real browser: a document the model creates with its tool streams into
the panel and is saved as version 1; the user edits it (version 2), compares the versions,
restores the first (version 3) and downloads it; a reviewer running in the served Celery worker
sends suggestions that are accepted and rejected; a hostile document and title stay inert; code
is highlighted, a sheet drawn as a table, a picture shown; on a phone the panel covers the screen.

The fake OpenAI server answers by keyword (see `conftest.KeywordOpenAI`); this module adds the
document keywords: the reply's first model call asks for the tool, the document's writer (its
system prompt says so) streams the content, the call after the tool's result says it is done,
and the reviewer (its own system prompt) answers JSON Lines."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from providers.testing.base import Behaviour, Call, Count, End, Reply, Say, reply
from web.tests.browser.conftest import (
    PHONE,
    KeywordOpenAI,
    api_json,
    chat_id,
    screenshot,
    send,
    wait_until_idle,
)

POEM = "# Rivers\n\nThe river runs,\nthe river bends,\nand where it goes\nthe valley ends.\n"
POEM_PIECES = (
    "# Rivers\n\n",
    "The river runs,\n",
    "the river ",
    "bends,\n",
    "and where ",
    "it goes\n",
    "the valley ends.\n",
)
CODE = "def greet(name: str) -> str:\n    return f'Hello, {name}!'\n"
HOSTILE_TITLE = "<img src=x onerror=\"window.__pwned='title'\">Notes"
HOSTILE_DOC = (
    "# Notes\n\n<script>window.__pwned = 'script'</script>\n\n"
    "<img src=x onerror=\"window.__pwned='img'\">\n\n"
    "[click](javascript:window.__pwned='link') <iframe src=\"javascript:window.__pwned='iframe'\"></iframe>\n"
)
HOSTILE_SHEET = (
    "name,note\nAda,\"<script>window.__pwned='cell'</script>\"\nBob,<img src=x onerror=\"window.__pwned='cellimg'\">\n"
)
REVIEW = (
    json.dumps({"original": "runs", "suggested": "flows", "description": "A livelier verb."})
    + "\n"
    + json.dumps({"original": "bends", "suggested": "winds", "description": "Rhymes better."})
    + "\n"
)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _tool(*calls: Call) -> Reply:
    return reply(*calls, Count(20, 10), End("tool_calls"))


def _create(call_id: str, **arguments: str) -> Call:
    return Call(call_id, "create_document", json.dumps(arguments))


def _writer(system: str, last_user: str) -> Reply:
    """The document's content, as its writer (the reply's model, told so by its system prompt)."""
    if "the sheet titled" in system:
        return reply(Say(HOSTILE_SHEET))
    if "[dochostile]" in last_user:
        return reply(Say(HOSTILE_DOC))
    if "[doccode]" in last_user:
        return reply(Say("```python\n"), Say(CODE), Say("```\n"))  # the fence is removed on saving
    # Slow enough to be seen while it is written.
    return Reply(events=(*(Say(piece) for piece in POEM_PIECES), Count(30, 12), End()), delay=0.3)


# The reply's first model call, by keyword: the tool calls it makes.
TOOL_CALLS = {
    "[doctext]": (_create("call_1", title="Rivers", kind="text"),),
    "[doccode]": (_create("call_1", title="Greeter", kind="code", language="python"),),
    "[docimage]": (_create("call_1", title="Red dot", kind="image", description="A single red dot"),),
    "[dochostile]": (
        _create("call_1", title=HOSTILE_TITLE, kind="text"),
        _create("call_2", title="People", kind="sheet"),
    ),
}


def _document_behaviour(body: Any) -> Behaviour | None:
    """What to answer for the document keywords, or None for the module's usual keywords."""
    messages = body.get("messages", []) if isinstance(body, dict) else []
    system = " ".join(str(m.get("content")) for m in messages if m.get("role") == "system")
    users = [m for m in messages if m.get("role") == "user"]
    last_user = str(users[-1].get("content")) if users else ""
    keyword = next((word for word in (*TOOL_CALLS, "[suggest]") if word in last_user), None)
    if last_user.rstrip().endswith("Title:"):
        answer = None  # a chat title: conftest's answer
    elif system.startswith("You review a document"):
        answer = reply(Say(REVIEW), Count(40, 30))
    elif system.startswith("You write the content of a document"):
        answer = _writer(system, last_user)
    elif keyword is None:
        answer = None
    elif messages[-1].get("role") == "tool":  # the call after the tools' results
        answer = reply(Say("Done: the document is beside the chat."))
    elif keyword == "[suggest]":
        found = UUID.search(last_user)
        answer = _tool(Call("call_1", "request_suggestions", json.dumps({"id": found.group(0) if found else ""})))
    else:
        answer = _tool(*TOOL_CALLS[keyword])
    return answer


@pytest.fixture
def documents_fake(fake_openai: KeywordOpenAI) -> Iterator[KeywordOpenAI]:
    original = fake_openai.next_behaviour

    def next_behaviour() -> Behaviour:
        body = fake_openai.requests[-1].body if fake_openai.requests else None
        return _document_behaviour(body) or original()

    fake_openai.next_behaviour = next_behaviour  # type: ignore[method-assign]
    try:
        yield fake_openai
    finally:
        del fake_openai.next_behaviour


def _document(page: Any, document_id: str) -> Any:
    return api_json(page, f"/api/documents/{document_id}")


def _version_content(page: Any, document_id: str, number: int) -> str:
    return str(api_json(page, f"/api/documents/{document_id}/versions/{number}")["content"])


@pytest.mark.usefixtures("documents_fake")
def test_a_document_streams_in_then_is_edited_diffed_restored_and_downloaded(page: Any) -> None:
    page.goto("/")
    send(page, "[doctext] Write me a poem about rivers")

    panel = page.locator("#artifact-panel")
    body = page.locator("#artifact-body")
    expect(panel).to_be_visible()
    expect(body).to_contain_text("The river runs")
    # Seen while it is still being written (the writer sends a piece every 0.3 s).
    assert panel.get_attribute("data-state") == "writing"
    assert "the valley ends" not in body.inner_text()
    expect(page.locator("#artifact-status")).to_have_text("Writing…")
    card = page.locator("article.message.assistant .artifact-card")
    expect(card).to_contain_text("Rivers")

    wait_until_idle(page)
    expect(panel).to_have_attribute("data-state", "ready")
    expect(page.locator(".artifact-version")).to_have_text("Version 1 of 1")
    expect(page.locator("#artifact-title")).to_have_text("Rivers")
    expect(body.locator("h1")).to_have_text("Rivers")
    expect(card).to_contain_text("Text · version 1")
    expect(page.locator("article.message.assistant .tool-call")).to_have_count(0)  # the card stands for the call
    expect(page.locator("article.message.assistant .markdown").last).to_have_text(
        "Done: the document is beside the chat."
    )
    document_id = panel.get_attribute("data-document-id")
    assert document_id and _version_content(page, document_id, 1) == POEM
    expect(page.locator(".artifact-changes")).to_be_disabled()  # nothing to compare yet

    # Edit and save (Ctrl+S) as version 2.
    page.locator(".artifact-edit").click()
    editor = page.locator("textarea.artifact-editor")
    expect(editor).to_be_focused()
    expect(editor).to_have_value(POEM)
    revised = POEM.replace("runs", "sings")
    editor.fill(revised)
    editor.press("Control+s")
    expect(page.locator(".artifact-version")).to_have_text("Version 2 of 2")
    expect(body).to_contain_text("The river sings")
    expect(page.locator("#artifact-status")).to_have_text("Saved as version 2.")
    saved = _document(page, document_id)
    assert [(v["number"], v["author"]) for v in saved["versions"]] == [(1, "model"), (2, "user")]
    assert saved["latest"]["content"] == revised

    # The diff against version 1: words, then lines.
    page.locator(".artifact-changes").click()
    expect(page.locator(".diff-words del.diff-del")).to_have_text("runs")
    expect(page.locator(".diff-words ins.diff-ins")).to_have_text("sings")
    expect(page.locator(".artifact-diff-head")).to_contain_text("Version 2 compared with")
    expect(page.locator("#chat-title")).to_have_text("About Write me a poem")
    screenshot(page, "artifact-diff-desktop")
    page.locator(".diff-mode-lines").click()
    expect(page.locator(".diff-line.remove")).to_have_text("-The river runs,")
    expect(page.locator(".diff-line.add")).to_have_text("+The river sings,")
    expect(page.locator(".diff-mode-lines")).to_be_focused()

    # Back to version 1 by keyboard, and restore it as version 3.
    page.locator(".artifact-prev").focus()
    page.keyboard.press("Enter")
    expect(page.locator(".artifact-version")).to_have_text("Version 1 of 2")
    expect(body).to_contain_text("The river runs")
    expect(panel).to_have_attribute("data-mode", "view")
    page.locator(".artifact-restore").click()
    expect(page.locator(".artifact-version")).to_have_text("Version 3 of 3")
    expect(page.locator("#artifact-status")).to_have_text("Version 1 restored as version 3.")
    expect(page.locator(".artifact-author")).to_have_text("restored from version 1")
    restored = _document(page, document_id)
    assert restored["versions"][2]["restored_from"] == 1 and restored["latest"]["content"] == POEM

    # Download the latest.
    with page.expect_download() as download_info:
        page.locator(".artifact-download").click()
    download = download_info.value
    assert download.suggested_filename == "rivers.md"
    assert Path(download.path()).read_text(encoding="utf-8") == POEM

    # Escape closes the panel and gives the keyboard back to the card, which opens it again.
    expect(page.locator(".artifact-download")).to_be_focused()
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(card).to_be_focused()
    page.keyboard.press("Enter")
    expect(panel).to_be_visible()
    expect(page.locator(".artifact-version")).to_have_text("Version 1 of 3")  # the card's version

    # After a reload the saved reply still has its card, and the header lists the document.
    page.reload()
    expect(page.locator("#artifact-panel")).to_be_hidden()
    expect(page.locator("article.message.assistant .artifact-card")).to_contain_text("Rivers")
    page.locator("#open-documents").click()
    expect(page.locator(".artifact-version")).to_have_text("Version 3 of 3")


@pytest.mark.usefixtures("documents_fake")
def test_suggestions_from_the_worker_are_shown_inline_and_accepted_or_rejected(page: Any) -> None:
    page.goto("/")
    send(page, "[doctext] Write me a poem")
    wait_until_idle(page)
    expect(page.locator(".artifact-version")).to_have_text("Version 1 of 1")
    # The chat's title is asked of the fake by the worker: let it finish before the next turn.
    expect(page.locator("#chat-title")).to_have_text("About Write me a poem")
    document_id = page.locator("#artifact-panel").get_attribute("data-document-id")

    send(page, f"[suggest] Review the document {document_id}")
    wait_until_idle(page)
    review_card = page.locator("article.message.assistant .artifact-card").last
    expect(review_card.locator(".artifact-card-title")).to_have_text("Rivers")
    expect(review_card).to_contain_text("Review requested")
    items = page.locator(".suggestion-item")
    expect(items).to_have_count(2, timeout=30_000)
    expect(page.locator("#artifact-status")).to_have_text("2 suggestions to review.")
    expect(items.nth(0).locator("del")).to_have_text("runs")
    expect(items.nth(0).locator("ins")).to_have_text("flows")
    expect(items.nth(0)).to_contain_text("A livelier verb.")
    expect(page.locator("#artifact-body mark.suggestion-mark")).to_have_text(["runs", "bends"])
    screenshot(page, "artifact-suggestions-desktop")

    items.nth(0).locator(".suggestion-accept").click()
    expect(page.locator(".artifact-version")).to_have_text("Version 2 of 2")
    expect(page.locator("#artifact-body")).to_contain_text("The river flows,")
    expect(items).to_have_count(1)
    expect(items.nth(0).locator(".suggestion-accept")).to_be_focused()
    page.keyboard.press("Tab")
    expect(items.nth(0).locator(".suggestion-reject")).to_be_focused()
    page.keyboard.press("Enter")
    expect(items).to_have_count(0)
    expect(page.locator("#artifact-suggestions")).to_be_hidden()

    listed = api_json(page, f"/api/documents/{document_id}/suggestions")["suggestions"]
    states = {suggestion["suggested"]: suggestion["state"] for suggestion in listed}
    assert states == {"flows": "accepted", "winds": "rejected"}
    assert _version_content(page, document_id, 2) == POEM.replace("runs", "flows")


@pytest.mark.usefixtures("documents_fake")
def test_a_hostile_document_title_and_sheet_stay_inert(page: Any) -> None:
    page.goto("/")
    send(page, "[dochostile] Take some notes")
    wait_until_idle(page)
    cards = page.locator("article.message.assistant .artifact-card")
    expect(cards).to_have_count(2)
    expect(cards.nth(0).locator(".artifact-card-title")).to_have_text(HOSTILE_TITLE)

    # The sheet (written last, so shown): every cell as text.
    panel = page.locator("#artifact-panel")
    expect(panel.locator("#artifact-title")).to_have_text("People")
    expect(panel.locator("table.sheet th")).to_have_text(["name", "note"])
    expect(panel.locator("table.sheet td")).to_have_text(
        ["Ada", "<script>window.__pwned='cell'</script>", "Bob", "<img src=x onerror=\"window.__pwned='cellimg'\">"]
    )

    cards.nth(0).click()
    expect(panel.locator("#artifact-title")).to_have_text(HOSTILE_TITLE)
    body = panel.locator("#artifact-body")
    expect(body.locator("h1")).to_have_text("Notes")
    expect(body).to_contain_text("<script>window.__pwned = 'script'</script>")
    page.locator(".artifact-edit").click()
    expect(page.locator("textarea.artifact-editor")).to_have_value(HOSTILE_DOC)
    page.keyboard.press("Escape")
    expect(panel).to_have_attribute("data-mode", "view")

    for tag in ("script", "img", "iframe"):
        assert panel.locator(tag).count() == 0, tag
        assert page.locator(f"article.message {tag}").count() == 0, tag
    assert panel.locator("a[href^='javascript']").count() == 0
    page.wait_for_timeout(300)  # an image's onerror would have fired by now
    assert page.evaluate("window.__pwned") is None


@pytest.mark.usefixtures("documents_fake")
def test_a_picture_is_shown_from_the_server(page: Any) -> None:
    page.goto("/")
    send(page, "[docimage] Draw a red dot")
    wait_until_idle(page)
    image = page.locator("#artifact-body .artifact-image img")
    expect(image).to_have_attribute("alt", "A single red dot")
    expect(image).to_have_attribute("src", re.compile(r"^/api/documents/[0-9a-f-]{36}/download\?version=1$"))
    page.wait_for_function("() => document.querySelector('#artifact-body img')?.naturalWidth === 1")
    expect(page.locator(".artifact-edit")).to_have_count(0)  # a picture is not edited as text


@pytest.mark.usefixtures("documents_fake")
def test_on_a_phone_the_panel_takes_the_whole_screen_and_closes_back_to_the_chat(context: Any, console: Any) -> None:
    page = console.watch(context.new_page())
    page.set_viewport_size(PHONE)
    page.goto("/")
    send(page, "[doccode] A greeting function")
    wait_until_idle(page)

    panel = page.locator("#artifact-panel")
    expect(panel).to_be_visible()
    box = panel.bounding_box()
    assert box == {"x": 0, "y": 0, "width": PHONE["width"], "height": PHONE["height"]}
    expect(panel.locator("#artifact-meta")).to_have_text("Code · python")
    expect(panel.locator("pre.artifact-code code.hljs .hljs-keyword").first).to_have_text("def")
    assert _version_content(page, panel.get_attribute("data-document-id") or "", 1) == CODE  # fence removed
    screenshot(page, "artifact-phone")
    expect(page.locator("#main")).to_have_attribute("inert", "")  # Tab stays in the panel
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('#artifact-panel') !== null")

    page.locator("#artifact-close").click()
    expect(panel).to_be_hidden()
    expect(page.locator("#main")).not_to_have_attribute("inert", "")
    expect(page.locator("#prompt")).to_be_visible()
    card = page.locator("article.message.assistant .artifact-card")
    expect(card).to_be_focused()
    card.click()
    expect(panel).to_be_visible()
    assert chat_id(page)
