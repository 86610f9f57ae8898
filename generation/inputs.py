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
    with storage.opened(photo.local_storage_path) as handle, Image.open(handle) as opened:
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


def bounded_size(width: int, height: int) -> tuple[int, int]:
    """The size a photo is used at: under MAX_INPUT_SIDE on its long side (as `thumbnail` rounds it)."""
    if max(width, height) <= MAX_INPUT_SIDE:
        return width, height
    scale = MAX_INPUT_SIDE / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def outpaint_sides(*, width: int, height: int, sides: dict[str, int], multiple: int) -> tuple[dict[str, int], int, int]:
    """The sides to extend a width x height image by so the canvas is in `multiple`s: what a side lacks is
    added to the side being extended on that axis (right, bottom when none is), so the original is not scaled."""
    sides = dict(sides)
    for before, after, size in (("left", "right", width), ("top", "bottom", height)):
        missing = -(size + sides[before] + sides[after]) % multiple
        sides[before if sides[before] and not sides[after] else after] += missing
    return sides, width + sides["left"] + sides["right"], height + sides["top"] + sides["bottom"]


def outpaint_to_ratio(
    *, width: int, height: int, ratio: tuple[int, int], multiple: int
) -> tuple[dict[str, int], int, int]:
    """The sides to extend a width x height image by, centred, for a canvas of about `ratio` (across, down) in
    `multiple`s: the image is widened or heightened, never cropped or scaled."""

    def up(value: float) -> int:
        return math.ceil(value / multiple) * multiple

    across, down = ratio
    if width * down < height * across:
        canvas_height = up(height)
        canvas_width = max(up(width), round(canvas_height * across / down / multiple) * multiple)
    else:
        canvas_width = up(width)
        canvas_height = max(up(height), round(canvas_width * down / across / multiple) * multiple)
    left, top = (canvas_width - width) // 2, (canvas_height - height) // 2
    sides = {"left": left, "right": canvas_width - width - left, "top": top, "bottom": canvas_height - height - top}
    return sides, canvas_width, canvas_height


def outpaint_images(*, photo: Photo, size: tuple[int, int], sides: dict[str, int]) -> tuple[bytes, bytes, bytes]:
    """The padded canvas (the new area transparent, for the infill), the mask in InvokeAI's polarity (the new
    area regenerated) and the original as it is pasted back."""
    original = _opened_rgb(photo)
    if original.size != size:
        # EXIF rotation can swap the stored size; the canvas was planned for this one.
        original = ImageOps.fit(original, size, Image.Resampling.LANCZOS)
    canvas_size = (size[0] + sides["left"] + sides["right"], size[1] + sides["top"] + sides["bottom"])
    canvas = Image.new("RGBA", canvas_size, (0, 0, 0, 0))
    canvas.paste(original, (sides["left"], sides["top"]))
    painted = Image.new("L", canvas_size, 255)
    painted.paste(0, (sides["left"], sides["top"], sides["left"] + size[0], sides["top"] + size[1]))
    return _png(canvas), to_invokeai_mask(_png(painted)), _png(original)
