"""The tools a model calls to write documents (registered into chat's tool registry by
`ArtifactsConfig.ready()`): create_document, update_document, request_suggestions.

Thin: arguments are checked here (ToolFailure with a message the model can act on), the content
is written by `artifacts.generation`, saved by `artifacts.services`. Live frames on the reply's
stream, per document:

    {"type": "artifact_start", "document_id", "operation": "create"|"update", "kind", "title",
     "language", "version"}
    {"type": "artifact_delta", "document_id", "text"}          (append; batched ~30 ms)
    {"type": "artifact_done", "document_id", "status": "complete", "version", "content"?}
    {"type": "artifact_done", "document_id", "status": "error", "error": {"code", "message"}}

`content` in a complete `artifact_done` replaces the streamed text when saving cleaned it (a
fence the model wrapped around everything). Nothing is saved when a write fails.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.urls import reverse

from artifacts.generation import (
    WriteFailed,
    generation_settle,
    request_for_create,
    request_for_update,
    text_write,
)
from artifacts.kinds import Kind, KindError, kind_handler, kind_names
from artifacts.kinds.base import MAX_TITLE_CHARS
from chat.generation import sync_db
from chat.tools import ToolContext, ToolFailure, ToolResult
from providers.contract import ToolSpec
from usage.services import ModelCall

MAX_DESCRIPTION_CHARS = 4_000
PREVIEW_CHARS = 1_000  # of a written document, in the result the model reads


def _text(arguments: dict[str, Any], name: str, limit: int, *, required: bool = True) -> str:
    value = arguments.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise ToolFailure(f"`{name}` is required: a non-empty string.")
    if len(value.strip()) > limit:
        raise ToolFailure(f"`{name}` holds at most {limit:,} characters.")
    return value.strip()


def _document_id(arguments: dict[str, Any]) -> str:
    return _text(arguments, "id", 64)


def _preview(content: str) -> str:
    return content if len(content) <= PREVIEW_CHARS else f"{content[:PREVIEW_CHARS]}…"


async def _produce(
    context: ToolContext,
    kind: Kind,
    route: Any,
    request: Any,
    document_id: str,
    *,
    prompt: str,
) -> tuple[str, bytes | None, ModelCall | None]:
    """The content to save (and the picture, for images) and what the model wrote. On failure
    the tabs get an error `artifact_done`, the tokens spent are booked, and ToolFailure says why."""
    written: ModelCall | None = None
    try:
        if kind.text_generated:
            written = await text_write(route=route, request=request, emit=context.emit, document_id=document_id)
            return kind.validate(kind.clean(written.text)), None, written
        content = kind.validate(prompt)
        picture, written = await kind.make_file(route=route, prompt=content)  # type: ignore[attr-defined]
        return content, picture, written
    except (WriteFailed, KindError) as failure:
        code = failure.code if isinstance(failure, WriteFailed) else "invalid_content"
        if isinstance(failure, WriteFailed) and failure.written is not None:
            written = failure.written
        if written is not None:  # the tokens were spent even though nothing is saved
            await sync_db(generation_settle)(written=written, outcome=code, **_settle(context, route))
        error = {"code": code, "message": failure.message}
        await context.emit({"type": "artifact_done", "document_id": document_id, "status": "error", "error": error})
        raise ToolFailure(failure.message) from None


def _settle(context: ToolContext, route: Any) -> dict[str, Any]:
    return {
        "user_id": context.user_id,
        "model_id": context.model_id,
        "kind": "artifact",
        "chat_id": context.chat_id,
        "message_id": context.message_id,
    }


class CreateDocument:
    spec = ToolSpec(
        name="create_document",
        description=(
            "Create a document the user keeps beside the chat, with its own history of versions: write it "
            "there instead of in your reply when the user wants something to keep, reuse or edit (an essay, "
            "a script, a table, a picture). Its content is written by a separate step from the conversation "
            "so far and shown to the user as it is written; you get its id back. Kinds: "
            + "; ".join(kind_handler(name).summary for name in kind_names())
            + "."
        ),
        parameters={
            "type": "object",
            "properties": {
                "title": {"type": "string", "description": "A short title for the document."},
                "kind": {"type": "string", "enum": list(kind_names())},
                "language": {"type": "string", "description": "For code: the programming language, e.g. python."},
                "description": {
                    "type": "string",
                    "description": "Optional: what it should contain (for an image: what to draw).",
                },
            },
            "required": ["title", "kind"],
        },
    )

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        title = _text(arguments, "title", MAX_TITLE_CHARS)
        description = _text(arguments, "description", MAX_DESCRIPTION_CHARS, required=False)
        try:
            kind = kind_handler(arguments.get("kind"))
            language = kind.language_clean(arguments.get("language"))
        except KindError as error:
            raise ToolFailure(error.message) from None
        document_id = str(uuid.uuid4())
        try:
            route, request = await sync_db(request_for_create)(
                user_id=context.user_id,
                message_id=context.message_id,
                model_id=context.model_id,
                kind=kind,
                title=title,
                language=language,
                description=description,
            )
        except WriteFailed as failure:
            raise ToolFailure(failure.message) from None
        await context.emit(
            {
                "type": "artifact_start",
                "document_id": document_id,
                "operation": "create",
                "kind": kind.name,
                "title": title,
                "language": language,
                "version": 1,
            }
        )
        content, picture, written = await _produce(
            context, kind, route, request, document_id, prompt=description or title
        )
        from artifacts.services import document_create

        await sync_db(document_create)(
            document_id=document_id,
            owner_id=context.user_id,
            chat_id=context.chat_id,
            message_id=context.message_id,
            kind=kind.name,
            title=title,
            language=language,
            content=content,
            file_data=picture,
        )
        if written is not None:
            await sync_db(generation_settle)(written=written, **_settle(context, route))
        await context.emit(_done_frame(document_id, 1, content, written, picture=picture is not None))
        data = {"document_id": document_id, "kind": kind.name, "title": title, "language": language, "version": 1}
        summary = f"Created the {kind.name} document {title!r} (id {document_id}), version 1"
        if picture is not None:
            return ToolResult(f"{summary}: the picture is shown to the user.", data=data)
        return ToolResult(f"{summary}, {len(content):,} characters. It begins:\n{_preview(content)}", data=data)


def _done_frame(
    document_id: str, number: int, content: str, written: ModelCall | None, *, picture: bool
) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "artifact_done", "document_id": document_id, "status": "complete"}
    frame["version"] = number
    if picture:
        frame["download_url"] = f"{reverse('artifacts:download', args=[document_id])}?version={number}"
    if written is not None and written.text and content != written.text:
        frame["content"] = content  # saving cleaned the streamed text: show what was saved
    return frame


def _owned(context: ToolContext, document_id: str) -> Any:
    from artifacts.selectors import document_owned

    document = document_owned(user_id=context.user_id, document_id=document_id)
    if document is None:
        raise ToolFailure(f"There is no document with the id {document_id[:64]!r} in this user's chats.")
    return document


class UpdateDocument:
    spec = ToolSpec(
        name="update_document",
        description=(
            "Revise a document made with create_document: describe the change; the whole document is "
            "rewritten from its latest version and saved as its next version (earlier ones are kept)."
        ),
        parameters={
            "type": "object",
            "properties": {
                "id": {"type": "string", "description": "The document's id (from create_document)."},
                "description": {"type": "string", "description": "The change to make."},
            },
            "required": ["id", "description"],
        },
    )

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        from artifacts.selectors import version_latest
        from artifacts.services import version_add

        document_id = _document_id(arguments)
        description = _text(arguments, "description", MAX_DESCRIPTION_CHARS)
        document = await sync_db(_owned)(context, document_id)
        document_id = str(document.pk)
        kind = kind_handler(document.kind)
        current = await sync_db(version_latest)(document=document)
        try:
            route, request = await sync_db(request_for_update)(
                user_id=context.user_id,
                model_id=context.model_id,
                kind=kind,
                title=document.title,
                language=document.language,
                current=current.content,
                description=description,
            )
        except WriteFailed as failure:
            raise ToolFailure(failure.message) from None
        await context.emit(
            {
                "type": "artifact_start",
                "document_id": document_id,
                "operation": "update",
                "kind": document.kind,
                "title": document.title,
                "language": document.language,
                "version": document.version_count + 1,
            }
        )
        prompt = f"{current.content}\n\nChange: {description}" if not kind.text_generated else ""
        content, picture, written = await _produce(context, kind, route, request, document_id, prompt=prompt)
        version = await sync_db(version_add)(
            document=document, content=content, author="model", message_id=context.message_id, file_data=picture
        )
        if written is not None:
            await sync_db(generation_settle)(written=written, **_settle(context, route))
        await context.emit(_done_frame(document_id, version.number, content, written, picture=picture is not None))
        data = {
            "document_id": document_id,
            "kind": document.kind,
            "title": document.title,
            "language": document.language,
            "version": version.number,
        }
        summary = f"Updated {document.title!r} (id {document_id}) to version {version.number}"
        if picture is not None:
            return ToolResult(f"{summary}: the new picture is shown to the user.", data=data)
        return ToolResult(f"{summary}, {len(content):,} characters. It begins:\n{_preview(content)}", data=data)


class RequestSuggestions:
    spec = ToolSpec(
        name="request_suggestions",
        description=(
            "Ask for review suggestions on a text, code or sheet document: a reviewer proposes specific "
            "replacements with a reason each, shown beside the document for the user to accept or reject. "
            "They arrive after your reply; you do not see them."
        ),
        parameters={
            "type": "object",
            "properties": {"id": {"type": "string", "description": "The document's id."}},
            "required": ["id"],
        },
    )

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        from artifacts.services import suggestions_request

        document_id = _document_id(arguments)
        document = await sync_db(_owned)(context, document_id)
        if not kind_handler(document.kind).text_generated:
            raise ToolFailure(f"Suggestions are made for text documents; {document.title!r} is a picture.")
        batch = str(uuid.uuid4())
        number = await sync_db(suggestions_request)(document=document, batch=batch)
        return ToolResult(
            f"Suggestions for {document.title!r} (version {number}) were requested; they appear beside the "
            "document as they are written.",
            data={"document_id": str(document.pk), "version": number, "batch": batch},
        )


TOOLS = (CreateDocument(), UpdateDocument(), RequestSuggestions())
