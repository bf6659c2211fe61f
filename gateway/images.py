"""Images in an OpenAI request's content parts, as the contract's `ImagePart`.

Only data URLs (`data:image/png;base64,…`) are taken: Arbor fetches no address a caller names
(no request to an internal host on anyone's behalf). The bytes must be a PNG, JPEG, WebP or
GIF by their own signature (what they say, not what the URL claims), at most the size an upload
may be.
"""

from __future__ import annotations

import base64
import binascii
import re

from chat.services.uploads import MAX_UPLOAD_BYTES, image_type
from common.errors import ArborError
from providers.contract import ImagePart

_DATA_URL = re.compile(r"data:(?P<claimed>[\w/+.-]*)?;base64,(?P<data>.*)", re.DOTALL)


def image_part(url: str) -> ImagePart:
    match = _DATA_URL.fullmatch(url)
    if match is None:
        raise ArborError(
            "Send images as data URLs (data:image/png;base64,…): Arbor fetches no image addresses.",
            code="unsupported_image",
            fields={"image_url": []},
        )
    data = match["data"]
    if len(data) > (MAX_UPLOAD_BYTES * 4) // 3 + 4:
        raise ArborError(f"An image may be at most {MAX_UPLOAD_BYTES // (1024 * 1024)} MB.", fields={"image_url": []})
    try:
        head = base64.b64decode(data[:24], validate=True)
        base64.b64decode(data, validate=True)  # the whole of it must be base64, not only its start
    except (binascii.Error, ValueError):
        raise ArborError("The image is not base64.", fields={"image_url": []}) from None
    media_type = image_type(head)
    if media_type is None:
        raise ArborError("Send a PNG, JPEG, WebP or GIF image.", code="unsupported_image", fields={"image_url": []})
    return ImagePart(media_type=media_type, data_base64=data)
