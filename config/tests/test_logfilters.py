"""No log line shows a share token: Django's own records through the configured console handler,
and daphne's access log as its command builds it."""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest
from daphne.cli import CommandLineInterface
from django.test import Client

from config.logfilters import ShareTokenFilter, redact_share_tokens

TOKEN = "s3cr3t-Share-Token_abcdefghijklmnopqrstuvw"


@pytest.fixture
def console(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """What the handler LOGGING configures for the console writes, captured."""
    [handler] = [h for h in logging.getLogger().handlers if any(isinstance(f, ShareTokenFilter) for f in h.filters)]
    assert isinstance(handler, logging.StreamHandler)
    captured = io.StringIO()
    # Not setStream: it flushes the stream it replaces, which pytest may have closed already.
    monkeypatch.setattr(handler, "stream", captured)
    return captured


@pytest.mark.django_db
def test_a_share_link_that_is_not_found_is_logged_without_its_token(console: io.StringIO) -> None:
    response = Client().get(f"/share/{TOKEN}")
    assert response.status_code == 404
    logged = console.getvalue()
    assert "/share/[redacted]" in logged  # django.request's "Not Found: …" still says what
    assert TOKEN not in logged


def test_a_token_passed_as_an_argument_is_redacted_and_other_records_are_untouched(console: io.StringIO) -> None:
    logger = logging.getLogger("arbor.test")
    logger.warning("GET %s -> %d", f"/share/{TOKEN}/fork?x=1", 302)
    logger.warning("GET %s -> %d", "/api/chats/", 200)
    assert console.getvalue().splitlines()[-2].endswith("GET /share/[redacted]/fork?x=1 -> 302")
    assert console.getvalue().splitlines()[-1].endswith("GET /api/chats/ -> 200")


def test_every_token_in_a_line_is_redacted_and_the_rest_kept() -> None:
    line = f'"GET /share/{TOKEN} HTTP/1.1" referer=https://arbor.example/share/other-token#top'
    assert redact_share_tokens(line) == (
        '"GET /share/[redacted] HTTP/1.1" referer=https://arbor.example/share/[redacted]#top'
    )


class _CapturedServer:
    """Stands in for daphne's Server: records what the command would serve with."""

    built: dict[str, Any] = {}
    abort_start = False

    def __init__(self, **kwargs: Any) -> None:
        _CapturedServer.built = kwargs

    def run(self) -> None:
        pass


@pytest.mark.django_db
def test_daphnes_access_log_writes_share_paths_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    # The real `daphne` command line: loads config.asgi, then builds its server and access log.
    command = CommandLineInterface()
    command.server_class = _CapturedServer
    command.run(["--fd", "99", "config.asgi:application"])
    access_log = _CapturedServer.built["action_logger"]
    access_log.stream = io.StringIO()

    details = {"client": "203.0.113.9:5000", "method": "GET", "status": 200, "size": 512}
    access_log("http", "complete", {**details, "path": f"/share/{TOKEN}"})
    access_log("http", "complete", {**details, "path": "/api/models"})
    first, second = access_log.stream.getvalue().splitlines()
    assert '"GET /share/[redacted]" 200 512' in first
    assert TOKEN not in first
    assert '"GET /api/models" 200 512' in second
