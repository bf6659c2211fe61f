"""The frames a tab sends on a chat socket, as pydantic models: the one definition the consumer
validates against (`chat.consumers`) and the JSON Schema published beside `docs/protocol.md`
(`docs/protocol.client-frames.schema.json`, written by `client_frames_schema`).

Strict, as a protocol is: a string is not a number nor a number a string, `true` is not 1.
Keys a frame type does not name are ignored (a newer tab may send more); a key left out is None
where the field is optional. Sizes are bounded here, before anything is read from the database.
The frames Arbor sends are in `chat.frames`.
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from chat.services.turns import MAX_CONTENT_CHARACTERS
from chat.services.uploads import MAX_ATTACHMENTS
from common.schemas import text

MAX_MODEL_CHARACTERS = 200
MAX_CLIENT_ID_CHARACTERS = 100
MAX_REQ_CHARACTERS = 100
MAX_ID_CHARACTERS = 64
MAX_SEQ = 2**53  # a Redis stream id's part, and the largest integer every JSON reader keeps exactly


def _canonical_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError("must be an id (a UUID string)") from None


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


Id = Annotated[
    str,
    Field(max_length=MAX_ID_CHARACTERS, json_schema_extra={"format": "uuid"}),
    AfterValidator(_canonical_id),
]
# The tab's own tag for a frame, echoed in the answer to it.
Req = int | Annotated[float, AfterValidator(_finite)] | Annotated[str, Field(max_length=MAX_REQ_CHARACTERS)] | None
Content = text(max_length=MAX_CONTENT_CHARACTERS)
ModelId = text(max_length=MAX_MODEL_CHARACTERS)
Attachments = Annotated[list[Id], Field(max_length=MAX_ATTACHMENTS)]


class _Frame(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    req: Req = None


class SendFrame(_Frame):
    """A new message: in a new chat (no `chat_id`), at the end of one, or under `parent_id`."""

    type: Literal["send"]
    chat_id: Id | None = None
    parent_id: Id | None = None
    content: Content
    model: ModelId | None = None
    client_id: text(max_length=MAX_CLIENT_ID_CHARACTERS) | None = None  # type: ignore[valid-type]
    attachments: Attachments | None = None


class EditFrame(_Frame):
    """A user message edited: a sibling with the new content, and its reply."""

    type: Literal["edit"]
    message_id: Id
    content: Content
    model: ModelId | None = None
    attachments: Attachments | None = None


class RegenerateFrame(_Frame):
    """Another reply to the same user message."""

    type: Literal["regenerate"]
    message_id: Id
    model: ModelId | None = None


class StopFrame(_Frame):
    type: Literal["stop"]
    message_id: Id


class SwitchFrame(_Frame):
    """Another branch selected: the chat's active leaf follows it."""

    type: Literal["switch"]
    message_id: Id


class ResumeFrame(_Frame):
    """Follow a reply from after `after_seq` (0, or left out: from its first frame)."""

    type: Literal["resume"]
    message_id: Id
    after_seq: Annotated[int, Field(ge=0, le=MAX_SEQ)] | None = None


class PingFrame(_Frame):
    type: Literal["ping"]


ClientFrame = Annotated[
    SendFrame | EditFrame | RegenerateFrame | StopFrame | SwitchFrame | ResumeFrame | PingFrame,
    Field(discriminator="type"),
]
FRAME_TYPES: tuple[str, ...] = tuple(
    get_args(model.model_fields["type"].annotation)[0] for model in get_args(get_args(ClientFrame)[0])
)

_frame = TypeAdapter(ClientFrame)
_req = TypeAdapter(Req, config=ConfigDict(strict=True))


class FrameRefused(Exception):
    """A frame that is not one of the protocol's: `code` is `unknown_type` or `bad_frame`."""

    def __init__(self, code: str, message: str, req: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.req = code, message, req


def client_frame(content: Any) -> ClientFrame:
    """The frame `content` (a decoded JSON value) is, or `FrameRefused` saying why, with the
    frame's `req` when that much of it is valid (so the answer can name the frame it refuses)."""
    if not isinstance(content, dict):
        raise FrameRefused("bad_frame", "Frames are JSON objects (text).")
    try:
        req = _req.validate_python(content.get("req"))
    except ValidationError:
        raise FrameRefused(
            "bad_frame", f"`req` must be a number or a string of at most {MAX_REQ_CHARACTERS}."
        ) from None
    kind = content.get("type")
    if kind not in FRAME_TYPES:
        # Only a string is echoed: the repr of a deeply nested `type` would itself recurse.
        named = kind[:40] if isinstance(kind, str) else type(kind).__name__
        raise FrameRefused("unknown_type", f"Unknown frame type {named!r}.", req)
    try:
        return _frame.validate_python(content)
    except ValidationError as invalid:
        raise FrameRefused("bad_frame", _said(invalid), req) from None


def _said(invalid: ValidationError) -> str:
    """The first problem, naming its field (and item) and not echoing the value."""
    error = invalid.errors(include_url=False, include_input=False)[0]
    field, *item = error["loc"][1:] or ("frame",)  # [0] is the frame's type
    where = f"`{field}`" + "".join(f" item {part}" for part in item)
    message = error["msg"].removeprefix("Value error, ")
    return f"{where}: {message}."


def client_frames_schema() -> str:
    """The JSON Schema of every frame a tab may send, as published beside docs/protocol.md."""
    schema = _frame.json_schema()
    schema["title"] = "Arbor chat socket: frames a tab sends"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
