"""Downloads of generated images from an InvokeAI that sends far more than an image: they are cut off at
INVOKEAI_MAX_IMAGE_BYTES (the image) or 1 MiB (the thumbnail), not held whole by the worker."""

from __future__ import annotations

import pytest
from werkzeug.wrappers import Response

from generation import services
from photos.models import Photo
from testing.hostile_http import Streamed
from testing.media import stored_image

from .conftest import step_request

pytestmark = pytest.mark.django_db


def endless(content_type: str, body: Streamed):
    return lambda real: Response(body, content_type=content_type, direct_passthrough=True)


def test_a_300_mb_image_is_a_failed_download(invokeai, sd1, session, follow, settings):
    settings.INVOKEAI_MAX_IMAGE_BYTES = 1 << 20
    body = Streamed(total=300 << 20)
    invokeai.rewrite_answers(r"^/api/v1/images/i/.+/full$", endless("image/png", body))
    step = services.step_create(session_id=session.pk, owner=session.owner, request=step_request(sd1, batch_size=1))
    follow(step.pk)
    [photo] = Photo.objects.all()
    assert photo.retrieval_status == "failed"
    assert "with more than 1024 KiB" in photo.retrieval_error
    assert photo.local_storage_path == ""
    assert body.finished.wait(10) and body.sent < 64 << 20


def test_a_300_mb_thumbnail_is_replaced_by_one_made_from_the_image(invokeai, sd1, session, follow):
    body = Streamed(total=300 << 20)
    invokeai.rewrite_answers(r"^/api/v1/images/i/.+/thumbnail$", endless("image/webp", body))
    step = services.step_create(session_id=session.pk, owner=session.owner, request=step_request(sd1, batch_size=1))
    follow(step.pk)
    [photo] = Photo.objects.all()
    assert photo.retrieval_status == "completed"
    with stored_image(photo.local_thumbnail_path) as thumbnail:
        assert thumbnail.format == "WEBP" and thumbnail.size == (64, 64)
    assert body.finished.wait(10) and body.sent < 64 << 20
