"""Documented settings reach the code that uses them from the environment, as an operator sets them
(a fresh process: settings are read once, at import)."""

from __future__ import annotations

import json
import subprocess
import sys

from config.tests.test_serve import BASE_DIR
from conftest import process_environment

# What the code that uses each setting makes of it, after django.setup().
PROBE = """
import json, django
django.setup()
from chat.prompts import platform_prompt
from chat.streambuffer import stream_buffer
buffer = stream_buffer()
print(json.dumps({"ttl": buffer.ttl_seconds, "prompt": platform_prompt()}))
"""


def _read_with(**variables: str) -> dict[str, object]:
    environment = process_environment(DJANGO_SETTINGS_MODULE="config.settings.base")
    for name in ("STREAM_BUFFER_TTL", "PLATFORM_SYSTEM_PROMPT"):
        environment.pop(name, None)
    environment.update(variables)
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_stream_buffer_ttl_and_platform_prompt_come_from_the_environment() -> None:
    read = _read_with(STREAM_BUFFER_TTL="120", PLATFORM_SYSTEM_PROMPT="House rules: be brief.")
    assert read == {"ttl": 120, "prompt": "House rules: be brief."}


def test_unset_they_keep_their_defaults_and_an_empty_prompt_means_no_platform_layer() -> None:
    defaults = _read_with()
    assert defaults["ttl"] == 3600
    assert str(defaults["prompt"]).startswith("You are Arbor")
    assert _read_with(PLATFORM_SYSTEM_PROMPT="")["prompt"] == ""
