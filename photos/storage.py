"""Where photo files live, and how they get there without half-written files.

They live in the storage named "media" in STORAGES: the local disk under DATA_DIR/photos by default, or an
S3-compatible bucket through django-storages when AWS_STORAGE_BUCKET_NAME is set (`photos.s3`). Every read,
write and delete of a photo file goes through this module, so the rest of the app never asks which it is.

Layout (relative names, the same on disk and as the bucket's keys):

    uploaded/{yyyy-mm-dd}/{photo_id}.{ext}
    generated/sessions/{session_id}/{step_id}/variants/{photo_id}.png
    generated/sessions/{session_id}/{step_id}/selected/{photo_id}.png
    generated/completed/{yyyy-mm-dd}/{photo_id}.png
    thumbnails/<the same path>.webp            300 px, the grid
    thumbnails/<the same path>.display.webp    1600 px, the lightbox
    previews/{step_id}/{item_id}.jpg           a running item's latest denoising preview

Every name comes from ids and dates, never from what a client sent. A generated photo lives at its variant
path; choosing it in the studio copies it to `selected/` and to `completed/{the day it was generated}/`, so those
copies can always be found again from the photo (`selection_copies`) and are deleted with it.

Atomic writes: on disk a file is written under a temporary name beside its place and renamed into it; in a bucket
an object appears only once its PUT (or multipart upload) has completed, so a reader never sees half of one there
either. Deletions wait for the transaction that removed the rows (`delete_files_on_commit`) on both.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, BinaryIO, cast

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.db import transaction

from gallery_project.errors import Unavailable

if TYPE_CHECKING:
    from .s3 import PhotoS3Storage

logger = logging.getLogger(__name__)

THUMBNAILS = "thumbnails"
PREVIEWS = "previews"


class StoreUnavailable(Unavailable):
    """The bucket did not answer, or refused: nothing was stored (or read); trying again later may work."""


def backend() -> Storage:
    return storages["media"]


def is_local() -> bool:
    """Whether photo files are on this machine's disk (then a path can be handed to sendfile or a proxy)."""
    return isinstance(backend(), FileSystemStorage)


def bucket() -> PhotoS3Storage:
    from .s3 import PhotoS3Storage

    store = backend()
    if not isinstance(store, PhotoS3Storage):
        raise TypeError(f"the media storage {type(store).__name__} is neither the local disk nor a bucket")
    return store


def root() -> Path:
    """The directory of the local photo store."""
    store = backend()
    if not isinstance(store, FileSystemStorage):
        raise TypeError("photo files are in a bucket: they have no local path")
    return Path(store.location)


def absolute(relative: str) -> Path:
    """Resolve a stored relative path, refusing anything that would escape the local photo store."""
    base = root().resolve()
    path = (base / relative).resolve()
    if not path.is_relative_to(base) or not relative:
        raise ValueError(f"path {relative!r} is outside the photo store")
    return path


def _checked(relative: str) -> str:
    """`relative` if it names a file inside the store; ValueError otherwise (as `absolute` refuses on disk)."""
    parts = PurePosixPath(relative).parts
    if not relative or relative.startswith("/") or ".." in parts or "\\" in relative:
        raise ValueError(f"path {relative!r} is outside the photo store")
    return relative


@contextlib.contextmanager
def _remote_errors(what: str) -> Iterator[None]:
    """The bucket's failures as the app's error: 503 with what failed, never a 500 with boto's traceback."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError, Boto3Error) as exc:
        logger.warning("The photo bucket failed to %s: %s", what, exc)
        raise StoreUnavailable(
            f"The photo store (S3 bucket {settings.AWS_STORAGE_BUCKET_NAME}) could not {what}: {exc}. Nothing was "
            "changed; try again in a moment.",
            code="store_unavailable",
        ) from None


def exists(relative: str) -> bool:
    if is_local():
        return absolute(relative).exists()
    with _remote_errors("be read"):
        return bool(backend().exists(_checked(relative)))


@contextlib.contextmanager
def opened(relative: str) -> Iterator[BinaryIO]:
    """The stored file, open for reading and seekable (Pillow seeks); FileNotFoundError if it is missing.

    From a bucket, the object is first copied into a spooled temporary file (in memory up to the storage's
    max_memory_size, on disk beyond), as django-storages' S3File does.
    """
    if is_local():
        with absolute(relative).open("rb") as handle:
            yield handle
        return
    with _remote_errors("be read"):
        remote = backend().open(_checked(relative), "rb")
        remote.file  # noqa: B018 (the download happens here, inside the error mapping)
    with remote:
        # Django's File proxies read, seek and tell to the spooled file it wraps.
        yield cast("BinaryIO", remote)


def read_bytes(relative: str) -> bytes:
    with opened(relative) as handle:
        return handle.read()


def open_stream(relative: str) -> tuple[BinaryIO, int]:
    """The stored file open for reading front to back, and its size; FileNotFoundError if it is missing.

    From a bucket it is read from the network as it is consumed, so sending it holds one chunk at a time.
    """
    if is_local():
        handle = absolute(relative).open("rb")
        return handle, os.fstat(handle.fileno()).st_size
    with _remote_errors("be read"):
        return bucket().open_stream(_checked(relative))


def uploaded_path(photo_id: uuid.UUID, day: date, ext: str) -> str:
    return f"uploaded/{day.isoformat()}/{photo_id}.{ext}"


def generated_variant_path(session_id: object, step_id: object, photo_id: uuid.UUID) -> str:
    return f"generated/sessions/{session_id}/{step_id}/variants/{photo_id}.png"


def generated_selected_path(session_id: object, step_id: object, photo_id: uuid.UUID) -> str:
    return f"generated/sessions/{session_id}/{step_id}/selected/{photo_id}.png"


def imported_path(photo_id: uuid.UUID, day: date) -> str:
    """An image imported from an InvokeAI board (it was made outside the studio's sessions)."""
    return f"generated/imported/{day.isoformat()}/{photo_id}.png"


def generated_completed_path(photo_id: uuid.UUID, day: date) -> str:
    return f"generated/completed/{day.isoformat()}/{photo_id}.png"


def selection_copies(original: str, photo_id: uuid.UUID, day: date) -> list[str]:
    """The copies made when the generated variant at `original` is chosen; none for any other photo."""
    parts = PurePosixPath(original).parts
    if len(parts) != 6 or parts[:2] != ("generated", "sessions") or parts[4] != "variants":
        return []
    return [generated_selected_path(parts[2], parts[3], photo_id), generated_completed_path(photo_id, day)]


def thumbnail_path(original: str) -> str:
    return str(PurePosixPath(THUMBNAILS) / PurePosixPath(original).with_suffix(".webp"))


def display_path(original: str) -> str:
    return str(PurePosixPath(THUMBNAILS) / PurePosixPath(original).with_suffix(".display.webp"))


def renditions_of(original: str) -> list[str]:
    """Every file that belongs to a photo stored at `original`."""
    return [original, thumbnail_path(original), display_path(original)]


class StagedFiles(abc.ABC):
    """Files written aside, then published at their names together, or removed together.

    `publish()` belongs inside the transaction that inserts or updates the rows naming the files. If the caller
    fails before `publish()`, or raises inside the `staged()` block after it, every file is removed: a failed
    request leaves nothing in the store.
    """

    @abc.abstractmethod
    def temp_path(self, relative: str) -> Path:
        """A local file to write `relative`'s bytes to; it is published with the others."""

    @abc.abstractmethod
    def write(self, relative: str, data: bytes) -> None:
        """Stage `data` as the file `relative`."""

    @abc.abstractmethod
    def upload(self) -> None:
        """Send the bytes to the store now (a bucket's objects, at their names), so that `publish()` inside the
        transaction has nothing slow left to do. Only for names no other request can write (fresh ids): an
        object uploaded here is visible at its name before the row that names it."""

    @abc.abstractmethod
    def publish(self) -> None:
        """Make every staged file visible at its name."""

    @abc.abstractmethod
    def discard(self) -> None:
        """Remove every file, staged or published."""

    @abc.abstractmethod
    def drop_unpublished(self) -> None:
        """Remove what was staged and never published (the caller's debris)."""


class _DiskFiles(StagedFiles):
    """Written under temporary names beside their final place, renamed into it: renaming inside a directory is
    atomic, so a reader sees either no file or the whole file."""

    def __init__(self) -> None:
        self._pending: dict[Path, Path] = {}
        self._published: list[Path] = []

    def temp_path(self, relative: str) -> Path:
        final = absolute(relative)
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.part")
        self._pending[final] = temp
        return temp

    def write(self, relative: str, data: bytes) -> None:
        temp = self.temp_path(relative)
        with temp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())

    def upload(self) -> None:
        pass  # on disk publish() renames in place: nothing travels

    def publish(self) -> None:
        for final, temp in self._pending.items():
            temp.replace(final)
            self._published.append(final)
        self._pending.clear()

    def discard(self) -> None:
        for path in [*self._pending.values(), *self._published]:
            path.unlink(missing_ok=True)
        self._pending.clear()
        self._published.clear()

    def drop_unpublished(self) -> None:
        for temp in self._pending.values():
            temp.unlink(missing_ok=True)


class _BucketFiles(StagedFiles):
    """Kept on this machine (bytes, or a file in DATA_DIR/staging) until they are uploaded at their names."""

    def __init__(self) -> None:
        self._pending: dict[str, Path | bytes] = {}
        self._published: list[str] = []

    def temp_path(self, relative: str) -> Path:
        folder = settings.DATA_DIR / "staging"
        folder.mkdir(mode=0o700, exist_ok=True)
        temp = folder / f"{uuid.uuid4().hex}.part"
        self._pending[_checked(relative)] = temp
        return temp

    def write(self, relative: str, data: bytes) -> None:
        self._pending[_checked(relative)] = data

    def upload(self) -> None:
        store = backend()
        with _remote_errors("store the file"):
            for relative, content in list(self._pending.items()):
                if isinstance(content, bytes):
                    store.save(relative, ContentFile(content))
                else:
                    with content.open("rb") as handle:
                        store.save(relative, File(handle))
                    content.unlink()
                # Published as soon as it is uploaded: a failure on the next one must remove this one too.
                self._published.append(relative)
                del self._pending[relative]

    def publish(self) -> None:
        self.upload()

    def discard(self) -> None:
        self.drop_unpublished()
        self._pending.clear()
        if self._published:
            delete_files(self._published)
        self._published.clear()

    def drop_unpublished(self) -> None:
        for content in self._pending.values():
            if isinstance(content, Path):
                content.unlink(missing_ok=True)


@contextlib.contextmanager
def staged() -> Iterator[StagedFiles]:
    files: StagedFiles = _DiskFiles() if is_local() else _BucketFiles()
    try:
        yield files
    except BaseException:
        files.discard()
        raise
    # Files written but never published are debris from the caller, not a result.
    files.drop_unpublished()


def delete_files(relative_paths: Iterable[str]) -> None:
    names = [relative for relative in relative_paths if relative]
    if not is_local():
        try:
            bucket().delete_many(_checked(name) for name in names)
        except Exception:
            # The rows are gone already: what is left is an orphan object, which costs space, not correctness.
            logger.warning("Could not delete %d photo objects from the bucket", len(names), exc_info=True)
        return
    for relative in names:
        try:
            absolute(relative).unlink(missing_ok=True)
        except (OSError, ValueError):
            logger.warning("Could not delete photo file %s", relative, exc_info=True)


def delete_files_on_commit(relative_paths: Iterable[str]) -> None:
    """Delete files once the surrounding transaction commits: a rollback keeps the rows, so keep the files."""
    paths = list(relative_paths)
    transaction.on_commit(lambda: delete_files(paths))


def delete_folder(relative: str) -> None:
    """Delete a folder of the store and everything in it (nothing if it is not there)."""
    if is_local():
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(absolute(relative))
        return
    with _remote_errors("delete files"):
        names = bucket().names_under(_checked(relative))
    delete_files(names)


def subfolders(relative: str) -> list[str]:
    """The names of the folders directly in `relative` (none if it is not there)."""
    if is_local():
        try:
            return [path.name for path in absolute(relative).iterdir() if path.is_dir()]
        except FileNotFoundError:
            return []
    with _remote_errors("list files"):
        folders, _ = backend().listdir(_checked(relative))
    return list(folders)


def preview_path(step_id: object, item_id: object) -> str:
    """A running item's latest denoising preview (a small JPEG), replaced at each step, deleted once it ends."""
    return f"{PREVIEWS}/{step_id}/{item_id}.jpg"
