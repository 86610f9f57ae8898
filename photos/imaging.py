"""Validate image files and make their WebP renditions with Pillow.

A file is decoded once: `Image.thumbnail` asks the JPEG decoder for a DCT-domain downscale (`draft`), which is
4-5x faster than a full decode of a camera photo, and the decode itself is what detects truncated files.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from gallery_project.errors import InvalidInput, TooLarge

try:
    import pillow_heif
except ImportError:  # pragma: no cover - the system check reports it
    pillow_heif = None
else:
    pillow_heif.register_heif_opener()

MIN_SIDE = 100
MAX_SIDE = 8192
WEBP_QUALITY = 85
# EXIF orientations that rotate by 90 or 270 degrees, so the displayed width is the stored height.
_QUARTER_TURNS = {5, 6, 7, 8}


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


@dataclass(frozen=True)
class Rendered:
    """A validated image and its WebP renditions, keyed by the longest side they were made for."""

    file_type: FileType
    width: int
    height: int
    renditions: dict[int, bytes]


class ImageRejected(InvalidInput):
    """An upload that is not an image we accept; the message says why in words a person understands."""


def file_type_for(filename: str) -> FileType:
    suffix = Path(filename).suffix.lower()
    if suffix not in _TYPES:
        allowed = ", ".join(ALLOWED_EXTENSIONS)
        shown = suffix or "no extension"
        raise ImageRejected(f"'{filename}' has {shown}; only {allowed} files are accepted.", code="unsupported_type")
    if suffix == ".heic" and pillow_heif is None:
        raise ImageRejected("HEIC support is not installed on this server.", code="unsupported_type")
    return _TYPES[suffix]


def check_size(filename: str, size: int) -> None:
    if size > settings.MAX_UPLOAD_SIZE:
        limit = settings.MAX_UPLOAD_SIZE / (1024 * 1024)
        raise TooLarge(
            f"'{filename}' is {size / (1024 * 1024):.1f} MB; the limit is {limit:.0f} MB.",
            details={"max_upload_size": settings.MAX_UPLOAD_SIZE},
        )
    if size == 0:
        raise ImageRejected(f"'{filename}' is empty.", code="empty_file")


def _rgb(image: Image.Image) -> Image.Image:
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    wanted = "RGBA" if has_alpha else "RGB"
    return image if image.mode == wanted else image.convert(wanted)


def _webp(image: Image.Image, icc_profile: bytes | None) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "WEBP", quality=WEBP_QUALITY, icc_profile=icc_profile or b"")
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
            f"'{filename}' declares more pixels than can be decoded safely (a decompression bomb).",
            code="decompression_bomb",
        ) from None
    except UnidentifiedImageError:
        raise ImageRejected(f"'{filename}' is not an image file Pillow can read.", code="corrupt_image") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRejected(
            f"'{filename}' is damaged or incomplete and cannot be decoded ({exc}).", code="corrupt_image"
        ) from None


def _check(image: Image.Image, filename: str, file_type: FileType, min_side: int) -> None:
    if image.format != file_type.pil_format:
        raise ImageRejected(
            f"'{filename}' is named .{file_type.ext} but contains {image.format or 'unknown'} data.",
            code="format_mismatch",
        )
    width, height = image.size
    if not (min_side <= width <= MAX_SIDE and min_side <= height <= MAX_SIDE):
        raise ImageRejected(
            f"'{filename}' is {width}x{height} px; each side must be between {min_side} and {MAX_SIDE} px.",
            code="bad_dimensions",
            details={"width": width, "height": height, "min": min_side, "max": MAX_SIDE},
        )


def render(
    source: Path | BinaryIO, filename: str, file_type: FileType, sizes: tuple[int, ...], *, min_side: int = MIN_SIDE
) -> Rendered:
    """Check that `source` really is a `file_type` image of acceptable dimensions, and make its renditions.

    Raises ImageRejected for anything else: a different format, a corrupt or truncated file, dimensions
    outside min_side..8192 px, or a decompression bomb. Uploads keep the 100 px minimum; images InvokeAI made
    may be smaller (64 px is its smallest size).
    """
    with _rejecting(filename), Image.open(source) as image:
        return _render_open(image, filename, file_type, sizes, min_side)


def inspect(source: BinaryIO, filename: str, file_type: FileType, *, min_side: int = MIN_SIDE) -> tuple[int, int]:
    """`render`'s checks without decoding the pixels (a PNG's chunk checksums are verified); return the size.

    For images from a source that already made their renditions, such as InvokeAI with its thumbnails.
    """
    with _rejecting(filename), Image.open(source) as image:
        _check(image, filename, file_type, min_side)
        size = image.size
        image.verify()
    return size


def _render_open(
    image: Image.Image, filename: str, file_type: FileType, sizes: tuple[int, ...], min_side: int
) -> Rendered:
    _check(image, filename, file_type, min_side)
    width, height = image.size
    icc_profile = image.info.get("icc_profile")
    largest = max(sizes)
    if image.format == "JPEG":
        # Decode at the smallest DCT scale (1/2, 1/4, 1/8) still at least as large as the biggest rendition.
        # thumbnail() would ask for twice the size (its reducing_gap), which keeps a 24 MP photo at full scale.
        image.draft(None, (largest, largest))
    else:
        # Palette and 16-bit images resample badly (or not at all) in their own modes.
        image = _rgb(image)
    image.thumbnail((largest, largest), Image.Resampling.BICUBIC, reducing_gap=2.0)
    image.load()  # thumbnail() skips decoding images already small enough; decoding is what finds truncation
    if image.getexif().get(ExifTags.Base.Orientation, 1) in _QUARTER_TURNS:
        width, height = height, width
    image = ImageOps.exif_transpose(_rgb(image))
    renditions = {}
    for size in sorted(sizes, reverse=True):
        if size != largest:
            image = image.copy()
            image.thumbnail((size, size), Image.Resampling.BICUBIC, reducing_gap=2.0)
        renditions[size] = _webp(image, icc_profile)
    return Rendered(file_type=file_type, width=width, height=height, renditions=renditions)


def default_sizes() -> tuple[int, int]:
    return (settings.DISPLAY_SIZE, settings.THUMBNAIL_SIZE)
