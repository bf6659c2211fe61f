"""Browser tests: Playwright driving Debian's Chromium against the real product, `manage.py
serve` (daphne, a Celery worker, PostgreSQL, Redis) with OpenAI pointed at a fake server.

One server for the whole module run (starting it takes seconds); each test opens fresh browser
contexts, so every test is a new visitor (a new guest) unless it signs someone up."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.conf import settings

from config.redis_urls import redis_url_with_db
from config.tests.test_serve import (
    BASE_DIR,
    SERVE_REDIS_DB,
    _free_port,
    _read_until_ready,
    _recreate_database,
    _serve,
    _stop_with_ctrl_c,
)
from conftest import database_url_named, process_environment
from providers.testing.base import Behaviour, Count, End, Reply, Say, Think, reply
from providers.testing.openai_server import OpenAIServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Every run saves its screenshots here (git-ignored under var/): docs/screenshots/ holds the curated
# copies, refreshed by hand from this folder, so a test run never rewrites a tracked file.
SCREENSHOTS = BASE_DIR / "var" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
BROWSER_DATABASE = f"arbor_browser_test_{settings.TEST_RUN}"

# What the fake model answers, chosen by a keyword in the conversation's last user message.
SLOW_WORDS = 120
MARKDOWN_REPLY = (
    "Here is a **plan**, with a table and some code:\n\n"
    "| Day | Where |\n| --- | --- |\n| 1 | Alfama |\n| 2 | Belém |\n\n"
    "```python\ndef greet(name: str) -> str:\n    return f'Hello, {name}!'\n```\n\nEnjoy the trip."
)
HOSTILE_REPLY = (
    "Look: <script>window.__pwned = 'script'</script>\n\n"
    "<img src=x onerror=\"window.__pwned='img'\">\n\n"
    "![remote](https://example.invalid/tracker.png)\n\n"
    "[click me](javascript:window.__pwned='link') and <a href=\"javascript:window.__pwned='a'\">this</a>\n\n"
    "<iframe src=\"javascript:window.__pwned='iframe'\"></iframe> the end."
)


def slow_reply(words: int = SLOW_WORDS, rate: float = 20) -> Reply:
    events = tuple(Say(f"word{index} ") for index in range(words))
    return Reply(events=(*events, Count(20, words), End()), delay=1 / rate)


def _last_user_text(body: Any) -> str:
    messages = body.get("messages", []) if isinstance(body, dict) else []
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
            return str(content or "")
    return ""


class KeywordOpenAI(OpenAIServer):
    """The OpenAI fake, answering by keyword instead of a queue (titles and replies interleave)."""

    def next_behaviour(self) -> Behaviour:
        text = _last_user_text(self.requests[-1].body if self.requests else None)
        if text.rstrip().endswith("Title:"):  # chat.services.titles asks for a title
            question = text.removeprefix("User: ").split("\n", 1)[0]
            words = re.sub(r"\[\w+\]", "", question).split()[:4]
            return reply(Say("About " + " ".join(words)))
        if "[slow]" in text:
            return slow_reply()
        if "[hostile]" in text:
            return reply(Say(HOSTILE_REPLY))
        if "[think]" in text:
            return reply(Think("Weighing the options first. "), Say("Thought it through: **yes**."))
        counter = sum(1 for request in self.requests if request.path.endswith("/chat/completions"))
        return reply(Say(f"Reply {counter}. "), Say(MARKDOWN_REPLY))


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[KeywordOpenAI]:
    with KeywordOpenAI() as server:
        yield server  # type: ignore[misc]


@pytest.fixture(scope="session")
def arbor(tmp_path_factory: pytest.TempPathFactory, fake_openai: KeywordOpenAI) -> Iterator[str]:
    """The served product's base URL: a fresh database, its own Redis database, the fake OpenAI
    as the platform's OpenAI, and private endpoint URLs allowed (the fake listens on 127.0.0.1)."""
    _recreate_database(BROWSER_DATABASE)
    redis_url = redis_url_with_db(settings.REDIS_URL, SERVE_REDIS_DB)
    redis.Redis.from_url(redis_url).flushdb()
    port = _free_port()
    environment = process_environment(
        DATABASE_URL=database_url_named(settings.DATABASE_URL, BROWSER_DATABASE),
        REDIS_URL=redis_url,
        DJANGO_SETTINGS_MODULE="config.settings.base",
        ARBOR_PORT=str(port),
        ARBOR_VAR_DIR=str(tmp_path_factory.mktemp("browser-var")),
        OPENAI_API_KEY="sk-fake",
        OPENAI_BASE_URL=f"{fake_openai.url}/v1",
        ALLOW_PRIVATE_PROVIDER_URLS="true",
        DEMO_MODEL="off",
        GUEST_CREATE_BURST="1000",  # every test is a new visitor from 127.0.0.1
        REPLY_MAX_CHARS="20000",  # where an endless reply (`fault:endless`) is cut
        DEBUG="false",
    )
    process = _serve(environment)
    try:
        _read_until_ready(process)
        # Keep reading what the server and its worker print (the worker logs every task at INFO):
        # a pipe nobody reads fills up after some 64 KB and then blocks the server mid-request.
        threading.Thread(target=_drain, args=(process,), name="serve-output", daemon=True).start()
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop_with_ctrl_c(process)


def _drain(process: Any) -> None:
    for _line in process.stdout:
        pass


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


class Console:
    """Errors the pages logged (CSP violations, uncaught exceptions): a test ends with none."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def watch(self, page: Any) -> Any:
        page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        return page


@pytest.fixture
def console() -> Iterator[Console]:
    watcher = Console()
    yield watcher
    assert watcher.errors == []


@pytest.fixture
def context(chromium: Any, arbor: str) -> Iterator[Any]:
    context = chromium.new_context(base_url=arbor, viewport=DESKTOP, color_scheme="light")
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def page(context: Any, console: Console) -> Any:
    return console.watch(context.new_page())


def screenshot(page: Any, name: str, *, full_page: bool = False) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def reply_text(page: Any, index: int = -1) -> str:
    return page.locator("article.message.assistant .markdown").nth(index).inner_text()


def wait_until_idle(page: Any) -> None:
    """No turn waits for its ack and every reply on the screen has ended."""
    from playwright.sync_api import expect

    expect(page.locator("#thread")).to_have_attribute("data-busy", "false", timeout=30_000)
    expect(page.locator("#thread")).not_to_have_attribute("data-synced", "false")  # the saved reply read back
    expect(page.locator("#send")).to_be_visible()


def send(page: Any, text: str) -> None:
    """Type and press Enter; the message is on the screen once the server took it."""
    before = page.locator("article.message.user").count()
    page.locator("#prompt").fill(text)
    page.locator("#prompt").press("Enter")
    try:
        page.locator("article.message.user").nth(before).wait_for()
    except Exception as error:
        raise AssertionError(f"not sent: {page.locator('#composer-error').inner_text()!r}") from error


def chat_id(page: Any) -> str:
    match = re.search(r"chat=([0-9a-f-]{36})", page.url)
    assert match, page.url
    return match.group(1)


def api_json(page: Any, path: str) -> Any:
    return json.loads(page.evaluate("path => fetch(path).then(r => r.text())", path))
