"""The photo store as tests look at it, the same on the local disk and in a bucket (TEST_MEDIA=s3)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator

from PIL import Image

from photos import storage


def stored_names() -> list[str]:
    """Every file in the photo store, by its name in the layout (a half-written temporary file included)."""
    if storage.is_local():
        root = storage.root()
        return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())
    return sorted(storage.bucket().names_under(""))


def stored_bytes(relative: str) -> bytes:
    return storage.read_bytes(relative)


@contextlib.contextmanager
def stored_image(relative: str) -> Iterator[Image.Image]:
    with Image.open(io.BytesIO(stored_bytes(relative))) as image:
        yield image


def remove(relative: str) -> None:
    storage.delete_files([relative])
