"""Validate image files and make their WebP renditions with Pillow.

A file is decoded once, within the installation's decode budget (`decode_budget`): JPEGs are decoded at the
smallest DCT scale (1/2, 1/4, 1/8) still as large as the biggest rendition, which is 4-5x faster than a full
decode of a camera photo; other formats are decoded whole and then shrunk in strips, so that converting them
(16-bit, palette, CMYK, transparency) never holds a second full-size copy. The decode itself is what detects
truncated and garbled files.
"""

from __future__ import annotations

import contextlib
import io
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from PIL import ExifTags, Image, ImageCms, ImageMath, UnidentifiedImageError

from gallery_project.errors import InvalidInput, TooLarge

from . import decode_budget

try:
    import pillow_heif
except ImportError:  # pragma: no cover - the system check reports it
    pillow_heif = None  # type: ignore[assignment]
else:
    pillow_heif.register_heif_opener()

MIN_SIDE = 100
MAX_SIDE = 8192
WEBP_QUALITY = 85
# A copy for a tool that cannot read the original's format: about what a phone's own HEIC-to-JPEG export keeps.
COPY_JPEG_QUALITY = 95
ACCEPTED = "JPEG, PNG, WebP or HEIC"
RE_EXPORT = "Open it in a photo editor and export it again as JPEG or PNG"
# EXIF orientations that rotate by 90 or 270 degrees, so the displayed width is the stored height.
_QUARTER_TURNS = {5, 6, 7, 8}
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Bytes a pixel takes in memory once decoded, by mode (every mode not listed takes 4).
_PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}
# Peak memory of decoding, as a multiple of the decoded image (measured, bench/upload_memory.py): libwebp keeps
# two canvases of its own and hands over a copy; libheif's buffer is copied into the image.
_DECODE_COPIES = {"WEBP": 4, "HEIF": 2}
# Converting and shrinking works on strips of about this many bytes.
_STRIP_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class FileType:
    ext: str
    pil_format: str
    mime_type: str


_TYPES = {
    ".jpg": FileType("jpg", "JPEG", "image/jpeg"),
    ".jpeg": FileType("jpg", "JPEG", "image/jpeg"),
    ".png": FileType("png", "PNG", "image/png"),
    ".webp": FileType("webp", "WEBP", "image/webp"),
    ".heic": FileType("heic", "HEIF", "image/heic"),
}
ALLOWED_EXTENSIONS = tuple(_TYPES)
# Camera JPEGs with an embedded preview or a second view are multi-picture files (CIPA DC-007): a JPEG whose
# first frame is the photo, which is all that browsers and this gallery show.
_SAME_FORMAT = {"MPO": "JPEG"}
_FORMAT_NAMES = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP", "HEIF": "HEIC"}


@dataclass(frozen=True)
class Rendered:
    """A validated image and its WebP renditions, keyed by the longest side they were made for."""

    file_type: FileType
    width: int
    height: int
    renditions: dict[int, bytes]


class ImageRejected(InvalidInput):
    """An upload that is not an image we accept; the message says why and what to do instead."""


def file_type_for(filename: str) -> FileType:
    suffix = Path(filename).suffix.lower()
    if suffix not in _TYPES:
        shown = f"a {suffix} file" if suffix else "a file without an extension"
        allowed = ", ".join(ALLOWED_EXTENSIONS)
        raise ImageRejected(
            f"'{filename}' is {shown}; the gallery takes {ACCEPTED} photos ({allowed}). {RE_EXPORT}.",
            code="unsupported_type",
        )
    if suffix == ".heic" and pillow_heif is None:
        raise ImageRejected(
            f"This server cannot read HEIC photos yet; export '{filename}' as JPEG (phones can share HEIC photos "
            "as JPEG) and upload that.",
            code="unsupported_type",
        )
    return _TYPES[suffix]


def check_size(filename: str, size: int) -> None:
    if size > settings.MAX_UPLOAD_SIZE:
        limit = settings.MAX_UPLOAD_SIZE / (1024 * 1024)
        raise TooLarge(
            f"'{filename}' is {size / (1024 * 1024):.1f} MB; the limit is {limit:.0f} MB. Export it again at "
            "fewer pixels or as a JPEG (quality 90 keeps a photo's detail at a fraction of the size).",
            details={"max_upload_size": settings.MAX_UPLOAD_SIZE},
        )
    if size == 0:
        raise ImageRejected(
            f"'{filename}' is empty (0 bytes): its copy or download did not finish. Upload the original again.",
            code="empty_file",
        )


def _to_8bit(image: Image.Image, cmyk: ImageCms.ImageCmsTransform | None) -> Image.Image:
    """`image` as 8-bit RGB, or RGBA if it has transparency, colours kept."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        # 16-bit grey: scale to 8 bits, where converting would clip every value above 255 to white.
        key = image.info.get("transparency")
        grey = image.point(lambda value: value / 256).convert("L")
        if isinstance(key, int):
            # A 16-bit transparent grey level: transparent where the pixel has it, opaque elsewhere.
            opaque = ImageMath.lambda_eval(lambda args: (args["image"] != key) * 255, image=image.convert("I"))
            grey.putalpha(opaque.convert("L"))
        image = grey
    elif image.mode == "CMYK":
        converted = ImageCms.applyTransform(image, cmyk) if cmyk else None
        image = converted if converted is not None else image.convert("RGB")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info
    wanted = "RGBA" if has_alpha else "RGB"
    return image if image.mode == wanted else image.convert(wanted)


def _colour_profile(image: Image.Image) -> tuple[bytes, ImageCms.ImageCmsTransform | None]:
    """The ICC profile the renditions carry, and the transform that brings a CMYK image to sRGB.

    A profile for another colour space than the renditions' RGB would misdescribe them; one that does not
    parse is dropped.
    """
    icc = image.info.get("icc_profile") or b""
    if not icc:
        return b"", None
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        space = profile.profile.xcolor_space.strip()
        if space == "CMYK" and image.mode == "CMYK":
            srgb = ImageCms.createProfile("sRGB")
            return b"", ImageCms.buildTransform(profile, srgb, "CMYK", "RGB")
    except (ImageCms.PyCMSError, OSError, ValueError):
        return b"", None
    return (icc if space == "RGB" else b""), None


def _target(size: tuple[int, int], largest: int) -> tuple[int, int]:
    width, height = size
    if max(width, height) <= largest:
        return size
    scale = largest / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _is_8bit_colour(image: Image.Image) -> bool:
    return image.mode == "RGBA" or (image.mode == "RGB" and "transparency" not in image.info)


def _shrink(image: Image.Image, largest: int, cmyk: ImageCms.ImageCmsTransform | None) -> Image.Image:
    """`image` in 8-bit RGB(A), no larger than `largest` a side.

    Converts and box-reduces in strips by the largest whole factor that keeps it at least `largest` (so the
    copies stay small whatever the image, as a JPEG's scaled decode does), then resamples bicubically.
    """
    width, height = image.size
    factor = max(1, max(width, height) // largest)
    if factor == 1 and _is_8bit_colour(image):
        reduced = image  # nothing to convert or reduce: spare the copy
    else:
        rows = max(factor, _STRIP_BYTES // (width * 4) // factor * factor)
        strips = (
            _to_8bit(image.crop((0, top, width, min(height, top + rows))), cmyk).reduce(factor)
            for top in range(0, height, rows)
        )
        first = next(strips)
        reduced = Image.new(first.mode, (-(-width // factor), -(-height // factor)))
        reduced.paste(first, (0, 0))
        for index, strip in enumerate(strips, start=1):
            reduced.paste(strip, (0, index * rows // factor))
    target = _target(image.size, largest)
    if target == reduced.size:
        return reduced
    return reduced.resize(target, Image.Resampling.BICUBIC, box=(0, 0, width / factor, height / factor))


def _webp(image: Image.Image, icc_profile: bytes) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "WEBP", quality=WEBP_QUALITY, icc_profile=icc_profile)
    return buffer.getvalue()


@contextlib.contextmanager
def _rejecting(filename: str) -> Iterator[None]:
    """Turn whatever Pillow raises for a bad file into an ImageRejected that says what is wrong with it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected(
            f"'{filename}' declares a picture far larger than {MAX_SIDE}x{MAX_SIDE} px, so it was not opened (a "
            f"file made to exhaust memory looks like this). If it is a real picture, resize it to at most "
            f"{MAX_SIDE} px a side.",
            code="decompression_bomb",
        ) from None
    except UnidentifiedImageError:
        raise ImageRejected(
            f"'{filename}' is not a {ACCEPTED} image, or is too damaged to be recognised as one. {RE_EXPORT}.",
            code="corrupt_image",
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, ImageCms.PyCMSError) as exc:
        raise ImageRejected(
            f"'{filename}' is damaged or incomplete: its image data cannot be read to the end. Copy it again "
            f"from the original, or {RE_EXPORT[0].lower()}{RE_EXPORT[1:]}.",
            code="corrupt_image",
            details={"reason": str(exc)},
        ) from None


def _read_at(source: Path | BinaryIO, offset: int, size: int) -> bytes:
    if isinstance(source, Path):
        with source.open("rb") as fh:
            fh.seek(offset)
            return fh.read(size)
    position = source.tell()
    try:
        source.seek(offset)
        return source.read(size)
    finally:
        source.seek(position)


def _webp_canvas(source: Path | BinaryIO) -> tuple[int, int] | None:
    """The canvas size a WebP file declares, read without decoding; None for other files."""
    header = _read_at(source, 0, 30)
    if len(header) < 30 or header[:4] != b"RIFF" or header[8:12] != b"WEBP":
        return None
    chunk = header[12:16]
    if chunk == b"VP8X":
        return int.from_bytes(header[24:27], "little") + 1, int.from_bytes(header[27:30], "little") + 1
    if chunk == b"VP8L" and header[20] == 0x2F:
        bits = int.from_bytes(header[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and header[23:26] == b"\x9d\x01\x2a":
        return (int.from_bytes(header[26:28], "little") & 0x3FFF, int.from_bytes(header[28:30], "little") & 0x3FFF)
    return None


def _check(filename: str, image_format: str | None, size: tuple[int, int], file_type: FileType, min_side: int) -> None:
    image_format = _SAME_FORMAT.get(image_format or "", image_format)
    if image_format != file_type.pil_format:
        expected = _FORMAT_NAMES[file_type.pil_format]
        if image_format in _FORMAT_NAMES:
            extension = next(ext for ext, kind in _TYPES.items() if kind.pil_format == image_format)
            advice = f"Rename it to end in {extension}, or export it again as {expected}."
            found = f"a {_FORMAT_NAMES[image_format]} image"
        else:
            advice = f"{RE_EXPORT}."
            found = f"{image_format} data" if image_format else "data of a kind the gallery does not take"
        raise ImageRejected(
            f"'{filename}' is named .{file_type.ext} but holds {found}. {advice}",
            code="format_mismatch",
            details={"format": image_format},
        )
    width, height = size
    if not (min_side <= width <= MAX_SIDE and min_side <= height <= MAX_SIDE):
        hint = " (a picture this small is usually an icon or a preview, not the photo)" if min(size) < min_side else ""
        raise ImageRejected(
            f"'{filename}' is {width}x{height} px; each side must be between {min_side} and {MAX_SIDE} px. "
            f"Resize it to fit{hint}.",
            code="bad_dimensions",
            details={"width": width, "height": height, "min": min_side, "max": MAX_SIDE},
        )


def decode_cost(image_format: str, mode: str, size: tuple[int, int], largest: int | None) -> int:
    """Bytes of memory decoding an image of this kind takes at its peak, making renditions of at most
    `largest` px included (None: no renditions)."""
    width, height = size
    decoded = width * height * _PIXEL_BYTES.get(mode, 4)
    # The reduced image (RGBA, under twice the largest rendition a side), its premultiplied copy, resampling.
    bound = 2 * largest if largest else 0
    working = min(width, bound) * min(height, bound) * 4 * 3
    return decoded * _DECODE_COPIES.get(image_format, 1) + working


@contextlib.contextmanager
def _decoded(
    source: Path | BinaryIO, filename: str, file_type: FileType, min_side: int, largest: int | None
) -> Iterator[tuple[Image.Image, tuple[int, int]]]:
    """`source` checked, then decoded within the decode budget, and its size as stored in the file.

    Decoded for renditions of at most `largest` px (a JPEG at the smallest scale that allows them), or in
    full if None. Every error from here to the end of the block becomes an ImageRejected.
    """
    with _rejecting(filename), contextlib.ExitStack() as stack:
        canvas = _webp_canvas(source)
        if canvas is not None:
            # libwebp allocates its canvases as soon as the file is opened: check and reserve before that.
            _check(filename, "WEBP", canvas, file_type, min_side)
            cost = decode_cost("WEBP", "RGBA", canvas, largest)
            stack.enter_context(decode_budget.reserve(cost, filename, details=_size_details(canvas)))
        image = stack.enter_context(Image.open(source))
        size = image.size
        _check(filename, image.format, size, file_type, min_side)
        if canvas is None:
            if largest and image.format in ("JPEG", "MPO"):
                # The smallest DCT scale still at least as large as the biggest rendition.
                image.draft(None, (largest, largest))
            cost = decode_cost(image.format or "", image.mode, image.size, largest)
            stack.enter_context(decode_budget.reserve(cost, filename, details=_size_details(size)))
        image.load()
        yield image, size


def _size_details(size: tuple[int, int]) -> dict[str, int]:
    return {"width": size[0], "height": size[1]}


def render(
    source: Path | BinaryIO,
    filename: str,
    file_type: FileType,
    sizes: tuple[int, ...],
    *,
    min_side: int = MIN_SIDE,
) -> Rendered:
    """Check that `source` really is a `file_type` image of acceptable dimensions, and make its renditions.

    Raises ImageRejected for anything else: a different format, a corrupt or truncated file, dimensions
    outside min_side..8192 px, or a decompression bomb; TooLarge if it needs more memory than
    IMAGE_DECODE_MEMORY; Unavailable if other decodes hold the memory for too long. Uploads keep the 100 px
    minimum; images InvokeAI made may be smaller (64 px is its smallest size). Animated images and
    multi-picture JPEGs give their first frame. Data after the end of the picture (a camera's preview, a
    motion photo's video, a file appended on purpose) is kept in the owner's original; shared copies leave
    it out (`photos.metadata`).
    """
    largest = max(sizes)
    with _decoded(source, filename, file_type, min_side, largest) as (image, (width, height)):
        orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
        if orientation in _QUARTER_TURNS:
            width, height = height, width
        icc_profile, cmyk = _colour_profile(image)
        shrunk = _shrink(image, largest, cmyk)
        if orientation in _TRANSPOSE:
            shrunk = shrunk.transpose(_TRANSPOSE[orientation])
        renditions = {}
        for size in sorted(sizes, reverse=True):
            if size != largest:
                shrunk = shrunk.copy()
                shrunk.thumbnail((size, size), Image.Resampling.BICUBIC, reducing_gap=2.0)
            renditions[size] = _webp(shrunk, icc_profile)
    return Rendered(file_type=file_type, width=width, height=height, renditions=renditions)


def verify(source: BinaryIO, filename: str, file_type: FileType, *, min_side: int = MIN_SIDE) -> tuple[int, int]:
    """`render`'s checks and a full decode of the pixels, without making renditions; return the size.

    For images from a source that already made their renditions, such as InvokeAI with its thumbnails: a
    file whose chunks and checksums are intact can still hold pixel data that does not decode, and would
    then fail at every view. (The decode checks what `Image.verify` would: the checksums of the chunks
    before the pixels, and zlib's own checksum of the pixel data.)
    """
    with _decoded(source, filename, file_type, min_side, None) as (_, size):
        return size


def portable_copy(source: Path | BinaryIO, filename: str, file_type: FileType) -> tuple[bytes, str]:
    """The image as a JPEG (a PNG if it has transparency) and that extension, for a tool that cannot read its
    format (InvokeAI reads no HEIC): full size, its orientation turned into the pixels, its colour profile
    kept, no other metadata. Decoded within the decode budget; the turned copy takes no more than the decode's
    own second copy, which is gone by then."""
    with _decoded(source, filename, file_type, 1, None) as (image, _):
        orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
        icc_profile, cmyk = _colour_profile(image)
        pixels = _to_8bit(image, cmyk)
        if orientation in _TRANSPOSE:
            pixels = pixels.transpose(_TRANSPOSE[orientation])
        buffer = io.BytesIO()
        if pixels.mode == "RGBA":
            pixels.save(buffer, "PNG", icc_profile=icc_profile)
            return buffer.getvalue(), "png"
        pixels.save(buffer, "JPEG", quality=COPY_JPEG_QUALITY, icc_profile=icc_profile)
        return buffer.getvalue(), "jpg"


def default_sizes() -> tuple[int, int]:
    return (settings.DISPLAY_SIZE, settings.THUMBNAIL_SIZE)
