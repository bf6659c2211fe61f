"""Fixtures the artifacts tests share: people with a chat and a reply being written, the OpenAI
fake as the platform's OpenAI provider (from chat's conftest), and a ToolContext whose frames
are collected instead of streamed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from accounts.models import User
from accounts.tests.factories import UserFactory
from chat.models import Chat, Message, Role, Status
from chat.services.tree import chat_create, message_append
from chat.tools import ToolContext
from providers.catalog import catalog_seed
from providers.testing.openai_server import OpenAIServer

MODEL = "openai:gpt-5-mini"


@dataclass
class Frames:
    """Stands in for the reply's stream: collects what a tool emits."""

    frames: list[dict[str, Any]] = field(default_factory=list)

    async def __call__(self, frame: dict[str, Any]) -> None:
        self.frames.append(frame)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [frame for frame in self.frames if frame["type"] == kind]

    def text(self) -> str:
        return "".join(frame["text"] for frame in self.of("artifact_delta"))


@dataclass
class Turn:
    """A user's chat with a question and the reply (being written) whose model calls tools."""

    user: User
    chat: Chat
    question: Message
    reply: Message
    frames: Frames

    def context(self, model_id: str = MODEL) -> ToolContext:
        return ToolContext(
            user_id=self.user.pk,
            chat_id=str(self.chat.pk),
            message_id=str(self.reply.pk),
            model_id=model_id,
            emit=self.frames,
        )


def turn_for(user: User, question: str = "Write me a short poem about rivers.") -> Turn:
    chat = chat_create(owner=user, title="Rivers")
    asked = message_append(
        chat=chat, parent=None, role=Role.USER, content=[{"type": "text", "text": question}], text=question
    )
    reply = message_append(
        chat=chat, parent=asked, role=Role.ASSISTANT, content=[], model_id=MODEL, status=Status.STREAMING
    )
    return Turn(user=user, chat=chat, question=asked, reply=reply, frames=Frames())


@pytest.fixture
def person(openai_fake: OpenAIServer) -> User:
    user = UserFactory()  # first: it restores the default tiers the seed grants models to
    catalog_seed()
    return user


@pytest.fixture
def turn(person: User) -> Turn:
    return turn_for(person)


@pytest.fixture
def media_root(tmp_path: Any, settings: Any) -> Any:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT
