"""Init and mask images for img2img and inpainting: sized for the graph, in InvokeAI's mask polarity.

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


def input_image(*, photo: Photo, width: int, height: int, mask: bool = False) -> bytes:
    """The PNG to upload for `photo` as an init image (or, with `mask`, as an inpainting mask)."""
    with Image.open(storage.absolute(photo.local_storage_path)) as opened:
        image = ImageOps.exif_transpose(opened)
        has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        image = image.convert("RGBA" if mask and has_alpha else "RGB")
    if max(image.size) > MAX_INPUT_SIDE:
        image.thumbnail((MAX_INPUT_SIDE, MAX_INPUT_SIDE), Image.Resampling.LANCZOS)
    if image.size != (width, height):
        image = ImageOps.fit(image, (width, height), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    data = buffer.getvalue()
    return to_invokeai_mask(data) if mask else data
