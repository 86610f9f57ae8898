"""Init, mask and control images: init and mask sized for the graph, in InvokeAI's mask polarity.

InvokeAI's img2img graph encodes the init image as it is, and its noise must be the same size (API-NOTES §6.5),
so the image sent is exactly the step's width x height: very large photos are first brought under 2048 px
(LANCZOS, aspect kept), then cropped to the step's aspect ratio around the centre and scaled to its size.
"""

from __future__ import annotations

import io
import math

from PIL import Image, ImageOps

from backends.invokeai.masks import to_invokeai_mask
from photos import storage
from photos.models import Photo

MAX_INPUT_SIDE = 2048


def snapped_size(*, width: int, height: int, side: int, multiple: int) -> tuple[int, int]:
    """A size with the aspect ratio of width x height and about the area of a `side` square, in `multiple`s."""
    ratio = width / height
    target_width = math.sqrt(side * side * ratio)
    target_height = target_width / ratio

    def snap(value: float) -> int:
        return max(64, round(value / multiple) * multiple)

    return snap(target_width), snap(target_height)


def _opened_rgb(photo: Photo, *, keep_alpha: bool = False) -> Image.Image:
    with Image.open(storage.absolute(photo.local_storage_path)) as opened:
        image = ImageOps.exif_transpose(opened)
        has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        image = image.convert("RGBA" if keep_alpha and has_alpha else "RGB")
    if max(image.size) > MAX_INPUT_SIDE:
        # The ControlNet API's rule for every input: down to 2048 px on the long side, never enlarged.
        image.thumbnail((MAX_INPUT_SIDE, MAX_INPUT_SIDE), Image.Resampling.LANCZOS)
    return image


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def control_image(*, photo: Photo) -> bytes:
    """The PNG to upload as a ControlNet's control image: the photo as it is, brought under 2048 px; the
    controlnet node's resize_mode fits it to the step's size."""
    return _png(_opened_rgb(photo))


def input_image(*, photo: Photo, width: int, height: int, mask: bool = False) -> bytes:
    """The PNG to upload for `photo` as an init image (or, with `mask`, as an inpainting mask)."""
    image = _opened_rgb(photo, keep_alpha=mask)
    if image.size != (width, height):
        image = ImageOps.fit(image, (width, height), Image.Resampling.LANCZOS)
    data = _png(image)
    return to_invokeai_mask(data) if mask else data
