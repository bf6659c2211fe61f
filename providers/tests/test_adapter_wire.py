from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from providers.adapters.wire import arguments_object, retry_after_header


def test_retry_after_reads_seconds_and_never_goes_negative() -> None:
    assert retry_after_header("2.5") == 2.5
    assert retry_after_header("-3") == 0.0
    assert retry_after_header(None) is None
    assert retry_after_header("soon") is None


def test_retry_after_reads_an_http_date_as_seconds_from_now() -> None:
    in_a_minute = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    assert 55 <= retry_after_header(in_a_minute) <= 60  # type: ignore[operator]
    assert retry_after_header("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_tool_arguments_that_are_not_a_json_object_are_sent_as_an_empty_one() -> None:
    assert arguments_object('{"city": "Rome"}') == {"city": "Rome"}
    assert arguments_object("") == {}
    assert arguments_object("{not json") == {}
    assert arguments_object("[1, 2]") == {}
