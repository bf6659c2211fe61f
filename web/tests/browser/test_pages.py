"""The screens around the chat in a real browser: guest → sign-up, settings with BYOK, the
share page, the chat list, and the phone layout."""

from __future__ import annotations

import re
import uuid
from typing import Any

from playwright.sync_api import expect

from web.tests.browser.conftest import (
    PHONE,
    Console,
    KeywordOpenAI,
    chat_id,
    reply_text,
    screenshot,
    send,
    wait_until_idle,
)

PASSWORD = "a-long-browser-test-password"


def _sign_up(page: Any) -> str:
    email = f"ui-{uuid.uuid4().hex[:10]}@example.com"
    page.locator("#id_email").fill(email)
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    return email


def test_a_guest_who_signs_up_keeps_the_chat(page: Any) -> None:
    page.goto("/")
    send(page, "Remember this guest chat")
    wait_until_idle(page)
    chat = chat_id(page)

    page.locator("#guest-signup").click()
    expect(page).to_have_url(re.compile(r"/accounts/signup/\?next="))
    _sign_up(page)

    page.wait_for_url(f"**/?chat={chat}")
    expect(page.locator("#guest-banner")).to_have_count(0)
    expect(page.locator("article.message.user")).to_contain_text("Remember this guest chat")
    expect(page.locator(f".chat-link[data-id='{chat}']")).to_be_visible()


def test_byok_an_endpoint_added_in_settings_serves_a_model_picked_in_the_chat(
    page: Any, fake_openai: KeywordOpenAI
) -> None:
    page.goto("/accounts/signup/")
    _sign_up(page)
    page.goto("/settings/")
    expect(page.locator(".usage-messages")).to_contain_text("available now")

    secret = f"sk-mine-{uuid.uuid4().hex}"
    page.locator("#endpoint-name").fill("Home server")
    page.locator("#endpoint-url").fill(f"{fake_openai.url}/v1")
    page.locator("#endpoint-key").fill(secret)
    page.get_by_role("button", name="Add endpoint").click()
    endpoint = page.locator("#endpoints li").first
    expect(endpoint).to_contain_text("Home server")
    masked = endpoint.locator("code.masked").inner_text()
    assert masked.endswith(secret[-4:]) and secret not in page.content()
    endpoint.get_by_role("button", name="Test").click()
    expect(page.locator("#endpoints-status")).to_contain_text("It works: 3 model(s) available")

    page.locator("#model-source").select_option(label="Home server (endpoint)")
    page.locator("#model-id").fill("gpt-4o-mini")
    page.locator("#model-slug").fill("home-mini")
    page.locator("#model-name").fill("Home mini")
    page.get_by_role("button", name="Add model").click()
    expect(page.locator("#byok-models")).to_contain_text("Home mini (byok:home-mini → gpt-4o-mini)")
    page.locator("#display-name").fill("Byok Tester")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#profile-status")).to_have_text("Saved.")
    screenshot(page, "settings-desktop", full_page=True)

    page.goto("/")
    page.locator("#model").select_option("byok:home-mini")
    expect(page.locator("#model-badges")).to_contain_text("your key")
    send(page, "Hello through my own endpoint")
    wait_until_idle(page)
    assert reply_text(page).startswith("Reply")
    used = [
        request
        for request in fake_openai.requests
        if {name.lower(): value for name, value in request.headers.items()}.get("authorization") == f"Bearer {secret}"
        and "Hello through my own endpoint" in str(request.body)
    ]
    assert len(used) == 1 and used[0].body["model"] == "gpt-4o-mini"


def test_a_shared_chat_opens_read_only_for_anyone_and_continues_in_their_account(
    page: Any, chromium: Any, arbor: str, console: Console
) -> None:
    page.goto("/")
    send(page, "Share this <b>bold</b> question")
    wait_until_idle(page)
    page.locator("#share-chat").click()
    expect(page.locator("#share-url")).to_have_value(re.compile(r"/share/"))
    url = page.locator("#share-url").input_value()
    assert re.fullmatch(rf"{re.escape(arbor)}/share/[\w-]+", url)
    page.locator("#share-close").click()

    stranger = chromium.new_context(viewport={"width": 1000, "height": 700})
    try:
        shared = console.watch(stranger.new_page())
        shared.goto(url)
        expect(shared.locator(".shared-message").first).to_contain_text("Share this <b>bold</b> question")
        shared.get_by_role("button", name="Continue in my account").click()
        shared.wait_for_url("**/?chat=*")
        expect(shared.locator("article.message.user")).to_contain_text("Share this <b>bold</b> question")
        assert chat_id(shared) != chat_id(page)
    finally:
        stranger.close()


def test_the_chat_list_renames_searches_and_deletes_with_undo(page: Any) -> None:
    page.goto("/")
    for text in ("Alpha question", "Beta question"):
        page.locator("#new-chat").click()
        send(page, text)
        wait_until_idle(page)
    items = page.locator(".chat-item")
    expect(items).to_have_count(2)

    first = items.filter(has_text="About Alpha question")
    first.locator("summary").click()
    first.get_by_role("menuitem", name="Rename").click()
    page.locator(".chat-item input.rename").fill("Renamed alpha")
    page.locator(".chat-item input.rename").press("Enter")
    expect(page.locator(".chat-link", has_text="Renamed alpha")).to_be_visible()

    page.locator("#chat-search").fill("Beta")
    expect(items).to_have_count(1)
    page.locator("#chat-search").fill("")
    expect(items).to_have_count(2)

    renamed = items.filter(has_text="Renamed alpha")
    renamed.locator("summary").click()
    renamed.get_by_role("menuitem", name="Delete").click()
    expect(items).to_have_count(1)
    page.locator(".toast").get_by_role("button", name="Undo").click()
    expect(items).to_have_count(2)

    page.reload()
    expect(page.locator(".chat-item")).to_have_count(2)  # nothing was deleted


def test_on_a_phone_the_chat_list_slides_over_the_conversation(context: Any, console: Console) -> None:
    page = console.watch(context.new_page())
    page.set_viewport_size(PHONE)
    page.emulate_media(reduced_motion="reduce")  # no slide animation under the screenshot
    page.goto("/")
    expect(page.locator("#sidebar")).not_to_be_in_viewport()
    send(page, "What is a tree?")
    wait_until_idle(page)
    page.locator("article.message.assistant .action-regenerate").click()
    page.locator("article.message.assistant .regenerate-same").click()
    wait_until_idle(page)
    expect(page.locator("article.message.assistant .branch-position")).to_have_text("2/2")
    screenshot(page, "chat-phone")

    page.locator("#open-sidebar").click()
    expect(page.locator("#sidebar")).to_be_in_viewport()
    expect(page.locator("#open-sidebar")).to_have_attribute("aria-expanded", "true")
    screenshot(page, "sidebar-phone")
    page.keyboard.press("Escape")
    expect(page.locator("#sidebar")).not_to_be_in_viewport()


def test_a_rename_survives_the_chat_list_being_redrawn_under_it(page: Any) -> None:
    page.goto("/")
    send(page, "Gamma question")
    wait_until_idle(page)
    item = page.locator(".chat-item").first
    item.locator("summary").click()
    item.get_by_role("menuitem", name="Rename").click()
    rename = page.locator(".chat-item input.rename")
    expect(rename).to_be_focused()
    rename.fill("Half")

    # What a title arriving or another tab's chat does: the list is read again and redrawn.
    page.evaluate("document.querySelector('input.rename').dataset.before = 'redraw'")
    page.evaluate("document.getElementById('chat-search').dispatchEvent(new Event('input'))")
    expect(page.locator("input.rename[data-before]")).to_have_count(0)
    expect(rename).to_be_focused()
    expect(rename).to_have_value("Half")
    rename.press("End")
    rename.press_sequentially(" renamed")
    rename.press("Enter")
    expect(page.locator(".chat-link", has_text="Half renamed")).to_be_visible()


def token_made_in_settings(page: Any, *, name: str, scope: str) -> str:
    """A new account's personal access token, made as a person makes one in settings."""
    page.goto("/accounts/signup/")
    _sign_up(page)
    page.goto("/settings/")
    page.locator("#token-name").fill(name)
    page.locator("#token-scope").select_option(scope)
    page.get_by_role("button", name="Make token").click()
    expect(page.locator("#token-made")).to_be_visible()
    return page.locator("#token-secret").input_value()


def test_a_token_made_in_settings_is_shown_once_drives_the_api_and_stops_when_revoked(page: Any) -> None:
    secret = token_made_in_settings(page, name="my script", scope="read")
    assert secret.startswith("arb_")
    expect(page.locator("#tokens")).to_contain_text("my script · read · expires")

    # A program with the token, and no cookie of the page's.
    programs = page.context.browser.new_context(base_url=page.url.split("/settings/")[0])
    me = programs.request.get("/api/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.ok and me.json()["is_guest"] is False

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke the token my script").click()
    expect(page.locator("#tokens")).to_contain_text("No tokens yet.")
    assert programs.request.get("/api/me", headers={"Authorization": f"Bearer {secret}"}).status == 401
    programs.close()
    page.reload()
    expect(page.locator("#token-made")).to_be_hidden()  # the secret is never shown again
