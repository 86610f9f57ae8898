"""Removing the location from an original for sharing: GPS and XMP go, pixels and everything else stay."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from photos import metadata

from .images import (
    LOCATION_ATOM_TEXT,
    SECRET_PROMPT,
    image_bytes,
    imagemagick_png_with_gps,
    invokeai_png,
    jpeg_with_generation_text,
    motion_photo,
    mp4_box,
    mp4_with_location,
    mpo_with_gps_in_second_frame,
    png_chunk,
    png_chunk_keywords,
    with_gps,
)

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

    cleaned = metadata.shareable_copy(path, keep_details=False).getvalue()

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
    assert metadata.shareable_copy(path, keep_details=False).getvalue() == data


def test_the_coordinates_are_zeroed_not_just_unlinked(tmp_path):
    original = with_gps("JPEG")
    rational = (52).to_bytes(4, "big") + (1).to_bytes(4, "big")  # 52/1, the latitude's degrees
    assert rational in original
    path = tmp_path / "photo.jpg"
    path.write_bytes(original)
    assert rational not in metadata.shareable_copy(path, keep_details=False).getvalue()


def test_a_broken_exif_block_is_refused(tmp_path):
    data = bytearray(with_gps("JPEG"))
    start = data.index(b"Exif\x00\x00") + 6
    data[start + 4 : start + 8] = b"\xff\xff\xff\x00"  # IFD0 offset far outside the block
    path = tmp_path / "broken.jpg"
    path.write_bytes(bytes(data))
    with pytest.raises(metadata.NotCleanable):
        metadata.shareable_copy(path, keep_details=False)


# --- Generation details, trailers, other tools' metadata ---


def _copy(tmp_path, data: bytes, name: str, *, keep_details: bool = False) -> bytes:
    path = tmp_path / name
    path.write_bytes(data)
    return metadata.shareable_copy(path, keep_details=keep_details).getvalue()


def test_a_png_loses_every_tools_generation_chunks_unless_details_are_shown(tmp_path):
    original = invokeai_png()
    hidden = _copy(tmp_path, original, "gen.png")
    assert {keyword for _, keyword in png_chunk_keywords(hidden)} == {b""}, "no text chunk at all"
    assert SECRET_PROMPT.encode() not in hidden and b"987654321" not in hidden
    assert _read(hidden).tobytes() == _read(original).tobytes()

    shown = _copy(tmp_path, original, "gen.png", keep_details=True)
    assert shown == original, "the owner chose to show them"


def test_a_png_loses_imagemagicks_gps_text_and_profiles_and_what_follows_iend(tmp_path):
    original = imagemagick_png_with_gps()
    for keep_details in (False, True):
        cleaned = _copy(tmp_path, original, "im.png", keep_details=keep_details)
        keywords = {keyword for _, keyword in png_chunk_keywords(cleaned)}
        assert not {k for k in keywords if k.lower().startswith((b"exif:gps", b"raw profile"))}
        assert b"52/1" not in cleaned and b"13/1" not in cleaned
        assert cleaned.endswith(png_chunk(b"IEND", b"")) and LOCATION_ATOM_TEXT not in cleaned
        assert _read(cleaned).tobytes() == _read(original).tobytes()
    # Text that says nothing of the place stays when details are shown.
    assert b"exif:Make" in {keyword for _, keyword in png_chunk_keywords(cleaned)}


def test_a_motion_photo_is_sent_without_its_video(tmp_path):
    original, jpeg = motion_photo()
    assert LOCATION_ATOM_TEXT in original
    for keep_details in (False, True):
        cleaned = _copy(tmp_path, original, "motion.jpg", keep_details=keep_details)
        assert len(cleaned) == len(jpeg) and cleaned.endswith(b"\xff\xd9")
        assert LOCATION_ATOM_TEXT not in cleaned and b"moov" not in cleaned and b"MotionPhoto" not in cleaned
        assert _read(cleaned).tobytes() == _read(jpeg).tobytes()


def test_an_mpo_is_sent_as_its_first_frame(tmp_path):
    original, first_pixels = mpo_with_gps_in_second_frame()
    assert b"Berlin" in original
    cleaned = _copy(tmp_path, original, "camera.jpg")
    image = _read(cleaned)
    assert image.format == "JPEG" and getattr(image, "n_frames", 1) == 1
    assert b"Berlin" not in cleaned and b"MPF\x00" not in cleaned
    assert cleaned.count(b"\xff\xd8") == 1, "one image, no second frame"
    assert image.tobytes() == Image.open(io.BytesIO(original)).tobytes()
    assert len(first_pixels) == len(image.tobytes())


def test_a_jpeg_loses_generation_text_comments_and_iptc(tmp_path):
    original = jpeg_with_generation_text()
    hidden = _copy(tmp_path, original, "a1111.jpg")
    assert SECRET_PROMPT.encode() not in hidden and b"Berlin" not in hidden
    image = _read(hidden)
    assert "photoshop" not in image.info
    assert len(hidden) == len(original), "patched in place"
    assert image.tobytes() == _read(original).tobytes()

    shown = _copy(tmp_path, original, "a1111.jpg", keep_details=True)
    assert SECRET_PROMPT.encode() in shown, "the owner chose to show the parameters"
    assert b"Berlin" not in shown, "the city is location, whatever the owner shows"


def test_a_webp_loses_its_exif_comment_and_what_follows_its_riff(tmp_path):
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"ASCII\x00\x00\x00" + SECRET_PROMPT.encode()
    webp = image_bytes("WEBP", exif=exif.tobytes())
    cleaned = _copy(tmp_path, webp + b"appended " + LOCATION_ATOM_TEXT, "a1111.webp")
    assert len(cleaned) == len(webp)
    assert SECRET_PROMPT.encode() not in cleaned and LOCATION_ATOM_TEXT not in cleaned
    assert _read(cleaned).tobytes() == _read(webp).tobytes()


def test_a_heif_motion_photo_loses_its_video_box_and_what_follows(tmp_path):
    heic = with_gps("HEIF")
    video = mp4_box(b"mpvd", mp4_with_location())
    cleaned = _copy(tmp_path, heic + video + b"appended", "motion.heic")
    assert len(cleaned) == len(heic) + len(video), "the video's box is kept as free space: no offset moves"
    assert LOCATION_ATOM_TEXT not in cleaned and b"mpvd" not in cleaned and b"Berlin" not in cleaned
    assert _read(cleaned).tobytes() == _read(heic).tobytes()
