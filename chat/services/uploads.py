"""Images a user attaches to messages: checked by their bytes, stored in media storage, referenced
from a user message as `{"type": "image", "upload_id": …, "media_type": …}` parts, and read back
(as base64) only when a model is sent the turn that holds them.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable
from typing import Any

from django.core.files.uploadedfile import UploadedFile

from accounts.models import User
from chat.models import Upload
from chat.parts import ImagePart, image_part

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_ATTACHMENTS = 4
# What an attached image is reckoned to cost in input tokens (vendors charge ~85-1,600 by size).
IMAGE_TOKENS = 1_000

# The signatures of the image formats every vendor takes (what the bytes say, never the name).
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
MEDIA_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")


class UploadRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def image_type(head: bytes) -> str | None:
    """The media type of an image from its first bytes (PNG, JPEG, GIF, WebP), else None."""
    for signature, media_type in _SIGNATURES:
        if head.startswith(signature):
            return media_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def upload_create(*, owner: User, file: UploadedFile) -> Upload:
    """Store one image of `owner`'s; refused when it is too large or its bytes are no image."""
    size = file.size or 0
    if size > MAX_UPLOAD_BYTES:
        raise UploadRefused(413, "too_large", f"An image may be at most {MAX_UPLOAD_BYTES // (1024 * 1024)} MB.")
    file.seek(0)
    media_type = image_type(file.read(16))
    file.seek(0)
    if size == 0 or media_type is None:
        raise UploadRefused(400, "unsupported_type", "Attach a PNG, JPEG, WebP or GIF image.")
    upload = Upload(owner=owner, media_type=media_type, size=size)
    upload.file.save("image", file, save=True)  # the stored name is the upload's id (chat.models.upload_to)
    return upload


def upload_json(upload: Upload) -> dict[str, Any]:
    return {
        "id": str(upload.pk),
        "media_type": upload.media_type,
        "size": upload.size,
        "url": f"/api/uploads/{upload.pk}",
    }


def attachment_parts(*, owner: User, upload_ids: Iterable[str]) -> list[ImagePart] | None:
    """The image parts for `upload_ids` (in their order), or None when any is not `owner`'s."""
    ids = list(dict.fromkeys(str(upload_id) for upload_id in upload_ids))
    found = dict(Upload.objects.filter(owner=owner, pk__in=ids).values_list("pk", "media_type"))
    types = {str(pk): media_type for pk, media_type in found.items()}
    if len(types) != len(ids):
        return None
    return [image_part(upload_id, types[upload_id]) for upload_id in ids]


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def images_base64(upload_ids: Iterable[str], *, owner_id: int | None = None) -> dict[str, tuple[str, str]]:
    """upload id → (media type, base64 data), read from storage; ids that are gone (or, given
    `owner_id`, not that user's) are left out."""
    ids = [upload_id for upload_id in dict.fromkeys(upload_ids) if _is_uuid(upload_id)]
    if not ids:
        return {}
    uploads = Upload.objects.filter(pk__in=ids)
    if owner_id is not None:
        uploads = uploads.filter(owner_id=owner_id)
    images: dict[str, tuple[str, str]] = {}
    for upload in uploads:
        try:
            with upload.file.open("rb") as stored:
                data = stored.read()
        except OSError:
            continue  # the file is gone from storage: the turn is sent without it
        images[str(upload.pk)] = (upload.media_type, base64.b64encode(data).decode("ascii"))
    return images
