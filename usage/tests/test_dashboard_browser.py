"""The dashboard in a real browser (Playwright driving Debian's Chromium against pytest-django's
live server): its charts render from usage rows, and the page is saved as the screenshot
var/screenshots/admin-dashboard.png (git-ignored; docs/screenshots/ keeps the curated copy)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from accounts.models import User
from accounts.tests.factories import DEFAULT_PASSWORD, GuestFactory, UserFactory
from providers.breaker import BreakerPolicy, breaker_record_failure
from providers.catalog import catalog_seed
from providers.models import Model
from usage.services.rollups import usage_rollup
from usage.tests.factories import usage_row

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
SCREENSHOT = Path(settings.BASE_DIR) / "var" / "screenshots" / "admin-dashboard.png"

# `make test` installs Chromium (the Makefile's `chromium` target): no skip when it is missing.
pytestmark = pytest.mark.django_db(transaction=True)

# (model, provider, share of the traffic, typical time to first token in ms)
TRAFFIC = [
    ("openai:gpt-5-mini", "openai", 0.35, 600),
    ("anthropic:claude-sonnet-4-5", "anthropic", 0.25, 900),
    ("google:gemini-2.5-flash", "google", 0.2, 450),
    ("openai:gpt-4.1-mini", "openai", 0.12, 380),
    ("anthropic:claude-haiku-4-5", "anthropic", 0.08, 500),
]


def _a_month_of_usage() -> None:
    """About 1,500 generations over 30 days from a dozen people, priced at the catalog's prices."""
    catalog_seed()
    prices = {model.model_id: model for model in Model.objects.all()}
    people = [UserFactory() for _ in range(8)] + [GuestFactory() for _ in range(4)]
    chance = random.Random(7)  # the same picture every run
    now = timezone.now()
    for day in range(30):
        for _ in range(20 + day % 7 * 6 + (30 - day)):
            model_id, provider, _, ttft = chance.choices(TRAFFIC, weights=[share for *_, share, _ in TRAFFIC])[0]
            tokens_in, tokens_out = chance.randint(400, 6_000), chance.randint(80, 1_500)
            model = prices[model_id]
            usage_row(
                at=now - timedelta(days=day, minutes=chance.randint(0, 600)),
                user=chance.choice(people),
                kind=chance.choices(["chat", "title", "artifact"], weights=[10, 2, 1])[0],
                model_id=model_id,
                provider=provider,
                input_tokens=tokens_in,
                output_tokens=tokens_out,
                cost=(tokens_in * model.input_price_per_mtok + tokens_out * model.output_price_per_mtok)
                / Decimal(1_000_000),
                ttft_ms=int(chance.lognormvariate(0, 0.4) * ttft),
                outcome="provider_unavailable" if chance.random() < 0.03 else "complete",
            )
        if day:
            usage_rollup(day=timezone.localdate(now - timedelta(days=day)))
    breaker_record_failure("google", BreakerPolicy(threshold=1, open_seconds=600))


@pytest.fixture
def session_cookie(live_server: Any) -> str:
    """A month of usage and a superuser's session: made before the browser starts (Playwright's
    sync API runs an event loop in this thread, where Django refuses database calls)."""
    _a_month_of_usage()
    client = Client()
    client.force_login(User.objects.create_superuser("root@example.com", DEFAULT_PASSWORD))
    return client.cookies["sessionid"].value


@pytest.fixture
def chromium(session_cookie: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def test_the_dashboard_draws_its_charts_in_a_browser(live_server: Any, session_cookie: str, chromium: Any) -> None:
    context = chromium.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.add_cookies([{"name": "sessionid", "value": session_cookie, "url": live_server.url}])
    page = context.new_page()

    page.goto("/admin/usage/dashboard/")

    charts = page.locator("svg.usage-chart")
    assert charts.count() == 7
    assert charts.first.bounding_box()["width"] > 300
    assert page.locator("rect >> nth=10").is_visible()
    assert page.get_by_text("claude-sonnet-4-5").first.is_visible()
    assert page.locator(".usage-breaker-open").inner_text() == "open"
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    context.close()
