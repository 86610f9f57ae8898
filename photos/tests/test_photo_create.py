from __future__ import annotations

import hashlib
import io
import re

import pytest
from django.db import IntegrityError
from django.utils import timezone

from gallery_project.errors import AppError
from photos import services, storage
from photos.models import Photo
from testing.media import stored_bytes, stored_image, stored_names

from .images import image_bytes, jpeg_with_orientation

pytestmark = pytest.mark.django_db


def test_upload_lands_in_the_layout_with_webp_renditions(upload, _photo_store):
    data = image_bytes("JPEG", (4000, 3000))
    photo = upload("../../etc/passwd.jpg", data)

    day = timezone.localdate(photo.created_at).isoformat()
    assert photo.local_storage_path == f"uploaded/{day}/{photo.id}.jpg"
    assert photo.local_thumbnail_path == f"thumbnails/uploaded/{day}/{photo.id}.webp"
    assert stored_names() == sorted(
        [
            f"uploaded/{day}/{photo.id}.jpg",
            f"thumbnails/uploaded/{day}/{photo.id}.webp",
            f"thumbnails/uploaded/{day}/{photo.id}.display.webp",
        ]
    )
    assert stored_bytes(photo.local_storage_path) == data
    assert photo.checksum == hashlib.sha256(data).hexdigest()
    assert (photo.width, photo.height, photo.file_size) == (4000, 3000, len(data))
    assert photo.filename == "../../etc/passwd.jpg"  # kept for display only; no path uses it

    with stored_image(photo.local_thumbnail_path) as thumb:
        assert thumb.format == "WEBP"
        assert thumb.size == (300, 225)
    with stored_image(storage.display_path(photo.local_storage_path)) as display:
        assert display.format == "WEBP"
        assert display.size == (1600, 1200)


def test_small_image_is_not_upscaled(upload, _photo_store):
    photo = upload("small.png", image_bytes("PNG", (200, 120)))
    with stored_image(photo.local_thumbnail_path) as thumb:
        assert thumb.size == (200, 120)


def test_exif_orientation_is_applied(upload, _photo_store):
    # Stored landscape, displayed portrait (orientation 6: rotate 90 degrees clockwise).
    photo = upload("phone.jpg", jpeg_with_orientation((800, 600), 6))

    assert (photo.width, photo.height) == (600, 800)
    with stored_image(photo.local_thumbnail_path) as thumb:
        assert thumb.size == (225, 300)


def test_transparency_survives_in_the_thumbnail(upload, _photo_store):
    photo = upload("logo.png", image_bytes("PNG", (300, 300), color=(0, 0, 0, 0), alpha=True))
    with stored_image(photo.local_thumbnail_path) as thumb:
        assert thumb.mode == "RGBA"


def test_duplicates_are_reported(upload, user):
    data = image_bytes()
    first = upload("one.jpg", data)
    created = services.photo_create(owner=user, file=io.BytesIO(data), filename="again.jpg", size=len(data))

    assert created.duplicate_of == [first.id]
    assert Photo.objects.count() == 2


def test_trashed_photo_is_not_reported_as_duplicate(upload, user):
    data = image_bytes()
    services.photo_delete(owner=user, photo_id=upload("one.jpg", data).id)
    created = services.photo_create(owner=user, file=io.BytesIO(data), filename="again.jpg", size=len(data))
    assert created.duplicate_of == []


def test_failure_after_the_files_are_written_leaves_nothing(monkeypatch, _photo_store, user):
    """Inject a failure between writing the files and inserting the row."""

    def fail(**kwargs):
        raise IntegrityError("disk full, database gone, whatever")

    monkeypatch.setattr(Photo.objects, "create", fail)
    data = image_bytes()
    with pytest.raises(IntegrityError):
        services.photo_create(owner=user, file=io.BytesIO(data), filename="a.jpg", size=len(data))

    assert stored_names() == []
    monkeypatch.undo()
    assert Photo.objects.count() == 0


def test_failure_after_the_files_are_renamed_into_place_leaves_nothing(monkeypatch, _photo_store, user):
    for kind in storage.StagedFiles.__subclasses__():

        def publish_then_fail(self, real_publish=kind.publish):
            real_publish(self)
            assert stored_names(), "the files were in place before the failure"
            raise OSError("the transaction failed to commit")

        monkeypatch.setattr(kind, "publish", publish_then_fail)
    data = image_bytes()
    with pytest.raises(OSError, match="failed to commit"):
        services.photo_create(owner=user, file=io.BytesIO(data), filename="a.jpg", size=len(data))

    assert stored_names() == []
    assert Photo.objects.count() == 0


def test_refused_upload_leaves_no_partial_file(_photo_store, user):
    data = b"\x89PNG\r\n\x1a\n" + b"\x00" * 500
    with pytest.raises(AppError):
        services.photo_create(owner=user, file=io.BytesIO(data), filename="bad.png", size=len(data))
    assert stored_names() == []


@pytest.mark.local_media
def test_stored_paths_never_escape_the_store():
    with pytest.raises(ValueError, match="outside"):
        storage.absolute("../secret")
    with pytest.raises(ValueError, match="outside"):
        storage.absolute("/etc/passwd")


def test_names_come_from_ids_only(upload):
    photo = upload('<script>"evil".jpg')
    assert re.fullmatch(r"uploaded/\d{4}-\d{2}-\d{2}/[0-9a-f-]{36}\.jpg", photo.local_storage_path)
