"""What an image file says about itself: when it was taken, and with what camera, where.

The date is read once, when a photo is stored (upload, `import_photos`, `backfill_taken`), from a file that has
already been validated; the camera's details (`camera_details`) are read from the original when its owner opens
the photo, as they are only ever shown there. Nothing here may refuse a photo: a date that is missing, garbled or
implausible is just not a date, and the caller falls back to what it knows (the file's modification time, the
upload time); a garbled camera field is left out.

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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from fractions import Fraction
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


def taken_at(source: Path | BinaryIO) -> datetime | None:
    """When the picture in the file (at a path, or an open seekable file) was taken, or None if the file does not
    say (plausibly)."""
    try:
        with source.open("rb") if isinstance(source, Path) else contextlib.nullcontext(source) as handle:
            found = _exif_date(handle)
            if found is None and handle.seek(0) == 0 and handle.read(8) == _PNG_SIGNATURE:
                found = _png_date(handle)
    except Exception:
        # Pillow's and pillow-heif's readers raise whatever a garbled block makes them raise; a date is never
        # worth refusing a photo that has already passed validation.
        logger.warning("Could not read the date of %s", _name(source), exc_info=True)
        return None
    return found if found is not None and _plausible(found) else None


def _name(source: Path | BinaryIO) -> str:
    return Path(str(getattr(source, "name", "") or "")).name


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


@dataclass(frozen=True)
class CameraDetails:
    """The camera's EXIF fields, formatted for people; empty strings (and None) where the file says nothing."""

    camera: str = ""
    lens: str = ""
    aperture: str = ""
    shutter: str = ""
    iso: str = ""
    focal_length: str = ""
    latitude: float | None = None
    longitude: float | None = None

    @property
    def exposure(self) -> str:
        return " · ".join(part for part in (self.aperture, self.shutter, self.iso, self.focal_length) if part)

    @property
    def has_location(self) -> bool:
        return self.latitude is not None and self.longitude is not None

    @property
    def map_url(self) -> str:
        """The place on OpenStreetMap (a link the owner follows, never loaded by the page)."""
        if not self.has_location:
            return ""
        return f"https://www.openstreetmap.org/?mlat={self.latitude:.6f}&mlon={self.longitude:.6f}#map=15/{self.latitude:.6f}/{self.longitude:.6f}"


def _fraction(value: object) -> Fraction | None:
    try:
        number = Fraction(float(value)).limit_denominator(100_000)  # type: ignore[arg-type]  # IFDRational and the like
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return number if number > 0 else None


def _shutter(value: object) -> str:
    seconds = _fraction(value)
    if seconds is None:
        return ""
    if seconds < 1:
        return f"1/{round(1 / seconds)} s"
    return f"{float(seconds):g} s"


def _degrees(value: object, reference: object) -> float | None:
    """GPS degrees, minutes, seconds (three rationals) and N/S/E/W as signed decimal degrees."""
    if not isinstance(value, tuple) or len(value) != 3:
        return None
    parts = [_fraction(part) if part else Fraction(0) for part in value]
    if any(part is None for part in parts):
        return None
    degrees, minutes, seconds = (float(part) for part in parts if part is not None)
    decimal = degrees + minutes / 60 + seconds / 3600
    return -decimal if _text(reference).upper() in ("S", "W") else decimal


def camera_details(source: Path | BinaryIO) -> CameraDetails:
    """The camera, lens, exposure and location the file records (nothing for a file without EXIF)."""
    try:
        with Image.open(source) as image:
            exif = image.getexif()
        sub = exif.get_ifd(ExifTags.IFD.Exif)
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    except Exception:
        logger.warning("Could not read the EXIF of %s", _name(source), exc_info=True)
        return CameraDetails()
    make, model = _text(exif.get(ExifTags.Base.Make)), _text(exif.get(ExifTags.Base.Model))
    # Many cameras repeat the make in the model ("Canon" / "Canon EOS R5").
    camera = model if make and model.lower().startswith(make.lower()) else " ".join(filter(None, (make, model)))
    lens = _text(sub.get(ExifTags.Base.LensModel)) or _text(sub.get(ExifTags.Base.LensMake))
    f_number = _fraction(sub.get(ExifTags.Base.FNumber))
    iso = sub.get(ExifTags.Base.ISOSpeedRatings)
    if isinstance(iso, tuple):
        iso = iso[0] if iso else None
    focal = _fraction(sub.get(ExifTags.Base.FocalLength))
    focal_35 = sub.get(ExifTags.Base.FocalLengthIn35mmFilm)
    focal_text = f"{float(focal):g} mm" if focal else ""
    if focal_text and isinstance(focal_35, int) and focal_35 > 0 and focal_35 != round(float(focal or 0)):
        focal_text += f" ({focal_35} mm equiv.)"
    latitude = _degrees(gps.get(ExifTags.GPS.GPSLatitude), gps.get(ExifTags.GPS.GPSLatitudeRef))
    longitude = _degrees(gps.get(ExifTags.GPS.GPSLongitude), gps.get(ExifTags.GPS.GPSLongitudeRef))
    if latitude is None or longitude is None or abs(latitude) > 90 or abs(longitude) > 180:
        latitude = longitude = None
    return CameraDetails(
        camera=camera[:200],
        lens=lens[:200],
        aperture=f"f/{float(f_number):.1f}".replace(".0", "") if f_number else "",
        shutter=_shutter(sub.get(ExifTags.Base.ExposureTime)),
        iso=f"ISO {iso}" if isinstance(iso, int) and iso > 0 else "",
        focal_length=focal_text,
        latitude=latitude,
        longitude=longitude,
    )
