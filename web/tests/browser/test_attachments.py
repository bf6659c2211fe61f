"""Attaching an image in a real browser: picked with the attach button, shown as a thumbnail
that can be removed, uploaded, sent with the message to a model that takes images, seen by the
model in OpenAI's format, and shown in the user's message from the owner-only URL."""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Any

from playwright.sync_api import expect

from web.tests.browser.conftest import KeywordOpenAI, api_json, chat_id, screenshot, send, wait_until_idle

WIDTH, HEIGHT = 96, 64


def _gradient_png() -> bytes:
    """A 96x64 PNG: a gradient, so the thumbnails look like a picture."""

    def row(y: int) -> bytes:  # a filter byte (none), then the pixels
        return b"\x00" + b"".join(bytes((x * 255 // WIDTH, y * 255 // HEIGHT, 160)) for x in range(WIDTH))

    rows = b"".join(row(y) for y in range(HEIGHT))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", WIDTH, HEIGHT, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


PNG = _gradient_png()


def _picture(name: str) -> dict[str, Any]:
    return {"name": name, "mimeType": "image/png", "buffer": PNG}


def _image_urls_sent(server: KeywordOpenAI, text: str) -> list[str]:
    """The image URLs of the model calls whose last user message says `text`."""
    urls = []
    for request in server.requests:
        messages = request.body.get("messages", []) if isinstance(request.body, dict) else []
        content = messages[-1].get("content") if messages else None
        if isinstance(content, list) and any(part.get("text") == text for part in content):
            urls += [part["image_url"]["url"] for part in content if part.get("type") == "image_url"]
    return urls


def test_an_attached_image_is_sent_to_the_model_and_shown_in_the_message(page: Any, fake_openai: KeywordOpenAI) -> None:
    page.goto("/")
    expect(page.locator("#model option")).not_to_have_count(0)
    expect(page.locator("#attach")).to_be_visible()  # the default model takes images

    # Two pictures picked, one removed again before sending.
    page.locator("#attach-input").set_input_files([_picture("first.png"), _picture("second.png")])
    expect(page.locator("#attachments .attachment[data-uploaded=true]")).to_have_count(2)
    page.get_by_role("button", name="Remove image 1").click()
    expect(page.locator("#attachments .attachment")).to_have_count(1)
    screenshot(page, "attachment-composer-desktop")

    question = "What colours are in this picture?"
    send(page, question)
    wait_until_idle(page)
    expect(page.locator("#attachments")).to_be_hidden()

    # The model was sent the image as OpenAI's data URL, next to the text.
    assert _image_urls_sent(fake_openai, question) == [f"data:image/png;base64,{base64.b64encode(PNG).decode()}"]

    # The message shows it, loaded from the owner-only URL (also after a reload).
    saved = api_json(page, f"/api/chats/{chat_id(page)}")["messages"][0]["content"]
    upload_id = saved[0]["upload_id"]
    assert saved == [
        {"type": "image", "upload_id": upload_id, "media_type": "image/png"},
        {"type": "text", "text": question},
    ]
    page.reload()
    image = page.locator("article.message.user img.message-image")
    expect(image).to_have_count(1)
    expect(image).to_have_attribute("src", f"/api/uploads/{upload_id}")
    page.wait_for_function("() => document.querySelector('img.message-image')?.naturalWidth === 96")
    image.scroll_into_view_if_needed()
    screenshot(page, "attachment-message-desktop")

    # Another visitor (a new guest) cannot load it.
    other = page.context.browser.new_context(base_url=page.url.split("/?")[0])
    try:
        stranger = other.new_page()
        stranger.goto("/")
        status = stranger.evaluate("url => fetch(url).then(r => r.status)", f"/api/uploads/{upload_id}")
        assert status == 404
    finally:
        other.close()
