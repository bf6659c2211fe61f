from __future__ import annotations

import pytest

from common.jsonbody import json_object


def test_a_json_object_is_read_and_an_empty_body_is_an_empty_object() -> None:
    assert json_object(b'{"title": "caf\xc3\xa9"}') == {"title": "café"}
    assert json_object(b"") == {}


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"null", b"{not json", b"\xff\xfe"])
def test_anything_but_a_json_object_is_a_value_error(body: bytes) -> None:
    with pytest.raises(ValueError, match=r"."):
        json_object(body)
