"""Removing the location from an original for sharing: GPS and XMP go, pixels and everything else stay."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from photos import metadata

from .images import image_bytes, with_gps

FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "HEIF": "heic"}


def _read(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize("fmt", FORMATS)
def test_gps_and_xmp_are_removed_and_pixels_kept(tmp_path, fmt):
    original = with_gps(fmt)
    assert _read(original).getexif().get_ifd(metadata.GPS_IFD), "the test image must carry GPS"
    path = tmp_path / f"photo.{FORMATS[fmt]}"
    path.write_bytes(original)

    cleaned = metadata.without_location(path).getvalue()

    image = _read(cleaned)
    assert image.getexif().get_ifd(metadata.GPS_IFD) == {}
    assert not (image.info.get("xmp") or b"").strip()
    assert b"Berlin" not in cleaned and b"GPSLatitude" not in cleaned
    assert image.tobytes() == _read(original).tobytes()
    if fmt != "PNG":
        # Patched in place: same length, and the camera's other EXIF is still there.
        assert len(cleaned) == len(original)
        assert image.getexif()[0x010F] == "TestCam"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_a_file_without_location_comes_out_unchanged(tmp_path, fmt):
    data = image_bytes(fmt)
    path = tmp_path / f"plain.{FORMATS[fmt]}"
    path.write_bytes(data)
    assert metadata.without_location(path).getvalue() == data


def test_the_coordinates_are_zeroed_not_just_unlinked(tmp_path):
    original = with_gps("JPEG")
    rational = (52).to_bytes(4, "big") + (1).to_bytes(4, "big")  # 52/1, the latitude's degrees
    assert rational in original
    path = tmp_path / "photo.jpg"
    path.write_bytes(original)
    assert rational not in metadata.without_location(path).getvalue()


def test_a_broken_exif_block_is_refused(tmp_path):
    data = bytearray(with_gps("JPEG"))
    start = data.index(b"Exif\x00\x00") + 6
    data[start + 4 : start + 8] = b"\xff\xff\xff\x00"  # IFD0 offset far outside the block
    path = tmp_path / "broken.jpg"
    path.write_bytes(bytes(data))
    with pytest.raises(metadata.LocationNotRemovable):
        metadata.without_location(path)
