"""What an image file says about itself: when it was taken.

Read once, when a photo is stored (upload, `import_photos`, `backfill_taken`), from a file that has already been
validated. Nothing here may refuse a photo: a date that is missing, garbled or implausible is just not a date,
and the caller falls back to what it knows (the file's modification time, the upload time).

Where the date comes from, best first:

- EXIF (JPEG, HEIC, WebP, and PNG's eXIf chunk, all read through Pillow): `DateTimeOriginal` with
  `OffsetTimeOriginal`, else `DateTimeDigitized` with `OffsetTimeDigitized`, else IFD0's `DateTime` with
  `OffsetTime`, with their sub-second fields. A time without an offset is the camera's wall clock, taken to be
  in `TIME_ZONE` (the gallery shows it as the camera did when both are the same zone).
- PNG's "Creation Time" text (the PNG specification's keyword, RFC 1123 or ISO 8601 as tools write it), else
  its `tIME` chunk (the last modification, in UTC).
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import re
import struct
import zlib
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import BinaryIO

from django.utils import timezone
from PIL import ExifTags, Image

# Importing imaging registers pillow-heif's opener, which reading a HEIC's EXIF needs.
from . import imaging  # noqa: F401

logger = logging.getLogger(__name__)

# (date, offset, sub-seconds) tags, best first; the first two are in the EXIF IFD, the last in IFD0.
_EXIF_DATES = (
    (ExifTags.Base.DateTimeOriginal, ExifTags.Base.OffsetTimeOriginal, ExifTags.Base.SubsecTimeOriginal),
    (ExifTags.Base.DateTimeDigitized, ExifTags.Base.OffsetTimeDigitized, ExifTags.Base.SubsecTimeDigitized),
)
_IFD0_DATE = (ExifTags.Base.DateTime, ExifTags.Base.OffsetTime, ExifTags.Base.SubsecTime)
_DATE_FORMATS = ("%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y:%m:%d %H:%M", "%Y-%m-%dT%H:%M:%S")
_OFFSET = re.compile(r"^([+-])(\d\d):?(\d\d)$")
# The first photograph; anything earlier is a camera whose clock was never set (or zeros).
_EARLIEST = datetime(1826, 1, 1, tzinfo=UTC)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CREATION_KEYWORD = b"Creation Time"
# A PNG text value longer than this is not a date; the walk reads no more of it.
_PNG_TEXT_READ = 4096
# Stop walking a PNG after this many chunks: a real one has a few dozen, a hostile one could have millions.
_PNG_MAX_CHUNKS = 10_000


def taken_at(path: Path) -> datetime | None:
    """When the picture in the file at `path` was taken, or None if the file does not say (plausibly)."""
    try:
        with path.open("rb") as handle:
            found = _exif_date(handle)
            if found is None and handle.seek(0) == 0 and handle.read(8) == _PNG_SIGNATURE:
                found = _png_date(handle)
    except Exception:
        # Pillow's and pillow-heif's readers raise whatever a garbled block makes them raise; a date is never
        # worth refusing a photo that has already passed validation.
        logger.warning("Could not read the date of %s", path.name, exc_info=True)
        return None
    return found if found is not None and _plausible(found) else None


def _plausible(moment: datetime) -> bool:
    return _EARLIEST <= moment <= timezone.now() + timedelta(days=1)


def _exif_date(handle: BinaryIO) -> datetime | None:
    with Image.open(handle) as image:
        exif = image.getexif()
    sub_ifd = exif.get_ifd(ExifTags.IFD.Exif)
    candidates = [(sub_ifd, tags) for tags in _EXIF_DATES] + [(exif, _IFD0_DATE)]
    # The offsets are EXIF IFD tags even for IFD0's DateTime.
    for directory, (date_tag, offset_tag, subsec_tag) in candidates:
        moment = parse_exif_datetime(
            directory.get(date_tag), offset=sub_ifd.get(offset_tag), subseconds=sub_ifd.get(subsec_tag)
        )
        if moment is not None:
            return moment
    return None


def _text(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return value.strip("\x00 ") if isinstance(value, str) else ""


def parse_exif_datetime(value: object, *, offset: object = None, subseconds: object = None) -> datetime | None:
    """An EXIF date ("2024:05:01 14:30:00") as an aware datetime: at `offset` ("+02:00") if given, else in
    TIME_ZONE; None for anything that is not a date (blanks, zeros, garbage)."""
    text = _text(value)
    naive = None
    for fmt in _DATE_FORMATS:
        try:
            naive = datetime.strptime(text[:19], fmt)
            break
        except ValueError:
            continue
    if naive is None:
        return None
    digits = _text(subseconds)
    if digits.isdigit():
        naive = naive.replace(microsecond=int(digits[:6].ljust(6, "0")))
    zone = _offset(_text(offset))
    if zone is not None:
        return naive.replace(tzinfo=zone)
    return timezone.make_aware(naive, timezone.get_default_timezone())


def _offset(text: str) -> tzinfo | None:
    match = _OFFSET.match(text)
    if not match:
        return None
    sign, hours, minutes = match.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    if delta > timedelta(hours=14):
        return None
    return timezone.get_fixed_timezone(-delta if sign == "-" else delta)


def _png_date(handle: BinaryIO) -> datetime | None:
    """The PNG's "Creation Time" text, else its tIME chunk; the walk seeks past the image data unread."""
    modified = None
    for _ in range(_PNG_MAX_CHUNKS):
        header = handle.read(8)
        if len(header) < 8:
            break
        length, kind = struct.unpack(">I4s", header)
        if kind == b"IEND":
            break
        if kind == b"tIME" and length == 7:
            year, month, day, hour, minute, second = struct.unpack(">HBBBBB", handle.read(7))
            with contextlib.suppress(ValueError):  # no such day: no date
                modified = datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC)
            handle.seek(4, 1)  # the CRC
            continue
        if kind in (b"tEXt", b"zTXt", b"iTXt"):
            data = handle.read(min(length, _PNG_TEXT_READ))
            handle.seek(length - len(data) + 4, 1)
            created = _png_creation_time(kind, data)
            if created is not None:
                return created
            continue
        handle.seek(length + 4, 1)
    return modified


def _png_creation_time(kind: bytes, data: bytes) -> datetime | None:
    keyword, _, rest = data.partition(b"\x00")
    if keyword != _PNG_CREATION_KEYWORD:
        return None
    if kind == b"zTXt":
        text = zlib.decompressobj().decompress(rest[1:], _PNG_TEXT_READ).decode("latin-1")
    elif kind == b"iTXt":
        compressed, rest = rest[:1], rest[2:]
        text_bytes = rest.split(b"\x00", 2)[-1]  # after the language tag and the translated keyword
        if compressed == b"\x01":
            text_bytes = zlib.decompressobj().decompress(text_bytes, _PNG_TEXT_READ)
        text = text_bytes.decode("utf-8", "replace")
    else:
        text = rest.decode("latin-1")
    return parse_free_datetime(text)


def parse_free_datetime(text: str) -> datetime | None:
    """A date as tools write PNG's Creation Time: RFC 1123 (the specification's advice), ISO 8601 or EXIF's form;
    one without a zone is in TIME_ZONE."""
    text = text.strip("\x00 ")
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return parse_exif_datetime(text)
    if timezone.is_naive(moment):
        return timezone.make_aware(moment, timezone.get_default_timezone())
    return moment
