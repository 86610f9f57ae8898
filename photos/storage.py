"""Where photo files live under DATA_DIR/photos, and how they get there without half-written files.

Layout (relative to PHOTOS_DIR):

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
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

THUMBNAILS = "thumbnails"


def root() -> Path:
    return settings.PHOTOS_DIR


def absolute(relative: str) -> Path:
    """Resolve a stored relative path, refusing anything that would escape PHOTOS_DIR."""
    base = root().resolve()
    path = (base / relative).resolve()
    if not path.is_relative_to(base) or not relative:
        raise ValueError(f"path {relative!r} is outside the photo store")
    return path


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


class StagedFiles:
    """Files written under temporary names beside their final place, renamed into it together.

    Renaming inside the same directory is atomic, so a reader sees either no file or the whole file. If the
    caller fails before `publish()`, or raises inside the `staged()` block after it, every file is removed:
    a failed request leaves nothing on disk.
    """

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


@contextlib.contextmanager
def staged() -> Iterator[StagedFiles]:
    files = StagedFiles()
    try:
        yield files
    except BaseException:
        files.discard()
        raise
    # Files written but never published are debris from the caller, not a result.
    for temp in files._pending.values():
        temp.unlink(missing_ok=True)


def delete_files(relative_paths: Iterable[str]) -> None:
    for relative in relative_paths:
        if not relative:
            continue
        try:
            absolute(relative).unlink(missing_ok=True)
        except (OSError, ValueError):
            logger.warning("Could not delete photo file %s", relative, exc_info=True)


def delete_files_on_commit(relative_paths: Iterable[str]) -> None:
    """Delete files once the surrounding transaction commits: a rollback keeps the rows, so keep the files."""
    paths = list(relative_paths)
    transaction.on_commit(lambda: delete_files(paths))


def preview_path(step_id: object, item_id: object) -> str:
    """A running item's latest denoising preview (a small JPEG), replaced at each step, deleted once it ends."""
    return f"previews/{step_id}/{item_id}.jpg"
