"""Fixtures the chat tests share: no platform key leaks in from the environment, and an OpenAI
fake server set up as the platform's OpenAI provider."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from providers.testing.openai_server import OpenAIServer

PLATFORM_KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "XAI_API_KEY", "OPENROUTER_API_KEY")


@pytest.fixture
def no_platform_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """No real provider is configured (so the offline demo is the default model)."""
    for variable in (*PLATFORM_KEYS, "OLLAMA_BASE_URL"):
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def openai_fake(monkeypatch: pytest.MonkeyPatch, no_platform_keys: None) -> Iterator[OpenAIServer]:
    """The OpenAI fake as the platform's OpenAI provider (seed the catalog to use it)."""
    with OpenAIServer() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
        monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
        yield server  # type: ignore[misc]
