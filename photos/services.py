"""Writes to the photo store: create (upload), soft delete, restore, purge."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import BinaryIO

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import imaging, storage
from .models import Photo, PhotoTally
from .selectors import photo_get

_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class PhotoCreated:
    photo: Photo
    # Live photos with the same bytes; the upload is kept, and the caller tells the user.
    duplicate_of: list[uuid.UUID] = field(default_factory=list)


def _copy_hashing(source: BinaryIO, destination: BinaryIO) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := source.read(_CHUNK):
        digest.update(chunk)
        destination.write(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def photo_create(
    *,
    file: BinaryIO,
    filename: str,
    size: int,
    image_category: str = Photo.Category.USER,
) -> PhotoCreated:
    """Validate an uploaded image, store it with its renditions, and insert its row.

    Either everything lands (original, thumbnail, display image, row) or nothing does: files are written
    under temporary names, renamed into place inside the transaction, and removed again if anything fails.
    """
    file_type = imaging.file_type_for(filename)
    imaging.check_size(filename, size)
    photo_id = uuid.uuid4()
    now = timezone.now()
    original = storage.uploaded_path(photo_id, timezone.localdate(now), file_type.ext)

    with storage.staged() as files:
        temp = files.temp_path(original)
        with temp.open("wb") as out:
            if hasattr(file, "seek"):
                file.seek(0)
            checksum, written = _copy_hashing(file, out)
        # The declared size can lie (a chunked request); the bytes on disk cannot.
        imaging.check_size(filename, written)
        rendered = imaging.render(temp, filename, file_type, imaging.default_sizes())
        files.write(storage.thumbnail_path(original), rendered.renditions[settings.THUMBNAIL_SIZE])
        files.write(storage.display_path(original), rendered.renditions[settings.DISPLAY_SIZE])
        duplicate_of = list(Photo.objects.filter(checksum=checksum, deleted_at=None).values_list("id", flat=True))
        with transaction.atomic():
            photo = Photo.objects.create(
                id=photo_id,
                filename=filename[:255],
                width=rendered.width,
                height=rendered.height,
                file_size=written,
                mime_type=file_type.mime_type,
                checksum=checksum,
                image_category=image_category,
                local_storage_path=original,
                local_thumbnail_path=storage.thumbnail_path(original),
                created_at=now,
            )
            files.publish()
    return PhotoCreated(photo=photo, duplicate_of=duplicate_of)


def photo_delete(*, photo_id: uuid.UUID | str) -> Photo:
    """Move a photo to the trash; it can be restored until the trash is purged."""
    photo = photo_get(photo_id=photo_id, include_deleted=True)
    if photo.deleted_at is None:
        photo.deleted_at = timezone.now()
        photo.save(update_fields=["deleted_at"])
    return photo


def photo_restore(*, photo_id: uuid.UUID | str) -> Photo:
    photo = photo_get(photo_id=photo_id, include_deleted=True)
    if photo.deleted_at is not None:
        photo.deleted_at = None
        photo.save(update_fields=["deleted_at"])
    return photo


def photo_purge(*, photo_ids: list[uuid.UUID], only_trashed: bool = True) -> int:
    """Delete photos for good (by default only those in the trash): rows now, files once that has committed."""
    queryset = Photo.objects.filter(pk__in=photo_ids)
    if only_trashed:
        queryset = queryset.filter(deleted_at__isnull=False)
    with transaction.atomic():
        photos = list(queryset.values_list("id", "local_storage_path"))
        Photo.objects.filter(pk__in=[pk for pk, _ in photos]).delete()
        storage.delete_files_on_commit(
            path for _, original in photos if original for path in storage.renditions_of(original)
        )
    return len(photos)


def photo_purge_expired(*, now: datetime | None = None) -> int:
    """Purge photos that have been in the trash for longer than TRASH_DAYS."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.TRASH_DAYS)
    purged = 0
    while ids := list(Photo.objects.filter(deleted_at__lt=cutoff).values_list("id", flat=True)[:500]):
        purged += photo_purge(photo_ids=ids)
    return purged


def trash_empty() -> int:
    purged = 0
    while ids := list(Photo.objects.filter(deleted_at__isnull=False).values_list("id", flat=True)[:500]):
        purged += photo_purge(photo_ids=ids)
    return purged


def photo_tallies_rebuild() -> None:
    """Recount the tallies from the rows (the triggers keep them exact; a flush can leave them wrong).

    `manage.py flush` (and the test runner after each transactional test) empties the tables one by one; on
    SQLite it empties the tallies before the photos, and the photos' delete triggers then leave negative counts.
    """
    live = Photo.objects.filter(deleted_at=None)
    counts = {
        PhotoTally.LIVE: live.count(),
        PhotoTally.LIVE_GENERATED: live.filter(is_generated=True).count(),
        PhotoTally.TRASH: Photo.objects.exclude(deleted_at=None).count(),
    }
    with transaction.atomic():
        for name, count in counts.items():
            PhotoTally.objects.update_or_create(name=name, defaults={"count": count})
