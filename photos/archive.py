"""A ZIP of photos' originals, made while it is sent: nothing is built in memory or on disk beforehand.

The standard library's zipfile writes to a file object that is not seekable, so it puts each entry's sizes and
CRC in a data descriptor after the entry (the ZIP streaming form, read by every unzip tool) and never goes back.
That object only collects what was written since the last chunk was handed on, so the response's memory stays
at one read buffer however many photos there are. Entries are stored, not deflated: photos are compressed
already, and deflating them would cost CPU for nothing.
"""

from __future__ import annotations

import io
import logging
import os
import zipfile
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import PurePath

from django.utils import timezone

from . import storage
from .models import Photo

logger = logging.getLogger(__name__)

_CHUNK = 1024 * 1024
_NAME_LENGTH = 120
# The earliest time a ZIP entry can record (MS-DOS dates start in 1980).
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
MISSING_LIST = "missing-files.txt"


class _Chunks(io.RawIOBase):
    """A write-only, unseekable file that keeps what was written until `take` hands it on."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._written = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]  # zipfile writes bytes only
        self._parts.append(bytes(data))
        self._written += len(data)
        return len(data)

    def tell(self) -> int:
        # zipfile records each entry's offset; counting is all it needs, it never seeks.
        return self._written

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


def entry_name(photo: Photo, used: set[str]) -> str:
    """The name of the photo's file in the archive: its upload name without any folder part (so unzipping
    never writes outside the folder chosen), with the stored file's extension, unique in the archive."""
    extension = PurePath(photo.local_storage_path).suffix
    stem = PurePath(photo.filename.replace("\\", "/")).stem if photo.filename else ""
    stem = "".join(char for char in stem if char.isprintable() and char not in '/:*?"<>|').strip(" .")
    stem = stem[:_NAME_LENGTH] or str(photo.pk)
    name, number = f"{stem}{extension}", 1
    while name.lower() in used:
        number += 1
        name = f"{stem} ({number}){extension}"
    used.add(name.lower())
    return name


def _date_time(moment: datetime) -> tuple[int, int, int, int, int, int]:
    local = timezone.localtime(moment)
    return max(_ZIP_EPOCH, (local.year, local.month, local.day, local.hour, local.minute, local.second))


def _read_ahead(photo: Photo) -> None:
    """Ask the kernel to start reading the next photo's file while this one is checksummed and sent: the disk
    and the CPU then work at once (measured: bench/zip_download.py)."""
    if not hasattr(os, "posix_fadvise") or not storage.is_local():
        return
    try:
        fd = os.open(storage.absolute(photo.local_storage_path), os.O_RDONLY)
    except OSError:
        return  # reported when its turn comes
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    finally:
        os.close(fd)


def zip_stream(photos: Iterable[Photo]) -> Iterator[bytes]:
    """The ZIP of the photos' originals, in chunks, each entry dated when its photo was taken.

    A file that has gone from the store since the request was checked (or that the bucket would not give)
    cannot be reported any more (the answer has started); it is listed in `missing-files.txt` at the end of the
    archive instead.
    """
    sink = _Chunks()
    used: set[str] = set()
    missing: list[str] = []
    photos = list(photos)
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for index, photo in enumerate(photos):
            try:
                # From a bucket, a stream read as it is sent: one chunk of it in memory at a time.
                source, _ = storage.open_stream(photo.local_storage_path)
            except (FileNotFoundError, storage.StoreUnavailable):
                missing.append(f"{photo.pk} {photo.filename}")
                continue
            if index + 1 < len(photos):
                _read_ahead(photos[index + 1])
            with source:
                info = zipfile.ZipInfo(entry_name(photo, used), date_time=_date_time(photo.taken_at))
                info.compress_type = zipfile.ZIP_STORED
                # Sizes are only known at the end; force_zip64 keeps an entry past 4 GB valid too.
                with archive.open(info, "w", force_zip64=True) as entry:
                    while chunk := source.read(_CHUNK):
                        entry.write(chunk)
                        yield sink.take()
            yield sink.take()
        if missing:
            logger.warning("%d photos' files were missing from a ZIP download", len(missing))
            archive.writestr(
                MISSING_LIST, "These photos' files were missing from the photo store:\n" + "\n".join(missing)
            )
    yield sink.take()
