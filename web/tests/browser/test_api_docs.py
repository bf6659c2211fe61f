"""The API's docs page in a real browser: served by the app (no CDN), drawn under the site's
Content-Security-Policy (the `console` fixture fails the test on any refusal or script error)."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect


def test_the_api_docs_page_lists_the_endpoints(page: Any) -> None:
    page.goto("/api/docs")
    expect(page.locator(".opblock-summary-path", has_text="/api/me").first).to_be_visible()
    expect(page.locator(".opblock-summary-method", has_text="PATCH")).to_have_count(1)
