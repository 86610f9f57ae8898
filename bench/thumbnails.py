"""Thumbnail speed: the project's rendition code beside pyvips' `thumbnail`, on the same files, in one run.

    .venv/bin/pip install -e '.[bench]'      # pyvips with its own libvips
    .venv/bin/python bench/thumbnails.py [--rounds 15]

Both sides produce a 300 px WebP (quality 85) from the file on disk. Rounds alternate between the two so
machine noise hits both equally; the figures are medians. Target: project <= 1.25x pyvips on the JPEG.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gallery_project.settings_test")

import django

django.setup()

import pyvips  # noqa: E402
from PIL import Image, ImageFilter  # noqa: E402

from photos import imaging  # noqa: E402


def photo_like(size: tuple[int, int]) -> Image.Image:
    """Noise over smooth gradients: compresses and decodes like a camera photo, unlike a flat colour."""
    gradient = Image.linear_gradient("L").resize(size)
    noise = Image.effect_noise(size, 40).filter(ImageFilter.GaussianBlur(1.2))
    red = Image.blend(gradient, noise, 0.5)
    green = Image.blend(gradient.transpose(Image.Transpose.ROTATE_180), noise, 0.4)
    blue = Image.effect_noise(size, 70)
    return Image.merge("RGB", (red, green, blue))


def time_it(function, rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    logging.getLogger("pyvips").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="thumb-bench-"))
    jpeg = workdir / "camera-24mp.jpg"
    photo_like((6000, 4000)).save(jpeg, "JPEG", quality=92)
    png = workdir / "render-1024.png"
    photo_like((1024, 1024)).save(png, "PNG")

    libvips = f"{pyvips.version(0)}.{pyvips.version(1)}"
    print(f"pyvips {pyvips.__version__} (libvips {libvips}), Pillow {Image.__version__}, {os.cpu_count()} CPUs")
    print(f"{'file':<22}{'what':<38}{'median ms':>10}{'p95 ms':>9}{'vs pyvips':>11}")
    for path, filename in ((jpeg, "camera-24mp.jpg"), (png, "render-1024.png")):
        file_type = imaging.file_type_for(filename)
        cases = {
            "pyvips thumbnail 300 -> webp": lambda p=path: pyvips.Image.thumbnail(str(p), 300).webpsave_buffer(Q=85),
            "project thumbnail 300 -> webp": lambda p=path, t=file_type, n=filename: imaging.render(p, n, t, (300,)),
            "project upload (1600 + 300, validated)": lambda p=path, t=file_type, n=filename: imaging.render(
                p, n, t, (1600, 300)
            ),
        }
        for function in cases.values():
            function()  # warm caches and lazy imports
        samples = {name: [] for name in cases}
        for _ in range(args.rounds):
            for name, function in cases.items():
                samples[name] += time_it(function, 1)
        reference = statistics.median(samples["pyvips thumbnail 300 -> webp"])
        for name, values in samples.items():
            median = statistics.median(values)
            p95 = statistics.quantiles(values, n=20)[-1]
            print(f"{filename:<22}{name:<38}{median * 1000:>10.1f}{p95 * 1000:>9.1f}{median / reference:>10.2f}x")
    for path in (jpeg, png):
        path.unlink()
    workdir.rmdir()


if __name__ == "__main__":
    main()
