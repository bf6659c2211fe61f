"""The fault suite: a whole turn against every fault the fake vendor can play (`FAULTS`, named in
the prompt), through the real OpenAI SDK. Each ends, with a clear status and the text that came."""

from __future__ import annotations

from typing import Any

import pytest

from chat.generation import generation_start
from chat.models import Status
from chat.tests.test_generation import _frames, _message, _send
from providers.testing.base import ENDLESS_TEXT, FAULTS, Count, Say, reply
from providers.testing.openai_server import OpenAIServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_platform_keys")]

ANSWER = (Say("One, "), Say("two, "), Say("three, "), Say("four."), Count(5, 4))
WHOLE = "One, two, three, four."
# fault: (status, error code, finish reason, text kept: none, part of the answer, or more than it)
EXPECTED = {
    "endless": (Status.COMPLETE, "", "length", "more"),
    "drop": (Status.ERROR, "provider_disconnected", "", "part"),
    "cut": (Status.ERROR, "provider_disconnected", "", "part"),
    "stall-first": (Status.ERROR, "timeout", "", "none"),
    "stall": (Status.ERROR, "timeout", "", "part"),
    "malformed": (Status.ERROR, "provider_unavailable", "", "part"),
    "429": (Status.ERROR, "rate_limited", "", "none"),
    "500": (Status.ERROR, "provider_unavailable", "", "none"),
}


def test_the_suite_covers_every_fault() -> None:
    assert set(EXPECTED) == set(FAULTS)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fault", sorted(EXPECTED))
async def test_a_turn_against_a_faulty_provider_ends_with_a_clear_status_and_its_text(
    openai_fake: OpenAIServer, settings: Any, fault: str
) -> None:
    # Limits small enough for a test, and no retries: each fault is met once.
    settings.PROVIDER_MAX_RETRIES = 0
    settings.FIRST_TOKEN_BUDGET_SECONDS = 0.5
    settings.PROVIDER_IDLE_TIMEOUT = 0.5
    settings.REPLY_MAX_CHARS = 200
    openai_fake.default_reply = reply(*ANSWER)
    status, code, finish, kept = EXPECTED[fault]

    _, reply_id = await _send(f"Count to four fault:{fault}", "openai:gpt-5-mini")
    await (await generation_start(reply_id))

    saved = await _message(reply_id)
    assert (saved.status, saved.error_code, saved.finish_reason) == (status, code, finish)
    done = (await _frames(reply_id))[-1]
    assert (done["type"], done["status"]) == ("done", str(status))
    if kept == "none":
        assert saved.text == ""
    elif kept == "part":
        assert saved.text and WHOLE.startswith(saved.text) and saved.text != WHOLE
    else:
        assert saved.text.startswith(WHOLE + ENDLESS_TEXT) and len(saved.text) == 200
