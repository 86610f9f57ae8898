"""Writes to the photo store: create (upload), soft delete, restore, purge, and generated images.

Generated images arrive in two moves: `generated_photo_register` inserts the row (pending) as soon as InvokeAI
names the image, and `generated_photo_store` lands the file once it has been downloaded and checked with
`generated_image_prepare`; `generated_photo_retrieval_failed` records a failed download, and
`generated_photo_retrieval_reset` gives a failed one a fresh set of attempts.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any, BinaryIO, TypeGuard

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone
from PIL import Image, UnidentifiedImageError

from gallery_project.errors import Conflict, NotFound
from gallery_project.permissions import Owner

from . import ai_recipe, embedded, imaging, storage
from .models import Photo, PhotoTally
from .selectors import live_photos, owned_photo_ids, owned_photos, photo_get

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
    owner: User,
    file: BinaryIO,
    filename: str,
    size: int,
    image_category: str = Photo.Category.USER,
    taken_fallback: datetime | None = None,
) -> PhotoCreated:
    """Validate an uploaded image, store it with its renditions, and insert its row as the owner's photo.

    The date taken is the file's own (`embedded.taken_at`), else `taken_fallback` (an import passes the file's
    modification time), else the upload time. An image another generator made (`ai_recipe`) is stored as
    generated, with its recipe.

    Either everything lands (original, thumbnail, display image, row) or nothing does: files are staged
    (`storage.staged`), published with the row, and removed again if anything fails.
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
        _stage_renditions(files, original, rendered.renditions)
        taken_at = embedded.taken_at(temp) or taken_fallback or now
        recipe = ai_recipe.read(temp)
        # The owner's own photos only: another account's would tell that it holds the same image.
        duplicate_of = list(live_photos(owner=owner).filter(checksum=checksum).values_list("id", flat=True))
        # Names from a fresh id: sent to a bucket before the transaction, which then holds no lock while they travel.
        files.upload()
        with transaction.atomic():
            photo = Photo.objects.create(
                id=photo_id,
                owner=owner,
                filename=filename[:255],
                width=rendered.width,
                height=rendered.height,
                file_size=written,
                mime_type=file_type.mime_type,
                checksum=checksum,
                image_category=image_category,
                **_recipe_fields(recipe),
                local_storage_path=original,
                local_thumbnail_path=storage.thumbnail_path(original),
                taken_at=taken_at,
                created_at=now,
            )
            files.publish()
    return PhotoCreated(photo=photo, duplicate_of=duplicate_of)


def _recipe_fields(recipe: ai_recipe.Recipe | None) -> dict[str, Any]:
    """A photo's fields for the recipe another tool embedded in it, as the studio fills them for its own."""
    if recipe is None:
        return {}
    return {
        "is_generated": True,
        "generation_prompt": recipe.prompt,
        "generation_negative_prompt": recipe.negative_prompt,
        "generation_params": recipe.params,
        "seed": recipe.seed,
        "model_name": recipe.model_name,
        "model_hash": recipe.model_hash,
    }


def _stage_renditions(files: storage.StagedFiles, original: str, renditions: dict[int, bytes]) -> None:
    paths = {settings.THUMBNAIL_SIZE: storage.thumbnail_path, settings.DISPLAY_SIZE: storage.display_path}
    for size, data in renditions.items():
        files.write(paths[size](original), data)


def photo_display_rendition(*, photo: Photo) -> str:
    """The relative path of the photo's lightbox rendition, made now if it is missing.

    Uploads get theirs at upload time. Generated images are stored with their grid thumbnail only, so that the
    studio shows them the moment InvokeAI finishes them; their larger rendition is made on first view.
    A photo not retrieved yet has no path ("", which `serve_photo_file` answers with "not retrieved").
    """
    if not photo.is_available:
        return ""
    relative = storage.display_path(photo.local_storage_path)
    if not storage.exists(relative):
        file_type = imaging.file_type_for(photo.local_storage_path)
        try:
            with storage.opened(photo.local_storage_path) as source:
                name = PurePosixPath(photo.local_storage_path).name
                rendered = imaging.render(source, name, file_type, (settings.DISPLAY_SIZE,), min_side=1)
        except FileNotFoundError:
            raise NotFound("This photo's file is missing from the photo store.", code="file_missing") from None
        with storage.staged() as files:
            files.write(relative, rendered.renditions[settings.DISPLAY_SIZE])
            files.publish()
    return relative


# --- generated images ---

_PNG = imaging.file_type_for("generated.png")
# InvokeAI's smallest size (a multiple of 8 from 64 px); its images are not held to the upload minimum.
_GENERATED_MIN_SIDE = 64


@dataclass(frozen=True)
class PreparedImage:
    """A generated PNG, checked, hashed and with its grid thumbnail made: ready for `generated_photo_store`."""

    data: bytes
    checksum: str
    width: int
    height: int
    thumbnail: bytes


def _usable_thumbnail(data: bytes | None) -> TypeGuard[bytes]:
    if not data:
        return False
    try:
        with Image.open(io.BytesIO(data)) as thumbnail:
            return thumbnail.format == "WEBP" and max(thumbnail.size) <= settings.THUMBNAIL_SIZE
    except (UnidentifiedImageError, OSError):
        return False


def generated_image_prepare(*, data: bytes, name: str, thumbnail: bytes | None = None) -> PreparedImage:
    """Check that `data` is a whole PNG of a sensible size whose pixels decode, and pair it with its grid
    thumbnail.

    InvokeAI makes a WebP thumbnail of every image; given (and usable), it is kept as it is, which spares
    resampling and encoding one here. The image is decoded in full either way: a PNG whose chunks are intact
    can still hold pixel data that does not decode, and stored, it would fail at every view. Touches neither
    disk nor database: safe to call from several threads.
    """
    source = io.BytesIO(data)
    try:
        if _usable_thumbnail(thumbnail):
            width, height = imaging.verify(source, name, _PNG, min_side=_GENERATED_MIN_SIDE)
        else:
            rendered = imaging.render(source, name, _PNG, (settings.THUMBNAIL_SIZE,), min_side=_GENERATED_MIN_SIDE)
            width, height, thumbnail = rendered.width, rendered.height, rendered.renditions[settings.THUMBNAIL_SIZE]
    except imaging.ImageRejected as exc:
        # The refusal's advice is for someone uploading a file; here nobody can re-export anything.
        if exc.code == "corrupt_image":
            what = f"a damaged {name}: its pixel data does not decode ({exc.details.get('reason', 'unreadable')})"
        else:
            what = f"{name} in a form the gallery does not store ({exc.code})"
        raise imaging.ImageRejected(
            f"InvokeAI sent {what}. It was not stored; a later download may get a whole copy.",
            code=exc.code,
            details=exc.details,
        ) from None
    return PreparedImage(
        data=data,
        checksum=hashlib.sha256(data).hexdigest(),
        width=width,
        height=height,
        thumbnail=thumbnail,
    )


def generated_photo_register(
    *,
    owner_id: int | None,
    invoke_id: str,
    prompt: str,
    negative_prompt: str,
    params: dict[str, Any],
    seed: int | None,
    model_key: str,
    model_hash: str,
    model_name: str,
    source_image_id: uuid.UUID | str | None = None,
    image_category: str = Photo.Category.GENERAL,
) -> tuple[Photo, bool]:
    """The photo of InvokeAI image `invoke_id`, inserted as pending if new; (photo, created). It belongs to
    `owner_id`, the owner of the studio session that made it (a ControlNet's processed image is `control`).

    Idempotent: the unique invoke_id makes a second call (a resumed follower, two at once) return the same row.
    Its date taken is when InvokeAI named the image, a moment after it made it.
    """
    now = timezone.now()
    return Photo.objects.get_or_create(
        invoke_id=invoke_id,
        defaults={
            "owner_id": owner_id,
            "is_generated": True,
            "image_category": image_category,
            "mime_type": _PNG.mime_type,
            "generation_prompt": prompt,
            "generation_negative_prompt": negative_prompt,
            "generation_params": params,
            "seed": seed,
            "model_key": model_key,
            "model_hash": model_hash,
            "model_name": model_name,
            "source_image_id": source_image_id,
            "retrieval_status": Photo.RetrievalStatus.PENDING,
            "taken_at": now,
            "created_at": now,
        },
    )


def generated_photo_store(*, photo_id: uuid.UUID, image: PreparedImage, relative: str) -> Photo | None:
    """Land a downloaded image and its thumbnail at `relative`, and mark the photo retrieved.

    Returns None when there was nothing to store: the photo is already retrieved (another worker won) or gone.
    """
    with storage.staged() as files:
        files.write(relative, image.data)
        _stage_renditions(files, relative, {settings.THUMBNAIL_SIZE: image.thumbnail})
        with transaction.atomic():
            stored = (
                Photo.objects.filter(pk=photo_id)
                .exclude(retrieval_status=Photo.RetrievalStatus.COMPLETED)
                .update(
                    width=image.width,
                    height=image.height,
                    file_size=len(image.data),
                    checksum=image.checksum,
                    local_storage_path=relative,
                    local_thumbnail_path=storage.thumbnail_path(relative),
                    retrieval_status=Photo.RetrievalStatus.COMPLETED,
                    retrieval_attempts=F("retrieval_attempts") + 1,
                    last_retrieval_attempt=timezone.now(),
                    retrieval_error="",
                )
            )
            if stored:
                # Not uploaded before the UPDATE: two workers storing one image share its name, and only the one
                # that claimed the row may write it (or, failing, delete it). The row stays locked meanwhile.
                files.publish()
    return Photo.objects.get(pk=photo_id) if stored else None


def generated_photo_retrieval_failed(*, photo_id: uuid.UUID, error: str) -> None:
    """Count a failed download; the photo shows `error` until a retry succeeds."""
    Photo.objects.filter(pk=photo_id).exclude(retrieval_status=Photo.RetrievalStatus.COMPLETED).update(
        retrieval_status=Photo.RetrievalStatus.FAILED,
        retrieval_attempts=F("retrieval_attempts") + 1,
        last_retrieval_attempt=timezone.now(),
        retrieval_error=error[:2000],
    )


def generated_photo_retrieval_reset(*, photo_id: uuid.UUID | str) -> Photo:
    """Give a generated photo whose download failed (or stalled) a fresh set of attempts (the caller has
    checked that the acting user may)."""
    photo = Photo.objects.get(pk=photo_id)
    if not photo.is_generated or photo.retrieval_status == Photo.RetrievalStatus.COMPLETED:
        raise Conflict(
            "Only a generated photo whose download from InvokeAI failed can be retried.",
            code="nothing_to_retry",
            details={"retrieval_status": photo.retrieval_status},
        )
    Photo.objects.filter(pk=photo.pk).update(
        retrieval_status=Photo.RetrievalStatus.PENDING, retrieval_attempts=0, retrieval_error=""
    )
    photo.refresh_from_db()
    return photo


def _selection_copies(photo: Photo) -> list[str]:
    return storage.selection_copies(photo.local_storage_path, photo.id, timezone.localdate(photo.created_at))


def generated_photo_selection_copy(*, photo_id: uuid.UUID) -> list[str]:
    """Copy a chosen variant to its session's selected/ and to completed/{day}/; return the copies' paths."""
    photo = Photo.objects.get(pk=photo_id)
    copies = _selection_copies(photo)
    if not photo.is_available or not copies:
        raise Conflict("Only a downloaded generated image can be chosen.", code="not_retrieved")
    data = storage.read_bytes(photo.local_storage_path)
    with storage.staged() as files:
        for relative in copies:
            files.write(relative, data)
        files.publish()
    return copies


def generated_photo_selection_remove(*, photo_id: uuid.UUID) -> None:
    """Remove the copies of a variant that is no longer the chosen one, once that has committed."""
    photo = Photo.objects.get(pk=photo_id)
    storage.delete_files_on_commit(_selection_copies(photo))


def photo_delete(*, photo_id: uuid.UUID | str, owner: Owner) -> Photo:
    """Move one of the owner's photos to the trash; it can be restored until the trash is purged."""
    photo = photo_get(photo_id=photo_id, owner=owner, include_deleted=True)
    if photo.deleted_at is None:
        photo.deleted_at = timezone.now()
        photo.save(update_fields=["deleted_at"])
    return photo


def photo_restore(*, photo_id: uuid.UUID | str, owner: Owner) -> Photo:
    photo = photo_get(photo_id=photo_id, owner=owner, include_deleted=True)
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
        photos = list(queryset.values_list("id", "local_storage_path", "created_at"))
        Photo.objects.filter(pk__in=[pk for pk, _, _ in photos]).delete()
        storage.delete_files_on_commit(
            path
            for pk, original, created in photos
            if original
            for path in [
                *storage.renditions_of(original),
                *storage.selection_copies(original, pk, timezone.localdate(created)),
            ]
        )
    return len(photos)


def photo_purge_expired(*, now: datetime | None = None) -> int:
    """Purge photos that have been in the trash for longer than TRASH_DAYS."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.TRASH_DAYS)
    purged = 0
    while ids := list(Photo.objects.filter(deleted_at__lt=cutoff).values_list("id", flat=True)[:500]):
        purged += photo_purge(photo_ids=ids)
    return purged


def trash_empty(*, owner: Owner) -> int:
    """Purge the owner's trash (other accounts' trash is theirs to empty)."""
    purged = 0
    trashed = owned_photos(owner).filter(deleted_at__isnull=False)
    while ids := list(trashed.values_list("id", flat=True)[:500]):
        purged += photo_purge(photo_ids=ids)
    return purged


def photo_tallies_rebuild() -> None:
    """Recount every owner's tallies from the rows (the triggers keep them exact; a flush can leave them wrong).

    `manage.py flush` (and the test runner after each transactional test) empties the tables one by one; on
    SQLite it empties the tallies before the photos, and the photos' delete triggers then leave negative counts.
    """
    live, trashed = Q(deleted_at=None), Q(deleted_at__isnull=False)
    counts = (
        Photo.objects.exclude(owner=None)
        .values("owner")
        .annotate(
            live=Count("pk", filter=live),
            live_generated=Count("pk", filter=live & Q(is_generated=True)),
            trash=Count("pk", filter=trashed),
        )
    )
    names = (PhotoTally.LIVE, PhotoTally.LIVE_GENERATED, PhotoTally.TRASH)
    with transaction.atomic():
        PhotoTally.objects.all().delete()
        PhotoTally.objects.bulk_create(
            PhotoTally(owner_id=row["owner"], name=name, count=row[name])  # type: ignore[literal-required]
            for row in counts
            for name in names
        )


@dataclass(frozen=True)
class TakenBackfill:
    read: int
    changed: int


def photo_taken_backfill(*, batch_size: int = 500, progress: Callable[[int], object] | None = None) -> TakenBackfill:
    """Give every uploaded or imported photo still dated by when it was added the date its file holds.

    Photos from before dates were read have taken_at = created_at (migration 0004); studio images are dated
    when made and are left alone. Walks by id, a batch at a time, so it holds no long transaction and a
    second run only rereads the files that had no date.
    """
    todo = Photo.objects.filter(taken_at=F("created_at"), invoke_id="").exclude(local_storage_path="").order_by("pk")
    read = changed = 0
    last: uuid.UUID | None = None
    while batch := list(
        (todo.filter(pk__gt=last) if last else todo).values_list("pk", "local_storage_path")[:batch_size]
    ):
        for pk, relative in batch:
            try:
                with storage.opened(relative) as handle:
                    found = embedded.taken_at(handle)
            except FileNotFoundError:
                found = None
            if found is not None:
                changed += Photo.objects.filter(pk=pk, taken_at=F("created_at")).update(taken_at=found)
        read += len(batch)
        last = batch[-1][0]
        if progress:
            progress(len(batch))
    return TakenBackfill(read=read, changed=changed)


class BulkAction(StrEnum):
    TRASH = "trash"
    RESTORE = "restore"
    FAVORITE = "favorite"
    UNFAVORITE = "unfavorite"


def photo_bulk_update(*, owner: Owner, photo_ids: Sequence[uuid.UUID], action: BulkAction) -> int:
    """Trash, restore, favourite or unfavourite the owner's photos at once; return how many changed.

    One UPDATE: the tally triggers count the moves to and from the trash as they do one photo's.
    """
    wanted = owned_photo_ids(owner=owner, photo_ids=photo_ids)
    photos = owned_photos(owner).filter(pk__in=wanted)
    if action == BulkAction.TRASH:
        return photos.filter(deleted_at=None).update(deleted_at=timezone.now())
    if action == BulkAction.RESTORE:
        return photos.filter(deleted_at__isnull=False).update(deleted_at=None)
    favorite = action == BulkAction.FAVORITE
    return photos.exclude(is_favorite=favorite).update(is_favorite=favorite)


def photo_file_in(*, photo: Photo, formats: Collection[str]) -> tuple[bytes, str]:
    """The photo's file for a tool that reads only `formats` (Pillow's names), and its extension: the original
    if it is in one of them, else a JPEG (or PNG) copy made from it (`imaging.portable_copy`)."""
    file_type = imaging.file_type_for(photo.local_storage_path)
    if file_type.pil_format in formats:
        return storage.read_bytes(photo.local_storage_path), file_type.ext
    with storage.opened(photo.local_storage_path) as source:
        name = photo.filename or PurePosixPath(photo.local_storage_path).name
        return imaging.portable_copy(source, name, file_type)
