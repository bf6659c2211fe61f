"""Uploads (`/api/uploads`): images a user attaches to messages (docs/api.md, *Uploads*).

`POST` stores one image checked by its bytes (`chat.services.uploads`); `GET <id>` serves it to
its owner only. Same conventions as `chat.api` (session auth, CSRF on the write, JSON errors).

A body far over the limit never gets here under `serve`: the web process refuses it while reading
(REQUEST_BODY_MAX_BYTES, config.daphne_server). The checks below hold the image to its exact
limit, and guard under any other server.
"""

from __future__ import annotations

import uuid

from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.utils.cache import add_never_cache_headers
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from accounts.models import User
from chat.api import BadRequest, json_endpoint
from chat.models import Upload
from chat.services.uploads import MAX_UPLOAD_BYTES, UploadRefused, upload_create, upload_json
from common.errors import error_response

MULTIPART_OVERHEAD = 64 * 1024  # boundaries and part headers around the one file


class _SizeLimit(FileUploadHandler):
    """First in the chain: drops a file once it is past the limit (so it is not copied to a
    temporary upload file whole), and says so."""

    exceeded = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        if start + len(raw_data) > MAX_UPLOAD_BYTES:
            self.exceeded = True
            raise SkipFile
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


def _too_large() -> HttpResponse:
    megabytes = MAX_UPLOAD_BYTES // (1024 * 1024)
    response = error_response(413, "too_large", f"An image may be at most {megabytes} MB.")
    add_never_cache_headers(response)
    return response


@csrf_exempt  # checked by `_upload_create`, after the size limit is in place (the check reads the body)
def uploads(request: HttpRequest) -> HttpResponse:
    """`POST /api/uploads`: one image (multipart field `file`), checked by its bytes."""
    limit = _SizeLimit(request)
    if request.method == "POST":
        declared = request.META.get("CONTENT_LENGTH") or ""
        if declared.isdecimal() and int(declared) > MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD:
            return _too_large()
        request.upload_handlers.insert(0, limit)
    return _upload_create(request, limit=limit)


@csrf_protect
@json_endpoint("POST")
def _upload_create(request: HttpRequest, user: User, limit: _SizeLimit) -> HttpResponse:
    files = request.FILES.getlist("file")
    if limit.exceeded:
        return _too_large()
    if len(files) != 1:
        raise BadRequest("Send one image as the multipart field `file`.", {"file": ["Attach one image."]})
    try:
        upload = upload_create(owner=user, file=files[0])
    except UploadRefused as refusal:
        return error_response(refusal.status, refusal.code, refusal.message, {"file": [refusal.message]})
    return JsonResponse(upload_json(upload), status=201)


@json_endpoint("GET")
def upload_file(request: HttpRequest, user: User, upload_id: uuid.UUID) -> HttpResponse:
    """`GET /api/uploads/<id>`: the image, to its owner only (another user's id is a 404)."""
    upload = get_object_or_404(Upload, pk=upload_id, owner=user)
    try:
        stored = upload.file.open("rb")
    except OSError:
        raise Http404 from None
    response = FileResponse(stored, content_type=upload.media_type)
    response["X-Content-Type-Options"] = "nosniff"
    return response
