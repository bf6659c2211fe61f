from __future__ import annotations

import base64
import json
import sys
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from pytest_django.fixtures import Settings

from accounts.models import Tier, User
from accounts.tests.factories import UserFactory
from chat import prompts
from chat.models import Chat, Upload
from chat.parts import text_of
from chat.prompts import DEFAULT_PLATFORM_PROMPT, IMAGE_GONE, context_messages, system_prompt_for
from chat.services.tree import chat_create
from chat.services.uploads import IMAGE_TOKENS, images_base64, upload_create
from providers.contract import ChatMessage, ImagePart, TextPart, ToolCall


# --- The system prompt -------------------------------------------------------------------------
def _user(*, tier_prompt: str = "", custom: str = "") -> User:
    return User(tier=Tier(system_prompt=tier_prompt), custom_instructions=custom)


def test_the_layers_come_platform_then_tier_then_custom_instructions_then_the_chat_preset(
    settings: Settings,
) -> None:
    settings.PLATFORM_SYSTEM_PROMPT = "Platform rules."
    chat = Chat(instructions="Answer as a pirate.")
    prompt = system_prompt_for(chat=chat, user=_user(tier_prompt="Tier rules.", custom="Call me Ada."))
    assert prompt == "Platform rules.\n\nTier rules.\n\nCall me Ada.\n\nAnswer as a pirate."


def test_empty_layers_are_left_out(settings: Settings) -> None:
    settings.PLATFORM_SYSTEM_PROMPT = ""
    assert system_prompt_for(chat=Chat(instructions="Preset."), user=_user(tier_prompt="  ", custom="")) == "Preset."
    assert system_prompt_for(chat=Chat(), user=_user()) == ""
    settings.PLATFORM_SYSTEM_PROMPT = "Platform."
    assert system_prompt_for(chat=Chat(), user=_user(custom="Mine.")) == "Platform.\n\nMine."


def test_the_default_platform_prompt_names_todays_date_and_markdown(settings: Settings) -> None:
    if hasattr(settings, "PLATFORM_SYSTEM_PROMPT"):
        del settings.PLATFORM_SYSTEM_PROMPT
    settings.TIME_ZONE = "UTC"
    prompt = system_prompt_for(chat=Chat(), user=_user())
    assert "{date}" in DEFAULT_PLATFORM_PROMPT
    assert date.today().isoformat()[:7] in prompt  # the month, robust to a midnight crossing
    assert "Markdown" in prompt


def test_a_platform_prompt_with_braces_is_sent_as_written(settings: Settings) -> None:
    settings.PLATFORM_SYSTEM_PROMPT = 'Write JSON like {"a": 1} on {date}.'
    prompt = system_prompt_for(chat=Chat(), user=_user())
    assert prompt.startswith('Write JSON like {"a": 1} on 20')


@pytest.mark.django_db
def test_a_real_user_without_tier_prompt_or_custom_instructions_gets_platform_and_preset(
    settings: Settings,
) -> None:
    settings.PLATFORM_SYSTEM_PROMPT = "Platform."
    user = UserFactory()
    chat = chat_create(owner=user, instructions="Be brief.")
    assert system_prompt_for(chat=chat, user=user) == "Platform.\n\nBe brief."


# --- Context messages --------------------------------------------------------------------------
def _row(role: str, text: str = "", *, status: str = "complete", parts: Any = None, as_json: bool = True) -> tuple:
    content = parts if parts is not None else ([{"type": "text", "text": text}] if text else [])
    return (uuid.uuid4(), None, role, json.dumps(content) if as_json else content, status, "")


def _texts(messages: list[ChatMessage]) -> list[str]:
    return ["".join(part.text for part in message.parts if isinstance(part, TextPart)) for message in messages]


def test_rows_become_contract_messages_from_json_text_or_decoded_lists() -> None:
    rows = [
        _row("user", "Hi"),
        _row("assistant", parts=[{"type": "reasoning", "text": "hmm"}, {"type": "text", "text": "Hello"}]),
        _row("user", "Again", as_json=False),
    ]
    messages = context_messages(rows=rows, max_input_tokens=10_000, reserve_output=1_000)
    assert messages == [
        ChatMessage.text("user", "Hi"),
        ChatMessage.text("assistant", "Hello"),
        ChatMessage.text("user", "Again"),
    ]


def test_trimming_drops_the_oldest_turns_and_keeps_the_newest() -> None:
    # Each message is 400 characters: 100 tokens of text + 4 for the message = 104.
    rows = [_row("user" if index % 2 == 0 else "assistant", f"{index}".ljust(400, "x")) for index in range(9)]
    messages = context_messages(rows=rows, max_input_tokens=1_000, reserve_output=600)  # 400 tokens
    assert [text[0] for text in _texts(messages)] == ["6", "7", "8"]
    assert messages[0].role == "user"


def test_the_trimmed_context_starts_with_a_user_message() -> None:
    rows = [_row("user" if index % 2 == 0 else "assistant", f"{index}".ljust(400, "x")) for index in range(9)]
    # 420 tokens fit four messages (416), the oldest of them an assistant's: it goes too.
    messages = context_messages(rows=rows, max_input_tokens=1_020, reserve_output=600)
    assert [text[0] for text in _texts(messages)] == ["6", "7", "8"]


def test_the_newest_user_message_is_kept_even_over_budget() -> None:
    rows = [_row("user", "old"), _row("assistant", "reply"), _row("user", "y" * 10_000)]
    messages = context_messages(rows=rows, max_input_tokens=100, reserve_output=50)
    assert _texts(messages) == ["y" * 10_000]


def test_errored_empty_replies_placeholders_and_system_rows_are_skipped() -> None:
    rows = [
        _row("system", "stored system text"),
        _row("user", "First"),
        _row("assistant", status="error"),
        _row("assistant", "Partial answ", status="error"),
        _row("user", "Second"),
        _row("assistant", status="streaming"),
    ]
    messages = context_messages(rows=rows, max_input_tokens=10_000, reserve_output=0)
    assert [(message.role, text) for message, text in zip(messages, _texts(messages), strict=True)] == [
        ("user", "First"),
        ("assistant", "Partial answ"),
        ("user", "Second"),
    ]


def test_a_tool_loop_inside_one_reply_becomes_calls_results_and_the_answer() -> None:
    parts = [
        {"type": "text", "text": "Let me write that."},
        {"type": "tool_call", "id": "call_1", "name": "create_document", "arguments": '{"title": "Plan"}'},
        {"type": "tool_result", "tool_call_id": "call_1", "text": "created document 7"},
        {"type": "text", "text": "Done: see the document."},
        {"type": "tool_call", "id": "call_2", "name": "create_document", "arguments": "{"},  # stopped: no result
    ]
    messages = context_messages(
        rows=[_row("user", "Write a plan"), _row("assistant", parts=parts)], max_input_tokens=10_000, reserve_output=0
    )
    assert messages == [
        ChatMessage.text("user", "Write a plan"),
        ChatMessage(
            role="assistant",
            parts=(TextPart("Let me write that."),),
            tool_calls=(ToolCall("call_1", "create_document", '{"title": "Plan"}'),),
        ),
        ChatMessage(role="tool", parts=(TextPart("created document 7"),), tool_call_id="call_1"),
        ChatMessage.text("assistant", "Done: see the document."),
    ]


def test_a_stored_tool_message_answers_the_call_before_it() -> None:
    rows = [
        _row("user", "Go"),
        _row("assistant", parts=[{"type": "tool_call", "id": "c", "name": "t", "arguments": "{}"}]),
        _row("tool", parts=[{"type": "tool_result", "tool_call_id": "c", "text": "ok"}]),
    ]
    messages = context_messages(rows=rows, max_input_tokens=10_000, reserve_output=0)
    assert [message.role for message in messages] == ["user", "assistant", "tool"]
    assert messages[2].tool_call_id == "c"


def _lines_run(call: Callable[[], object]) -> int:
    """How many Python lines `call` runs, in every function it enters: work counted the same on
    any machine, where a duration is not."""
    lines = 0

    def trace(frame: FrameType, event: str, arg: object) -> Callable[..., object]:
        nonlocal lines
        if event == "line":
            lines += 1
        return trace

    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        call()
    finally:
        sys.settrace(previous)
    return lines


def _branch(length: int) -> list[tuple]:
    return [_row("user" if index % 2 == 0 else "assistant", f"message {index} " * 10) for index in range(length)]


def test_a_branch_is_converted_in_linear_work_and_trimming_converts_only_the_rows_it_keeps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    short, long = _branch(500), _branch(2_000)
    short_work = _lines_run(lambda: context_messages(rows=short, max_input_tokens=10_000_000, reserve_output=0))
    long_work = _lines_run(lambda: context_messages(rows=long, max_input_tokens=10_000_000, reserve_output=0))
    # Four times the rows, four times the work: a row costs no more in a longer branch.
    assert long_work <= 4 * short_work * 1.05

    rows = _branch(20_000)
    converted: list[str] = []
    turn_of = prompts._turn_of

    def counted_turn_of(role: str, *args: Any, **kwargs: Any) -> Any:
        converted.append(role)
        return turn_of(role, *args, **kwargs)

    monkeypatch.setattr(prompts, "_turn_of", counted_turn_of)
    everything = context_messages(rows=rows, max_input_tokens=10_000_000, reserve_output=0)
    assert len(everything) == len(converted) == 20_000
    converted.clear()
    trimmed = context_messages(rows=rows, max_input_tokens=128_000, reserve_output=8_000)
    assert 0 < len(trimmed) < 20_000
    assert _texts(trimmed)[-1] == _texts(everything)[-1]
    # Read from the newest: the rows kept and the one that no longer fit, none older.
    assert len(converted) == len(trimmed) + 1


def test_text_of_joins_the_text_parts_only() -> None:
    content = [{"type": "reasoning", "text": "no"}, {"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    assert text_of(json.dumps(content)) == "ab"
    assert text_of("") == ""


# --- Attached images ---------------------------------------------------------------------------
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture
def media(settings: Settings, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _image(owner: User, data: bytes = PNG) -> Upload:
    return upload_create(owner=owner, file=SimpleUploadedFile("photo", data))


def _asked(text: str, *uploads: Upload) -> tuple:
    images = [{"type": "image", "upload_id": str(upload.pk), "media_type": upload.media_type} for upload in uploads]
    return _row("user", parts=[*images, {"type": "text", "text": text}])


@pytest.mark.django_db
@pytest.mark.usefixtures("media")
def test_image_parts_become_image_parts_with_the_stored_bytes_before_the_text() -> None:
    upload = _image(UserFactory())
    messages = context_messages(rows=[_asked("What is this?", upload)], max_input_tokens=10_000, reserve_output=0)
    assert messages == [
        ChatMessage(
            role="user",
            parts=(
                ImagePart(media_type="image/png", data_base64=base64.b64encode(PNG).decode()),
                TextPart("What is this?"),
            ),
        )
    ]


@pytest.mark.django_db
@pytest.mark.usefixtures("media")
def test_only_the_turns_sent_have_their_images_read_from_storage(monkeypatch: pytest.MonkeyPatch) -> None:
    owner = UserFactory()
    old, new = _image(owner), _image(owner)
    read: list[list[str]] = []

    def spy(upload_ids: Any, **kwargs: Any) -> Any:
        read.append(list(upload_ids))
        return images_base64(upload_ids, **kwargs)

    monkeypatch.setattr("chat.prompts.images_base64", spy)
    rows = [_asked("old", old), _row("assistant", "x" * 4_000), _asked("new", new)]
    # An image is reckoned at IMAGE_TOKENS: the budget holds the newest turn only.
    messages = context_messages(rows=rows, max_input_tokens=IMAGE_TOKENS + 100, reserve_output=0)
    assert _texts(messages) == ["new"]
    assert read == [[str(new.pk)]]


@pytest.mark.django_db
@pytest.mark.usefixtures("media")
def test_a_model_that_takes_no_images_is_sent_the_text_alone_and_nothing_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    upload = _image(UserFactory())
    monkeypatch.setattr("chat.prompts.images_base64", lambda *args, **kwargs: pytest.fail("read an image"))
    rows = [_asked("Describe it", upload), _row("assistant", "A cat."), _asked("", upload)]
    messages = context_messages(rows=rows, max_input_tokens=10_000, reserve_output=0, images=False)
    assert messages == [ChatMessage.text("user", "Describe it"), ChatMessage.text("assistant", "A cat.")]


@pytest.mark.django_db
@pytest.mark.usefixtures("media")
def test_an_image_that_is_gone_or_not_the_chat_owners_is_sent_as_a_note() -> None:
    owner, stranger = UserFactory(), UserFactory()
    gone, theirs = _image(owner), _image(stranger)
    gone.file.delete(save=False)
    rows = [_asked("Compare", gone, theirs)]
    messages = context_messages(rows=rows, max_input_tokens=10_000, reserve_output=0, owner_id=owner.pk)
    assert messages[0].parts == (TextPart(IMAGE_GONE), TextPart(IMAGE_GONE), TextPart("Compare"))
