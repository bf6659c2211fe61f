from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command

from chat.client_frames import (
    FRAME_TYPES,
    MAX_SEQ,
    FrameRefused,
    ResumeFrame,
    SendFrame,
    client_frame,
    client_frames_schema,
)
from chat.consumers import ChatConsumer

ID = "8f6a2b1c-3d4e-4f50-8a6b-7c8d9e0f1a2b"


def _refused(content: Any) -> FrameRefused:
    with pytest.raises(FrameRefused) as refused:
        client_frame(content)
    return refused.value


def test_a_send_frame_is_read_with_its_ids_in_canonical_form() -> None:
    frame = client_frame({"type": "send", "req": 1, "content": "Hi", "chat_id": ID.upper(), "attachments": [ID]})
    assert frame == SendFrame(type="send", req=1, content="Hi", chat_id=ID, attachments=[ID])


def test_keys_a_frame_does_not_name_are_ignored_and_left_out_ones_are_none() -> None:
    frame = client_frame({"type": "resume", "message_id": ID, "newer_tab_field": [1, 2]})
    assert frame == ResumeFrame(type="resume", message_id=ID, after_seq=None, req=None)


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ({"type": "resume", "message_id": ID, "after_seq": "5"}, "`after_seq`"),
        ({"type": "resume", "message_id": ID, "after_seq": True}, "`after_seq`"),
        ({"type": "resume", "message_id": ID, "after_seq": MAX_SEQ + 1}, "`after_seq`"),
        ({"type": "resume", "message_id": ID, "after_seq": -1}, "`after_seq`"),
        ({"type": "send", "content": 5}, "`content`"),
        ({"type": "send"}, "`content`"),
        ({"type": "stop", "message_id": "chat-1"}, "`message_id`: must be an id"),
        ({"type": "send", "content": "x", "attachments": [ID, "nope"]}, "`attachments` item 1"),
        ({"type": "send", "content": "x", "model": "m" * 201}, "`model`"),
        ({"type": "send", "content": "a\x00b"}, "`content`: must not contain the NUL character"),
    ],
)
def test_a_frame_of_the_wrong_shape_is_a_bad_frame_that_names_its_field(content: Any, complaint: str) -> None:
    refused = _refused({**content, "req": "r"})
    assert (refused.code, refused.req) == ("bad_frame", "r")
    assert complaint in refused.message


def test_a_refusal_does_not_echo_the_value_it_refuses() -> None:
    assert "secret-looking" not in _refused({"type": "stop", "message_id": "secret-looking"}).message


@pytest.mark.parametrize("req", [{"nested": 1}, True, "r" * 101, float("nan")])
def test_a_bad_req_is_refused_without_echoing_it(req: Any) -> None:
    refused = _refused({"type": "ping", "req": req})
    assert (refused.code, refused.req) == ("bad_frame", None)


@pytest.mark.parametrize("kind", ["teleport", None, ["send"]])
def test_an_unknown_type_is_refused_as_such(kind: Any) -> None:
    refused = _refused({"type": kind, "req": 3})
    assert (refused.code, refused.req) == ("unknown_type", 3)


def test_a_frame_that_is_not_an_object_is_a_bad_frame() -> None:
    assert _refused([1, 2]).code == "bad_frame"


def test_the_consumer_answers_every_frame_type_the_models_define() -> None:
    assert all(callable(getattr(ChatConsumer, f"on_{kind}", None)) for kind in FRAME_TYPES)


def test_the_published_schema_is_the_models_own() -> None:
    published = Path(settings.BASE_DIR, "docs", "protocol.client-frames.schema.json").read_text(encoding="utf-8")
    assert published == client_frames_schema(), "run `python manage.py frames_schema` and commit the file"


def test_the_schema_tells_frames_apart_by_type() -> None:
    import json

    schema = json.loads(client_frames_schema())
    assert sorted(schema["discriminator"]["mapping"]) == sorted(FRAME_TYPES)


def test_the_command_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("frames_schema", "--print")
    assert capsys.readouterr().out == client_frames_schema()
