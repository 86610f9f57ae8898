"""One budget of image-decoding memory for the whole installation: every web process and thread, the
background worker and `import_photos` take their share of IMAGE_DECODE_MEMORY before decoding an image.

A decoded 8192x8192 image holds 256 MB or more however small its file is, so six large uploads at once could
take gigabytes. The budget is cut into units of `UNIT` bytes, each an exclusive `flock` on its own file under
DATA_DIR/locks/: a decode holds as many units as it needs, and the kernel frees them when the holder closes
them or dies (a process killed for lack of memory cannot leak its share). `flock` locks belong to open files,
not processes, so threads of one process wait for each other like separate processes do. Takers queue behind
one admission lock, so a large decode is not starved by a stream of small ones.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings

from gallery_project.errors import TooLarge, Unavailable

UNIT = 16 * 1024 * 1024
_POLL_SECONDS = 0.02


def _lock_dir() -> Path:
    path = settings.DATA_DIR / "locks"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _megabytes(size: int) -> str:
    return f"{size / 1e6:,.0f} MB"


def check(needed: int, filename: str, *, details: dict | None = None) -> None:
    """Refuse an image that alone needs more decoding memory than the whole budget."""
    if needed > settings.IMAGE_DECODE_MEMORY:
        raise TooLarge(
            f"'{filename}' would need about {_megabytes(needed)} of memory to open, more than this server allows "
            f"for one image ({_megabytes(settings.IMAGE_DECODE_MEMORY)}). Re-export it with fewer pixels, or as "
            "a JPEG, which opens at a fraction of the cost.",
            code="image_too_costly",
            details={**(details or {}), "needed_bytes": needed, "limit_bytes": settings.IMAGE_DECODE_MEMORY},
        )


@contextlib.contextmanager
def reserve(needed: int, filename: str, *, details: dict | None = None) -> Iterator[None]:
    """Hold `needed` bytes of the budget while the block runs; wait up to IMAGE_DECODE_WAIT seconds for them.

    Raises TooLarge (413) if `needed` exceeds the whole budget, Unavailable (503) if the wait runs out.
    """
    check(needed, filename, details=details)
    total = max(1, settings.IMAGE_DECODE_MEMORY // UNIT)
    wanted = min(total, max(1, math.ceil(needed / UNIT)))
    directory = _lock_dir()
    deadline = time.monotonic() + settings.IMAGE_DECODE_WAIT
    held: list[int] = []
    try:
        admission = None
        while admission is None:
            admission = _try_lock(directory / "admission")
            if admission is None:
                _wait_or_give_up(deadline, filename)
        try:
            while len(held) < wanted:
                for slot in range(total):
                    if (fd := _try_lock(directory / f"decode-{slot}")) is not None:
                        held.append(fd)
                        if len(held) == wanted:
                            break
                else:
                    _wait_or_give_up(deadline, filename)
        finally:
            os.close(admission)
        yield
    finally:
        for fd in held:
            os.close(fd)


def _wait_or_give_up(deadline: float, filename: str) -> None:
    if time.monotonic() >= deadline:
        raise Unavailable(
            f"The server is busy opening other large images; try '{filename}' again in a minute.",
            code="decoder_busy",
            details={"retry_after": 60},
        )
    time.sleep(_POLL_SECONDS)
