"""Images attached to `send` and `edit` frames, through the real socket, turn services, runner and
the OpenAI fake: the model gets the image in OpenAI's format, the user message keeps it as a part,
and a turn is refused (nothing saved) when an id is not the sender's or the model takes no images."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile
from pytest_django.fixtures import Settings

from accounts.models import User
from chat.models import Message, Upload
from chat.services.turns import TurnRefused, turn_edit, turn_send
from chat.services.uploads import upload_create
from chat.tests.test_consumers import _people, _person, _send, _tab, _turn
from chat.tests.test_uploads import PNG
from providers.testing.base import Say, reply
from providers.testing.openai_server import OpenAIServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_platform_keys")]

VISION_MODEL = "openai:gpt-5-mini"
PNG_URL = f"data:image/png;base64,{base64.b64encode(PNG).decode()}"


@pytest.fixture(autouse=True)
def media(settings: Settings, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@database_sync_to_async
def _upload(owner: User) -> str:
    return str(upload_create(owner=owner, file=SimpleUploadedFile("photo.png", PNG)).pk)


def _completions(server: OpenAIServer) -> list[Any]:
    """The bodies of the replies' model calls (not of a title's, which may come meanwhile)."""
    bodies = [request.body for request in server.requests if request.path.endswith("/chat/completions")]
    return [body for body in bodies if not str(body["messages"][-1]["content"]).endswith("Title:")]


async def _count_messages() -> int:
    return await database_sync_to_async(Message.objects.count)()


async def test_a_send_with_an_image_reaches_the_model_as_an_image_url_and_is_saved_as_a_part(
    openai_fake: OpenAIServer,
) -> None:
    openai_fake.script(reply(Say("A single pixel.")))
    person = await _person()
    upload_id = await _upload(person.user)
    tab = await _tab(person)
    ack, frames = await _turn(tab, _send("What is this?", model=VISION_MODEL, attachments=[upload_id]))
    assert frames[-1]["status"] == "complete"
    question = _completions(openai_fake)[0]["messages"][-1]
    assert question == {
        "role": "user",
        "content": [{"type": "image_url", "image_url": {"url": PNG_URL}}, {"type": "text", "text": "What is this?"}],
    }
    saved = await database_sync_to_async(Message.objects.get)(pk=ack["user_message_id"])
    assert saved.content == [
        {"type": "image", "upload_id": upload_id, "media_type": "image/png"},
        {"type": "text", "text": "What is this?"},
    ]
    await tab.close()


async def test_an_image_alone_is_a_message_too(openai_fake: OpenAIServer) -> None:
    person = await _person()
    tab = await _tab(person)
    _, frames = await _turn(tab, _send("", model=VISION_MODEL, attachments=[await _upload(person.user)]))
    assert frames[-1]["status"] == "complete"
    assert _completions(openai_fake)[0]["messages"][-1]["content"][0]["type"] == "image_url"
    await tab.close()


async def test_another_users_upload_answers_not_found_and_nothing_is_saved(openai_fake: OpenAIServer) -> None:
    me, stranger = await _people(2)
    theirs = await _upload(stranger.user)
    tab = await _tab(me)
    error = await tab.answer(_send("Look", req=7, model=VISION_MODEL, attachments=[await _upload(me.user), theirs]))
    assert (error["type"], error["req"], error["code"]) == ("error", 7, "not_found")
    assert await _count_messages() == 0
    assert _completions(openai_fake) == []
    await tab.close()


async def test_a_model_that_takes_no_images_refuses_the_turn_and_nothing_is_saved() -> None:
    person = await _person()  # no keys: the default is the offline demo, which reads text only
    tab = await _tab(person)
    error = await tab.answer(_send("Look", req=8, model=None, attachments=[await _upload(person.user)]))
    assert (error["type"], error["req"], error["code"]) == ("error", 8, "images_not_supported")
    assert "does not take images" in error["message"]
    assert await _count_messages() == 0
    await tab.close()


@pytest.mark.parametrize(
    ("attachments", "complaint"),
    [("not a list", "list"), (["nope"], "id"), ([f"00000000-0000-0000-0000-00000000000{n}" for n in range(5)], "4")],
)
async def test_attachments_that_are_not_a_short_list_of_ids_are_a_bad_frame(attachments: Any, complaint: str) -> None:
    tab = await _tab(await _person())
    error = await tab.answer(_send("Look", req=9, attachments=attachments))
    assert (error["type"], error["req"], error["code"]) == ("error", 9, "bad_frame")
    assert "`attachments`" in error["message"] and complaint in error["message"]
    assert await _count_messages() == 0
    await tab.close()


async def test_an_edit_keeps_the_images_unless_it_names_others(openai_fake: OpenAIServer) -> None:
    person = await _person()
    first, second = await _upload(person.user), await _upload(person.user)
    tab = await _tab(person)
    ack, _ = await _turn(tab, _send("What is this?", model=VISION_MODEL, attachments=[first]))

    def edit(req: int, content: str, **fields: Any) -> dict[str, Any]:
        return {"type": "edit", "req": req, "message_id": ack["user_message_id"], "content": content, **fields}

    kept, _ = await _turn(tab, edit(2, "And?"))
    swapped, _ = await _turn(tab, edit(3, "Now?", attachments=[second]))
    dropped, _ = await _turn(tab, edit(4, "Text", attachments=[]))

    async def images(message_id: str) -> list[str]:
        message = await database_sync_to_async(Message.objects.get)(pk=message_id)
        return [part["upload_id"] for part in message.content if part["type"] == "image"]

    assert await images(kept["user_message_id"]) == [first]
    assert await images(swapped["user_message_id"]) == [second]
    assert await images(dropped["user_message_id"]) == []
    sent = [body["messages"][-1]["content"] for body in _completions(openai_fake)[-3:]]
    assert [[part["type"] for part in sent[0]], [part["type"] for part in sent[1]], sent[2]] == [
        ["image_url", "text"],
        ["image_url", "text"],
        "Text",  # no image left: a plain text turn
    ]
    await tab.close()


def test_the_turn_services_check_the_images_before_saving_anything(openai_fake: OpenAIServer) -> None:
    from accounts.tests.factories import UserFactory
    from providers.catalog import catalog_seed

    user = UserFactory()
    catalog_seed()
    upload = upload_create(owner=user, file=SimpleUploadedFile("p.png", PNG))
    started = turn_send(user=user, chat_id=None, parent_id=None, content="Hi", model_id=VISION_MODEL)
    with pytest.raises(TurnRefused) as refused:
        turn_edit(user=user, message_id=started.user_message.pk, content="Hi", attachments=[str(upload.pk)] * 5)
    assert refused.value.code == "bad_request"
    with pytest.raises(TurnRefused) as refused:
        turn_send(user=user, chat_id=None, parent_id=None, content=" ", model_id=VISION_MODEL)
    assert refused.value.code == "bad_request"
    assert Message.objects.count() == 2 and Upload.objects.count() == 1
