from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.tests.factories import GuestFactory, UserFactory
from providers.models import Model, ModelProvider
from providers.selectors import models_available_to
from providers.testing.base import Fail
from providers.testing.openai_server import OpenAIServer

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_seed_catalog_reports_what_it_added_then_that_nothing_was_missing() -> None:
    assert _run("seed_catalog").startswith("Added 7 creators, 7 providers")
    assert _run("seed_catalog") == "The catalog is complete: nothing to add.\n"


def test_check_providers_calls_the_configured_openai_and_reports_it_healthy(openai_fake: OpenAIServer) -> None:
    _run("seed_catalog")
    output = _run("check_providers", "openai", "anthropic")
    assert "openai       healthy" in output
    assert "3 models listed" in output
    assert "anthropic    not set up" in output
    assert openai_fake.requests[-1].path == "/v1/models"
    headers = {name.lower(): value for name, value in openai_fake.requests[-1].headers.items()}
    assert headers["authorization"] == "Bearer sk-fake"


def test_with_the_openai_key_set_its_models_are_offered_to_the_tiers(openai_fake: OpenAIServer) -> None:
    _run("seed_catalog")
    registered = {option.model_id for option in models_available_to(UserFactory())}
    guest = {option.model_id for option in models_available_to(GuestFactory())}
    assert {"openai:gpt-5", "openai:gpt-4.1", "openai:gpt-5-mini"} <= registered
    assert "openai:gpt-5-mini" in guest
    assert "openai:gpt-5" not in guest


def test_check_providers_fails_when_a_configured_key_is_rejected(openai_fake: OpenAIServer) -> None:
    _run("seed_catalog")
    openai_fake.script(Fail(401))
    with pytest.raises(CommandError, match="failing: openai"):
        _run("check_providers", "openai")


def test_sync_models_reports_new_and_gone_models_and_applies_new_ones_disabled(openai_fake: OpenAIServer) -> None:
    _run("seed_catalog")
    output = _run("sync_models", "openai")
    assert "new (2): gpt-4o, gpt-4o-mini" in output  # the fake lists gpt-4o, gpt-4o-mini, o4-mini
    assert "gone (4): gpt-4.1, gpt-4.1-mini, gpt-5, gpt-5-mini" in output
    assert not Model.objects.filter(model_id="openai:gpt-4o").exists()

    _run("sync_models", "openai", "--apply")
    added = Model.objects.get(model_id="openai:gpt-4o")
    assert not added.enabled
    assert ModelProvider.objects.filter(model=added, provider__slug="openai", provider_model_id="gpt-4o").exists()
    assert "new (0)" in _run("sync_models", "openai")


def test_sync_models_without_a_key_says_so() -> None:
    _run("seed_catalog")
    with pytest.raises(CommandError, match="has no key set"):
        _run("sync_models", "anthropic")
