"""Inpainting masks, converted from the app's convention to InvokeAI's.

The app's UI and API take masks painted the way people paint them: WHITE (or any opaque paint) marks what to
regenerate, black or transparent what to keep. InvokeAI's `create_gradient_mask` reads the opposite, black =
regenerate and white = keep (FACTS #12), so every mask passes through `to_invokeai_mask` before upload.
"""

from __future__ import annotations

import io

from PIL import Image, ImageOps


def to_invokeai_mask(data: bytes) -> bytes:
    """A grayscale PNG in InvokeAI's polarity from a mask painted white-on-black (or on transparency)."""
    with Image.open(io.BytesIO(data)) as painted:
        if painted.mode in ("RGBA", "LA", "PA") or "transparency" in painted.info:
            rgba = painted.convert("RGBA")
            # Transparent means unpainted: flatten onto black so it reads as "keep".
            flat = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
            gray = flat.convert("L")
        else:
            gray = painted.convert("L")
    buffer = io.BytesIO()
    ImageOps.invert(gray).save(buffer, "PNG")
    return buffer.getvalue()
