"""Take the location out of an original before it is handed to someone else, without touching its pixels.

The owner always gets an original byte for byte. A copy for others (`without_location`) has its EXIF GPS
directory and its XMP packets blanked, XMP because it can repeat the coordinates. JPEG, WebP and HEIC are
patched in place: every length and offset in the file stays the same, so the compressed image data is
untouched and no container bookkeeping has to be redone. PNG chunks carry no offsets, so the chunks that hold
EXIF or XMP are dropped instead. JPEG and PNG are walked segment by segment (a file may hold several blocks);
WebP and HEIC hold one EXIF and one XMP block, located where Pillow found them. Every copy is read back before
it is returned, and a file that cannot be cleaned raises `LocationNotRemovable` rather than leave with its
location.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

from PIL import Image, UnidentifiedImageError

# Importing imaging registers pillow-heif's opener, which reading HEIC back needs.
from . import imaging  # noqa: F401

GPS_IFD = 0x8825
# Bytes per value of each TIFF field type (TIFF 6.0 section 2, plus BigTIFF's 8-byte types).
_TIFF_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8}
_EXIF_HEADER = b"Exif\x00\x00"
_XMP_HEADERS = (b"http://ns.adobe.com/xap/1.0/\x00", b"http://ns.adobe.com/xmp/extension/\x00")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Text chunks under these keywords hold XMP, or EXIF as ImageMagick writes it ("Raw profile type exif").
_PNG_METADATA_KEYWORDS = (b"XML:com.adobe.xmp", b"Raw profile type exif", b"Raw profile type xmp")


class LocationNotRemovable(Exception):
    """The file holds location data in a form that cannot be removed without re-encoding it."""


def without_location(path: Path) -> io.BytesIO:
    """The file at `path` with its EXIF GPS data and XMP removed, as an in-memory file."""
    data = bytearray(path.read_bytes())
    if data.startswith(b"\xff\xd8"):
        _clean_jpeg(data)
    elif data.startswith(_PNG_SIGNATURE):
        # PNG is checked by the walk itself: reading it back with Pillow would mean decoding every pixel.
        return io.BytesIO(_clean_png(data))
    else:
        _clean_found_blocks(data)
    _check_clean(data)
    return io.BytesIO(bytes(data))


def _clean_jpeg(data: bytearray) -> None:
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            raise LocationNotRemovable("JPEG segments are not where they should be.")
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            position += 2
            continue
        if marker == 0xDA or marker == 0xD9:  # start of scan: metadata segments all come before it
            return
        length = struct.unpack_from(">H", data, position + 2)[0]
        start, end = position + 4, position + 2 + length
        if marker == 0xE1:  # APP1: EXIF or XMP
            if data.startswith(_EXIF_HEADER, start):
                _blank_gps(data, start + len(_EXIF_HEADER), end)
            else:
                for header in _XMP_HEADERS:
                    if data.startswith(header, start):
                        data[start + len(header) : end] = b" " * (end - start - len(header))
        position = end
    raise LocationNotRemovable("The JPEG ends before its image data.")


def _clean_png(data: bytearray) -> bytes:
    out = bytearray(_PNG_SIGNATURE)
    position = len(_PNG_SIGNATURE)
    while position + 12 <= len(data):
        length = struct.unpack_from(">I", data, position)[0]
        kind = bytes(data[position + 4 : position + 8])
        end = position + 12 + length
        body = data[position + 8 : end - 4]
        metadata = kind == b"eXIf" or (
            kind in (b"tEXt", b"zTXt", b"iTXt") and body.split(b"\x00", 1)[0] in _PNG_METADATA_KEYWORDS
        )
        if not metadata:
            out += data[position:end]
        if kind == b"IEND":
            return bytes(out)
        position = end
    raise LocationNotRemovable("The PNG ends before its IEND chunk.")


def _clean_found_blocks(data: bytearray) -> None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            exif, xmp = image.info.get("exif"), image.info.get("xmp")
            has_gps = bool(image.getexif().get_ifd(GPS_IFD))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise LocationNotRemovable(f"The file cannot be read ({exc}).") from None
    if exif and has_gps:
        tiff = exif.removeprefix(_EXIF_HEADER)
        start = data.find(tiff)
        if start < 0:
            # pillow-heif hands out the EXIF with the orientation reset (it rotates the pixels itself), so
            # the block is found by its "Exif" marker and TIFF header; its directories are then read from
            # the file, and the read-back check confirms the GPS directory is gone.
            start = data.find(_EXIF_HEADER + tiff[:8])
            start = start + len(_EXIF_HEADER) if start >= 0 else -1
        if start < 0:
            raise LocationNotRemovable("The EXIF block is not stored in one piece.")
        _blank_gps(data, start, start + len(tiff))
    if xmp:
        start = data.find(xmp)
        if start < 0:
            raise LocationNotRemovable("The XMP packet is not stored in one piece.")
        data[start : start + len(xmp)] = b" " * len(xmp)


def _blank_gps(data: bytearray, base: int, end: int) -> None:
    """Blank the GPS directory of the TIFF structure in data[base:end] (an EXIF block), keeping every length.

    The directory is left with no entries, and the bytes its values were stored in are zeroed, so the
    coordinates are not just unlinked but gone.
    """
    order = {b"II": "<", b"MM": ">"}.get(bytes(data[base : base + 2]))
    if order is None:
        raise LocationNotRemovable("The EXIF block has no TIFF header.")

    def span(offset: int, size: int) -> slice:
        if not 0 <= offset <= end - base - size:
            raise LocationNotRemovable("The EXIF block points outside itself.")
        return slice(base + offset, base + offset + size)

    def u16(offset: int) -> int:
        return struct.unpack(order + "H", data[span(offset, 2)])[0]

    def u32(offset: int) -> int:
        return struct.unpack(order + "I", data[span(offset, 4)])[0]

    def zero(offset: int, size: int) -> None:
        data[span(offset, size)] = bytes(size)

    directory, seen = u32(4), set()
    while directory and directory not in seen:  # IFD0, then IFD1 (the embedded thumbnail's)
        seen.add(directory)
        count = u16(directory)
        for index in range(count):
            entry = directory + 2 + 12 * index
            if u16(entry) != GPS_IFD:
                continue
            gps = u32(entry + 8)
            gps_count = u16(gps)
            for gps_index in range(gps_count):
                gps_entry = gps + 2 + 12 * gps_index
                size = _TIFF_TYPE_SIZES.get(u16(gps_entry + 2), 1) * u32(gps_entry + 4)
                if size > 4:  # the value does not fit in the entry: it is stored elsewhere, at an offset
                    zero(u32(gps_entry + 8), size)
            zero(gps, 2 + 12 * gps_count + 4)
        directory = u32(directory + 2 + 12 * count)


def _check_clean(data: bytearray) -> None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            xmp = image.info.get("xmp") or b""
            has_gps = bool(image.getexif().get_ifd(GPS_IFD))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise LocationNotRemovable(f"The cleaned file cannot be read back ({exc}).") from None
    if has_gps or xmp.strip():
        raise LocationNotRemovable("Location data is still there after cleaning.")
