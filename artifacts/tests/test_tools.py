"""The model's tools, called as the runner calls them (`tool_call_run`) with a ToolContext whose
frames are collected: real PostgreSQL and Redis, the OpenAI fake as the reply's model."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

from accounts.models import UsageBucket
from accounts.tests.factories import UserFactory
from artifacts.generation import BATCH_CHARS
from artifacts.kinds.base import MAX_CONTENT_CHARS
from artifacts.models import Author, Document, DocumentVersion
from artifacts.services import document_create
from artifacts.tests.conftest import MODEL, Turn, turn_for
from chat.tools import ToolResult, tool_call_run, tools_registered
from providers.contract import ToolCall
from providers.testing.base import Count, Fail, Say, reply
from providers.testing.openai_server import FAKE_PNG, OpenAIServer

pytestmark = pytest.mark.django_db(transaction=True)

POEM = "# Rivers\n\nThe river runs,\nthe river bends.\n"


async def _call(turn: Turn, name: str, arguments: Any, *, model_id: str = MODEL) -> ToolResult:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return await tool_call_run(ToolCall(id="call_1", name=name, arguments=text), turn.context(model_id))


@database_sync_to_async
def _versions(document_id: str) -> list[tuple[int, str, str, str | None]]:
    rows = DocumentVersion.objects.filter(document_id=document_id).order_by("number")
    return [(v.number, v.content, v.author, str(v.message_id) if v.message_id else None) for v in rows]


@database_sync_to_async
def _document_count() -> int:
    return Document.objects.count()


def _words(text: str) -> Any:
    """The fake's reply writing `text` a few characters per event."""
    return reply(*[Say(text[start : start + 5]) for start in range(0, len(text), 5)], Count(40, 12))


def test_the_three_tools_are_registered_with_chat_at_startup() -> None:
    names = {tool.spec.name for tool in tools_registered()}
    assert {"create_document", "update_document", "request_suggestions"} <= names


# --- create_document --------------------------------------------------------------------------------
async def test_create_document_streams_the_content_and_saves_version_1(openai_fake: OpenAIServer, turn: Turn) -> None:
    openai_fake.script(_words(POEM))
    result = await _call(turn, "create_document", {"title": "Rivers", "kind": "text"})

    assert not result.error, result.content
    document_id = result.data["document_id"]
    assert result.data == {"document_id": document_id, "kind": "text", "title": "Rivers", "language": "", "version": 1}
    assert document_id in result.content and "The river runs" in result.content
    start, *_, done = turn.frames.frames
    assert start == {
        "type": "artifact_start",
        "document_id": document_id,
        "operation": "create",
        "kind": "text",
        "title": "Rivers",
        "language": "",
        "version": 1,
    }
    assert done == {"type": "artifact_done", "document_id": document_id, "status": "complete", "version": 1}
    assert turn.frames.text() == POEM
    assert await _versions(document_id) == [(1, POEM, Author.MODEL, str(turn.reply.pk))]
    document = await database_sync_to_async(Document.objects.get)(pk=document_id)
    assert (document.owner_id, document.chat_id, document.created_from_message_id) == (
        turn.user.pk,
        turn.chat.pk,
        turn.reply.pk,
    )


async def test_the_writer_is_the_replys_model_asked_without_tools_with_the_conversation(
    openai_fake: OpenAIServer, turn: Turn
) -> None:
    openai_fake.script(_words(POEM))
    await _call(turn, "create_document", {"title": "Rivers", "kind": "text", "description": "four lines"})
    body = openai_fake.requests[-1].body
    assert body["model"] == "gpt-5-mini"
    assert "tools" not in body
    system, *conversation = body["messages"]
    assert "'Rivers'" in system["content"] and "four lines" in system["content"]
    assert conversation == [{"role": "user", "content": "Write me a short poem about rivers."}]


async def test_deltas_are_batched_not_one_frame_per_token(openai_fake: OpenAIServer, turn: Turn) -> None:
    text = "word " * 2_000  # 2,000 events, each a few characters, with no delay between them
    openai_fake.script(reply(*[Say("word ") for _ in range(2_000)]))
    result = await _call(turn, "create_document", {"title": "Words", "kind": "text"})
    assert not result.error
    deltas = turn.frames.of("artifact_delta")
    assert "".join(frame["text"] for frame in deltas) == text
    assert len(deltas) < 200
    assert all(len(frame["text"]) <= BATCH_CHARS + 5 for frame in deltas)


async def test_code_gets_its_language_and_a_fence_around_everything_is_dropped_on_saving(
    openai_fake: OpenAIServer, turn: Turn
) -> None:
    openai_fake.script(reply(Say("```python\n"), Say("print('hi')\n"), Say("```")))
    result = await _call(turn, "create_document", {"title": "Hello", "kind": "code", "language": "Py"})
    assert result.data["language"] == "python"
    done = turn.frames.of("artifact_done")[0]
    assert done["content"] == "print('hi')\n"  # replaces the streamed text, fence and all
    assert (await _versions(result.data["document_id"]))[0][1] == "print('hi')\n"


async def test_a_sheet_that_does_not_parse_is_an_error_result_and_nothing_is_saved(
    openai_fake: OpenAIServer, turn: Turn
) -> None:
    openai_fake.script(reply(Say("name,age\nAda,36\nGrace\n"), Count(30, 8)))
    result = await _call(turn, "create_document", {"title": "People", "kind": "sheet"})
    assert result.error
    assert "row 3 has 1 columns, the header has 2" in result.content
    done = turn.frames.of("artifact_done")[0]
    assert done["status"] == "error" and done["error"]["code"] == "invalid_content"
    assert await _document_count() == 0


async def test_the_tokens_a_document_used_are_charged_to_the_users_allowance(
    openai_fake: OpenAIServer, turn: Turn
) -> None:
    openai_fake.script(reply(Say(POEM), Count(400, 600)))
    before = await _token_level(turn)
    await _call(turn, "create_document", {"title": "Rivers", "kind": "text"})
    # 400 + 600 reported tokens, less what the bucket refilled meanwhile (a few per second).
    assert 900 < before - await _token_level(turn) <= 1_000


@database_sync_to_async
def _token_level(turn: Turn) -> float:
    from accounts.limits import TOKENS, limit_charge

    # A zero charge refills and reads the bucket without changing it.
    return limit_charge(user=turn.user, kind=TOKENS, amount=0).remaining


async def test_a_provider_failure_is_an_error_result_that_says_why(openai_fake: OpenAIServer, turn: Turn) -> None:
    openai_fake.script(Fail(400, "bad things"))
    result = await _call(turn, "create_document", {"title": "Rivers", "kind": "text"})
    assert result.error and result.content == "The provider refused the request."
    assert turn.frames.of("artifact_done")[0]["error"]["code"] == "bad_request"
    assert await _document_count() == 0


async def test_a_document_past_the_size_limit_is_cut_off_and_refused(openai_fake: OpenAIServer, turn: Turn) -> None:
    chunk = "x" * 50_000
    openai_fake.script(reply(*[Say(chunk) for _ in range(MAX_CONTENT_CHARS // len(chunk) + 2)]))
    result = await _call(turn, "create_document", {"title": "Huge", "kind": "text"})
    assert result.error and f"{MAX_CONTENT_CHARS:,} characters" in result.content
    assert turn.frames.of("artifact_done")[0]["error"]["code"] == "too_long"
    assert await _document_count() == 0


async def test_a_stop_of_the_reply_ends_the_writing_and_saves_nothing(openai_fake: OpenAIServer, turn: Turn) -> None:
    import asyncio

    openai_fake.script(reply(*[Say("slow ") for _ in range(200)], delay=0.02))
    # The runner stops a reply by cancelling its task, which is running this tool.
    writing = asyncio.ensure_future(_call(turn, "create_document", {"title": "Slow", "kind": "text"}))
    while not turn.frames.of("artifact_delta"):
        await asyncio.sleep(0.01)
    writing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writing
    assert await _document_count() == 0


async def test_an_image_is_drawn_by_openai_images_and_saved_as_version_1(
    openai_fake: OpenAIServer, turn: Turn, media_root: Any
) -> None:
    arguments = {"title": "Red fox", "kind": "image", "description": "A red fox asleep in the snow"}
    result = await _call(turn, "create_document", arguments)

    assert not result.error, result.content
    document_id = result.data["document_id"]
    request = openai_fake.requests[-1]
    assert request.path == "/v1/images/generations"
    assert request.body["model"] == "gpt-image-1" and request.body["prompt"] == "A red fox asleep in the snow"
    assert [frame["type"] for frame in turn.frames.frames] == ["artifact_start", "artifact_done"]
    assert turn.frames.frames[-1]["download_url"] == f"/api/documents/{document_id}/download?version=1"
    version = await database_sync_to_async(DocumentVersion.objects.get)(document_id=document_id)
    assert version.content == "A red fox asleep in the snow"
    with version.file.open("rb") as stored:
        assert stored.read() == FAKE_PNG


async def test_an_image_with_a_model_openai_does_not_serve_is_refused_clearly(
    openai_fake: OpenAIServer, turn: Turn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-fake")  # never called: refused before any request
    result = await _call(
        turn, "create_document", {"title": "A red fox", "kind": "image"}, model_id="anthropic:claude-sonnet-4-5"
    )
    assert result.error
    assert "cannot be drawn with Claude Sonnet 4.5" in result.content and "OpenAI" in result.content
    assert turn.frames.of("artifact_done")[0]["error"]["code"] == "invalid_content"
    assert openai_fake.requests == []
    assert await _document_count() == 0


async def test_a_rate_limited_images_endpoint_is_tried_again_as_a_stream_would_be(
    openai_fake: OpenAIServer, turn: Turn, media_root: Any
) -> None:
    openai_fake.script(Fail(429, "slow down"))
    result = await _call(turn, "create_document", {"title": "A red fox", "kind": "image"})
    assert not result.error, result.content
    assert [request.path for request in openai_fake.requests] == ["/v1/images/generations"] * 2
    assert turn.frames.frames[-1]["status"] == "complete"


async def test_an_images_endpoint_failure_is_an_error_result(
    openai_fake: OpenAIServer, turn: Turn, settings: Any
) -> None:
    settings.PROVIDER_MAX_RETRIES = 0
    openai_fake.script(Fail(429, "slow down"))
    result = await _call(turn, "create_document", {"title": "A red fox", "kind": "image"})
    assert result.error and result.content == "The provider is rate limiting requests; try again shortly."
    assert turn.frames.of("artifact_done")[0]["error"]["code"] == "rate_limited"
    assert await _document_count() == 0


BAD_CALLS: dict[str, tuple[str, Any, str]] = {
    "malformed_json": ("create_document", '{"title": "Rivers", "kind": ', "not valid JSON"),
    "not_an_object": ("create_document", '["Rivers", "text"]', "must be a JSON object"),
    "missing_title": ("create_document", {"kind": "text"}, "`title` is required"),
    "title_a_number": ("create_document", {"title": 5, "kind": "text"}, "`title` is required"),
    "title_too_long": ("create_document", {"title": "t" * 201, "kind": "text"}, "at most 200 characters"),
    "unknown_kind": ("create_document", {"title": "Rivers", "kind": "video"}, "no document kind 'video'"),
    "kind_a_list": ("create_document", {"title": "Rivers", "kind": ["text"]}, "no document kind"),
    "bad_language": ("create_document", {"title": "X", "kind": "code", "language": "py thon!"}, "`language`"),
    "update_without_description": ("update_document", {"id": str(uuid.uuid4())}, "`description` is required"),
    "update_of_a_missing_id": ("update_document", {"id": "nope", "description": "Shorter"}, "no document"),
    "suggestions_without_id": ("request_suggestions", {}, "`id` is required"),
}


@pytest.mark.parametrize("case", BAD_CALLS)
async def test_a_bad_call_is_an_error_result_the_model_can_act_on(
    case: str, openai_fake: OpenAIServer, turn: Turn
) -> None:
    name, arguments, expected = BAD_CALLS[case]
    requests_before = len(openai_fake.requests)
    result = await _call(turn, name, arguments)
    assert result.error and expected in result.content, result.content
    assert len(openai_fake.requests) == requests_before  # nothing was generated
    assert turn.frames.frames == []


# --- update_document ----------------------------------------------------------------------------------
@database_sync_to_async
def _document_of(turn: Turn, content: str = POEM, kind: str = "text") -> str:
    document, _ = document_create(
        document_id=uuid.uuid4(),
        owner_id=turn.user.pk,
        chat_id=turn.chat.pk,
        message_id=turn.reply.pk,
        kind=kind,
        title="Rivers",
        language="",
        content=content,
    )
    return str(document.pk)


async def test_update_document_rewrites_the_latest_version_and_saves_version_2(
    openai_fake: OpenAIServer, turn: Turn
) -> None:
    document_id = await _document_of(turn)
    revised = "# Rivers\n\nThe river sings.\n"
    openai_fake.script(_words(revised))
    result = await _call(turn, "update_document", {"id": document_id, "description": "Make it sing"})

    assert not result.error, result.content
    assert result.data["version"] == 2 and "version 2" in result.content
    prompt = openai_fake.requests[-1].body["messages"][-1]["content"]
    assert POEM in prompt and "Make it sing" in prompt
    assert turn.frames.of("artifact_start")[0]["operation"] == "update"
    assert turn.frames.of("artifact_start")[0]["version"] == 2
    assert turn.frames.text() == revised
    assert [(number, content) for number, content, *_ in await _versions(document_id)] == [(1, POEM), (2, revised)]


async def test_another_users_document_is_refused_and_left_alone(openai_fake: OpenAIServer, turn: Turn) -> None:
    stranger = await sync_to_async(UserFactory)()
    theirs = await _document_of(await sync_to_async(turn_for)(stranger))
    for name, arguments in (
        ("update_document", {"id": theirs, "description": "Delete everything"}),
        ("request_suggestions", {"id": theirs}),
    ):
        result = await _call(turn, name, arguments)
        assert result.error and "no document with the id" in result.content
    assert len(await _versions(theirs)) == 1
    assert not any(request.path.endswith("/chat/completions") for request in openai_fake.requests)


async def test_an_invalid_update_keeps_the_document_as_it_was(openai_fake: OpenAIServer, turn: Turn) -> None:
    document_id = await _document_of(turn, "a,b\n1,2\n", kind="sheet")
    openai_fake.script(reply(Say('a,b\n1,"2\n')))  # an unclosed quote
    result = await _call(turn, "update_document", {"id": document_id, "description": "Add a row"})
    assert result.error and "does not parse" in result.content
    assert len(await _versions(document_id)) == 1


async def test_a_reply_model_the_user_may_not_use_is_refused_before_anything_streams(
    openai_fake: OpenAIServer, turn: Turn
) -> None:
    result = await _call(turn, "create_document", {"title": "Rivers", "kind": "text"}, model_id="openai:nope")
    assert result.error and "There is no model" in result.content
    assert turn.frames.frames == []


async def test_request_suggestions_queues_a_review_of_the_latest_version(
    openai_fake: OpenAIServer, turn: Turn, monkeypatch: pytest.MonkeyPatch
) -> None:
    from artifacts import tasks

    queued: list[tuple[Any, ...]] = []
    monkeypatch.setattr(tasks.suggest, "apply_async", lambda args, **options: queued.append((*args, options)))
    document_id = await _document_of(turn)
    result = await _call(turn, "request_suggestions", {"id": document_id})
    assert not result.error and result.data["version"] == 1
    version_id = await database_sync_to_async(
        lambda: DocumentVersion.objects.get(document_id=document_id, number=1).pk
    )()
    assert queued == [(version_id, result.data["batch"], {"ignore_result": True})]


def test_usage_bucket_kind_is_what_the_charge_uses() -> None:
    from accounts.limits import TOKENS

    assert TOKENS == UsageBucket.Kind.TOKENS


@database_sync_to_async
def _usage_rows(turn: Turn) -> list[tuple[Any, ...]]:
    from usage.models import UsageRecord

    rows = UsageRecord.objects.filter(user_id=turn.user.pk).order_by("created_at")
    return list(rows.values_list("kind", "model_id", "provider", "input_tokens", "output_tokens", "outcome"))


async def test_each_generation_is_recorded_in_usage_even_one_whose_content_is_refused(
    openai_fake: OpenAIServer, turn: Turn
) -> None:
    openai_fake.script(reply(Say(POEM), Count(400, 600)), reply(Say("a,b\n1\n"), Count(300, 5)))
    await _call(turn, "create_document", {"title": "Rivers", "kind": "text"})
    await _call(turn, "create_document", {"title": "Table", "kind": "sheet"})
    assert await _usage_rows(turn) == [
        ("artifact", MODEL, "openai", 400, 600, "complete"),
        ("artifact", MODEL, "openai", 300, 5, "invalid_content"),
    ]
