"""Prepare: the request for a reply's first model call (context, prompt layers, tools)."""

from __future__ import annotations

import dataclasses
from typing import Any

from chat.models import Message
from chat.tools import tools_registered
from providers.contract import ChatRequest


@dataclasses.dataclass(frozen=True)
class Prepared:
    """What a generation needs before its first model call."""

    route: Any
    request: ChatRequest
    user_id: int
    chat_id: str
    model_id: str


def generation_prepare(message_id: str, route: Any = None) -> Prepared:
    """The request for a reply's first model call (context, system prompt, tools), the reply
    read from the database (a generation started without its turn at hand)."""
    message = Message.objects.select_related("chat__owner__tier", "parent").get(pk=message_id)
    return generation_prepare_for(
        reply=message, chat=message.chat, user=message.chat.owner, parent=message.parent, route=route
    )


def _line_rows(parent: Message | None, read: Any) -> list[Any]:
    """root→parent as `chat.selectors.BRANCH_FIELDS` rows: a root (a new chat's first message) is
    its own line, at hand without a query; any other line is `read`."""
    if parent is None:
        return []
    if parent.depth == 1:
        return [(parent.pk, None, parent.role, parent.content, parent.status, parent.model_id)]
    return read(parent)


def generation_prepare_for(*, reply: Message, chat: Any, user: Any, parent: Message | None, route: Any) -> Prepared:
    """The request for a reply's first model call, from the turn's own objects. Sync: a socket
    builds it in the same thread call that saved the turn, so the generation goes straight to
    the model instead of queueing for the database again behind other turns."""
    from chat.prompts import context_messages, system_prompt_for
    from chat.selectors import ancestor_rows
    from providers.routing import route_for

    if route is None or route.model_id != reply.model_id:
        route = route_for(user=user, model_id=reply.model_id)
    rows = _line_rows(parent, ancestor_rows)
    tools = tuple(tool.spec for tool in tools_registered()) if route.supports_tools else ()
    request = ChatRequest(
        model=route.candidates[0].provider_model_id,
        messages=tuple(
            context_messages(
                rows=rows,
                max_input_tokens=route.context_window,
                reserve_output=min(route.max_output_tokens, 8192),
                images="image" in route.input_modalities,
                owner_id=user.pk,
            )
        ),
        system=system_prompt_for(chat=chat, user=user),
        tools=tools,
        max_tokens=route.max_output_tokens,
    )
    return Prepared(route, request, user.pk, str(chat.pk), reply.model_id)
