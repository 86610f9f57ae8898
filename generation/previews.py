"""The denoising previews of running items: files at `previews/{step_id}/{item_id}.jpg`, rows in ItemProgress.

InvokeAI sends a preview with every denoising step as a data URL (a JPEG at 1/8 of the image's size). It is
decoded and encoded again before it is written (atomically, over the previous one), so what the browser gets is
always a plain small JPEG whatever InvokeAI sent. A preview goes once its item has finished, with its row: the
real image takes its place. The minute sweep removes whatever a crash left behind.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
from collections.abc import Sequence

from django.db import transaction
from PIL import Image, UnidentifiedImageError

from photos import storage

from .models import GenerationStep, ItemProgress

logger = logging.getLogger(__name__)

# A data URL of a preview is a few kB (a 1024 px image gives a 128 px JPEG; the largest, 4096 px, a 512 px one,
# tens of kB); past these it is not a preview. The pixels are counted from the image's header, before any decoding,
# so a small file declaring a huge image (a decompression bomb) costs nothing.
MAX_DATA_URL = 512 * 1024
MAX_SIDE = 512
# Each data URL's image must be what it says it is: only that format's decoder is tried.
_FORMATS = {"data:image/jpeg;base64,": "JPEG", "data:image/png;base64,": "PNG", "data:image/webp;base64,": "WEBP"}
JPEG_QUALITY = 85


class BadPreview(ValueError):
    """What InvokeAI sent as a preview is not a small image."""


def preview_encode(data_url: str) -> bytes:
    """The JPEG to store for `data_url`; BadPreview if it is not a small JPEG, PNG or WebP."""
    if len(data_url) > MAX_DATA_URL:
        raise BadPreview(f"a preview of {len(data_url)} characters")
    prefix = next((prefix for prefix in _FORMATS if data_url.startswith(prefix)), None)
    if prefix is None:
        raise BadPreview("not an image data URL")
    try:
        raw = base64.b64decode(data_url[len(prefix) :], validate=True)
        with Image.open(io.BytesIO(raw), formats=[_FORMATS[prefix]]) as image:
            if max(image.size) > MAX_SIDE:
                raise BadPreview(f"a {image.format} of {image.size[0]}x{image.size[1]}")
            out = io.BytesIO()
            image.convert("RGB").save(out, "JPEG", quality=JPEG_QUALITY)
    except (binascii.Error, UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise BadPreview(str(exc)) from None
    return out.getvalue()


def preview_write(*, step_id: int, item_id: int, jpeg: bytes) -> None:
    with storage.staged() as files:
        files.write(storage.preview_path(step_id, item_id), jpeg)
        files.publish()


def previews_clear(*, step_id: int, item_ids: Sequence[int] | None = None) -> None:
    """Forget the live state of these items of the step (all of them if None), files once that has committed."""
    rows = ItemProgress.objects.filter(step_id=step_id)
    if item_ids is not None:
        rows = rows.filter(item_id__in=list(item_ids))
        paths = [storage.preview_path(step_id, item_id) for item_id in item_ids]
        rows.delete()
        storage.delete_files_on_commit(paths)
        return
    rows.delete()
    transaction.on_commit(lambda: _remove_directory(step_id))


def _remove_directory(step_id: object) -> None:
    try:
        storage.delete_folder(f"{storage.PREVIEWS}/{step_id}")
    except (OSError, ValueError, storage.StoreUnavailable):
        logger.warning("Could not delete the previews of step %s", step_id, exc_info=True)


def previews_sweep() -> int:
    """Remove the live state and files of steps no longer running (left by a crash or a late event)."""
    ItemProgress.objects.exclude(step__status=GenerationStep.Status.RUNNING).delete()
    named = [name for name in storage.subfolders(storage.PREVIEWS) if name.isdigit()]
    running = {
        str(pk)
        for pk in GenerationStep.objects.filter(pk__in=[int(name) for name in named], status="running").values_list(
            "pk", flat=True
        )
    }
    gone = [name for name in named if name not in running]
    for name in gone:
        _remove_directory(name)
    return len(gone)
