"""Clean an original before it is handed to someone else, without touching its pixels.

The owner always gets an original byte for byte. A copy for others (`shareable_copy`) loses:

- the location: the EXIF GPS directory, XMP packets (they can repeat the coordinates), IPTC (it can name the
  city), and the `exif:GPS...` text chunks ImageMagick writes into PNGs;
- whatever is not the image: a Motion Photo's video after a JPEG's end marker (with its own location atom)
  or in a HEIF's extra box, an MPO's further frames (the copy is the first frame), bytes after a PNG's IEND,
  a WebP's RIFF or a HEIF's last box;
- unless the owner shows generation details, the text that generators write: every PNG text chunk (InvokeAI's
  `invokeai_metadata` and `invokeai_graph`, AUTOMATIC1111's `parameters`, ComfyUI's `prompt` and `workflow`,
  and whatever the next tool invents), the EXIF description and comments (AUTOMATIC1111 puts its parameters
  in UserComment in a JPEG or WebP) and JPEG comments.

JPEG, WebP and HEIC are patched in place: every length and offset before the image's end stays the same, so
the compressed image data is untouched and no container bookkeeping has to be redone. PNG chunks carry no
offsets, so unwanted chunks are dropped instead. JPEG and PNG are walked segment by segment (a file may hold
several blocks); WebP and HEIC hold one EXIF and one XMP block, located where Pillow found them. Every copy is
read back before it is returned, and a file that cannot be cleaned raises `NotCleanable` rather than leave
with what it should not carry.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

# Importing imaging registers pillow-heif's opener, which reading HEIC back needs.
from . import imaging  # noqa: F401

GPS_IFD = 0x8825
EXIF_IFD = 0x8769
# Free text a generator or a camera writes: ImageDescription and XPComment in IFD0, UserComment in the EXIF IFD.
_IFD0_TEXT_TAGS = (0x010E, 0x9C9C)
_USER_COMMENT = 0x9286
# Bytes per value of each TIFF field type (TIFF 6.0 section 2, plus BigTIFF's 8-byte types).
_TIFF_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8}
_EXIF_HEADER = b"Exif\x00\x00"
_XMP_HEADERS = (b"http://ns.adobe.com/xap/1.0/\x00", b"http://ns.adobe.com/xmp/extension/\x00")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")
# Text chunks that hold XMP, or a metadata profile as ImageMagick writes them ("Raw profile type exif", "iptc",
# "xmp", "8bim", ...), or one GPS field each as ImageMagick copies them from a JPEG ("exif:GPSLatitude", ...).
_PNG_XMP_KEYWORD = b"xml:com.adobe.xmp"
_PNG_PROFILE_PREFIX = b"raw profile type "
_PNG_GPS_PREFIX = b"exif:gps"
_JPEG_EOI = 0xD9
_JPEG_SOS = 0xDA
_JPEG_APP1, _JPEG_APP2, _JPEG_APP13, _JPEG_COM = 0xE1, 0xE2, 0xED, 0xFE
_MPF_HEADER = b"MPF\x00"
# The top-level boxes of a HEIF still image (ISO/IEC 23008-12): anything else is extra, such as a video.
_HEIF_IMAGE_BOXES = {b"ftyp", b"meta", b"mdat", b"free", b"skip"}


class NotCleanable(Exception):
    """The file holds data a copy must not carry, in a form that cannot be removed without re-encoding it."""


def shareable_copy(source: Path | BinaryIO, *, keep_details: bool) -> io.BytesIO:
    """The file (at a path, or open for reading) as someone it is shared with gets it, as an in-memory file (see
    the module's doc); `keep_details` keeps the generation text the owner chose to show.

    The whole original is held while it is cleaned (an upload is at most MAX_UPLOAD_SIZE): patching in place
    needs every offset, and the copy must be checked whole before its first byte leaves."""
    data = bytearray(source.read_bytes() if isinstance(source, Path) else source.read())
    strip_text = not keep_details
    if data.startswith(b"\xff\xd8"):
        data = _clean_jpeg(data, strip_text=strip_text)
    elif data.startswith(_PNG_SIGNATURE):
        # PNG is checked by the walk itself: reading it back with Pillow would mean decoding every pixel.
        return io.BytesIO(_clean_png(data, strip_text=strip_text))
    else:
        if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
            del data[8 + struct.unpack_from("<I", data, 4)[0] :]
        elif data[4:8] == b"ftyp":
            _clean_heif_boxes(data)
        _clean_found_blocks(data, strip_text=strip_text)
    _check_clean(data, strip_text=strip_text)
    return io.BytesIO(bytes(data))


def _clean_jpeg(data: bytearray, *, strip_text: bool) -> bytearray:
    """Blank the JPEG's unwanted segments in place; the file up to the end of its first image is returned."""
    position, scanned = 2, False
    while position + 2 <= len(data):
        if data[position] != 0xFF:
            raise NotCleanable("JPEG segments are not where they should be.")
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if marker == _JPEG_EOI:
            # The first image ends here: a Motion Photo's video, an MPO's other frames, anything appended.
            return data[: position + 2]
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            position += 2
            continue
        if position + 4 > len(data):
            break
        length = struct.unpack_from(">H", data, position + 2)[0]
        start, end = position + 4, position + 2 + length
        if length < 2 or end > len(data):
            raise NotCleanable("A JPEG segment runs past the end of the file.")
        if marker == _JPEG_APP1 and data.startswith(_EXIF_HEADER, start):
            _clean_exif(data, start + len(_EXIF_HEADER), end, strip_text=strip_text)
        elif marker == _JPEG_APP1:
            for header in _XMP_HEADERS:
                if data.startswith(header, start):
                    data[start + len(header) : end] = b" " * (end - start - len(header))
        elif (
            (marker == _JPEG_APP2 and data.startswith(_MPF_HEADER, start))  # the index of the frames left out
            or marker == _JPEG_APP13  # Photoshop's resources: IPTC, with its city and country fields
            or (marker == _JPEG_COM and strip_text)
        ):
            data[start:end] = bytes(end - start)
        position = end
        if marker == _JPEG_SOS:
            position, scanned = _entropy_coded_end(data, position), True
    if not scanned:
        raise NotCleanable("The JPEG ends before its image data.")
    return data  # a truncated file: nothing can follow an end it does not reach


def _entropy_coded_end(data: bytearray, position: int) -> int:
    """Where the compressed data of a scan ends: the next marker that is not a stuffed 0xFF or a restart."""
    while (position := data.find(b"\xff", position)) >= 0 and position + 1 < len(data):
        following = data[position + 1]
        if following != 0x00 and not 0xD0 <= following <= 0xD7 and following != 0xFF:
            return position
        position += 1
    return len(data)


def _clean_heif_boxes(data: bytearray) -> None:
    """Blank the top-level boxes a HEIF image does not consist of (a Samsung Motion Photo's `mpvd` video),
    turning them into `free` boxes so no offset moves, and cut whatever follows the last box."""
    position = 0
    while position + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, position)
        header = 8
        if size == 1:  # a 64-bit size follows the type
            if position + 16 > len(data):
                break
            size, header = struct.unpack_from(">Q", data, position + 8)[0], 16
        elif size == 0:  # the box runs to the end of the file
            size = len(data) - position
        if size < header or position + size > len(data):
            break  # not a box: bytes appended to the file (a broken image box fails the read-back)
        if kind not in _HEIF_IMAGE_BOXES:
            data[position + 4 : position + 8] = b"free"
            data[position + header : position + size] = bytes(size - header)
        position += size
    del data[position:]


def _clean_png(data: bytearray, *, strip_text: bool) -> bytes:
    out = bytearray(_PNG_SIGNATURE)
    position = len(_PNG_SIGNATURE)
    while position + 12 <= len(data):
        length = struct.unpack_from(">I", data, position)[0]
        kind = bytes(data[position + 4 : position + 8])
        end = position + 12 + length
        keyword = bytes(data[position + 8 : end - 4].split(b"\x00", 1)[0]).lower()
        unwanted = kind == b"eXIf" or (
            kind in _PNG_TEXT_CHUNKS
            and (
                strip_text or keyword == _PNG_XMP_KEYWORD or keyword.startswith((_PNG_PROFILE_PREFIX, _PNG_GPS_PREFIX))
            )
        )
        if not unwanted:
            out += data[position:end]
        if kind == b"IEND":
            return bytes(out)  # and nothing of what follows it
        position = end
    raise NotCleanable("The PNG ends before its IEND chunk.")


def _clean_found_blocks(data: bytearray, *, strip_text: bool) -> None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            exif, xmp = image.info.get("exif"), image.info.get("xmp")
            unwanted = _unwanted_exif(image.getexif(), strip_text=strip_text)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise NotCleanable(f"The file cannot be read ({exc}).") from None
    if exif and unwanted:
        tiff = exif.removeprefix(_EXIF_HEADER)
        start = data.find(tiff)
        if start < 0:
            # pillow-heif hands out the EXIF with the orientation reset (it rotates the pixels itself), so
            # the block is found by its "Exif" marker and TIFF header; its directories are then read from
            # the file, and the read-back check confirms the GPS directory is gone.
            start = data.find(_EXIF_HEADER + tiff[:8])
            start = start + len(_EXIF_HEADER) if start >= 0 else -1
        if start < 0:
            raise NotCleanable("The EXIF block is not stored in one piece.")
        _clean_exif(data, start, start + len(tiff), strip_text=strip_text)
    if xmp:
        start = data.find(xmp)
        if start < 0:
            raise NotCleanable("The XMP packet is not stored in one piece.")
        data[start : start + len(xmp)] = b" " * len(xmp)


def _clean_exif(data: bytearray, base: int, end: int, *, strip_text: bool) -> None:
    """Blank the GPS directory of the TIFF structure in data[base:end] (an EXIF block), and its free text
    unless `strip_text` is false, keeping every length.

    The GPS directory is left with no entries, and the bytes its values were stored in are zeroed, so the
    coordinates are not just unlinked but gone; text values are zeroed where they are stored.
    """
    order = {b"II": "<", b"MM": ">"}.get(bytes(data[base : base + 2]))
    if order is None:
        raise NotCleanable("The EXIF block has no TIFF header.")

    def span(offset: int, size: int) -> slice:
        if not 0 <= offset <= end - base - size:
            raise NotCleanable("The EXIF block points outside itself.")
        return slice(base + offset, base + offset + size)

    def u16(offset: int) -> int:
        return struct.unpack(order + "H", data[span(offset, 2)])[0]

    def u32(offset: int) -> int:
        return struct.unpack(order + "I", data[span(offset, 4)])[0]

    def zero(offset: int, size: int) -> None:
        data[span(offset, size)] = bytes(size)

    def value_size(entry: int) -> int:
        return _TIFF_TYPE_SIZES.get(u16(entry + 2), 1) * u32(entry + 4)

    def zero_value(entry: int) -> None:
        size = value_size(entry)
        if size > 4:  # the value does not fit in the entry: it is stored elsewhere, at an offset
            zero(u32(entry + 8), size)
        else:
            zero(entry + 8, 4)

    def entries(directory: int) -> list[tuple[int, int]]:
        return [(u16(entry), entry) for entry in range(directory + 2, directory + 2 + 12 * u16(directory), 12)]

    directory, seen = u32(4), set()
    while directory and directory not in seen:  # IFD0, then IFD1 (the embedded thumbnail's)
        seen.add(directory)
        for tag, entry in entries(directory):
            if tag == GPS_IFD:
                gps = u32(entry + 8)
                gps_entries = entries(gps)
                for _, gps_entry in gps_entries:
                    if value_size(gps_entry) > 4:
                        zero_value(gps_entry)
                zero(gps, 2 + 12 * len(gps_entries) + 4)
            elif strip_text and tag in _IFD0_TEXT_TAGS:
                zero_value(entry)
            elif strip_text and tag == EXIF_IFD:
                for sub_tag, sub_entry in entries(u32(entry + 8)):
                    if sub_tag == _USER_COMMENT:
                        zero_value(sub_entry)
        directory = u32(directory + 2 + 12 * u16(directory))


def _has_text(value: object) -> bool:
    if isinstance(value, bytes):
        return bool(value.strip(b"\x00 "))
    return isinstance(value, str) and bool(value.strip("\x00 "))


def _unwanted_exif(exif: Image.Exif, *, strip_text: bool) -> bool:
    if exif.get_ifd(GPS_IFD):
        return True
    texts = [exif.get(tag) for tag in _IFD0_TEXT_TAGS] + [exif.get_ifd(EXIF_IFD).get(_USER_COMMENT)]
    return strip_text and any(_has_text(text) for text in texts)


def _check_clean(data: bytearray, *, strip_text: bool) -> None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            info = image.info
            leftover = (
                _unwanted_exif(image.getexif(), strip_text=strip_text)
                or _has_text(info.get("xmp"))
                or bool(info.get("photoshop") or info.get("mp"))
                or image.format == "MPO"
                or (strip_text and _has_text(info.get("comment")))
            )
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise NotCleanable(f"The cleaned file cannot be read back ({exc}).") from None
    if leftover:
        raise NotCleanable("Unwanted metadata is still there after cleaning.")
