"""The lightbox's details panel: camera, lens, exposure, size, date taken, the place (owner only) and the recipe."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from PIL import Image

from albums import services as album_services
from photos import embedded

from .images import image_bytes
from .test_ai_recipe import a1111_png

pytestmark = pytest.mark.django_db

# Somewhere in Berlin: 52° 31' 12" N, 13° 24' 36" E.
BERLIN = (52.52, 13.41)


def camera_jpeg(*, gps: bool = True) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = "Canon EOS R5"
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = "2023:06:01 19:45:00"
    sub[0x9011] = "+02:00"
    sub[0xA434] = "RF24-105mm F4 L IS USM"
    sub[0x829D] = 4.0  # FNumber
    sub[0x829A] = 1 / 250  # ExposureTime
    sub[0x8827] = 200  # ISO
    sub[0x920A] = 50.0  # FocalLength
    if gps:
        exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}
    return image_bytes("JPEG", exif=exif.tobytes())


def test_camera_details_are_read_and_formatted(tmp_path):
    path = tmp_path / "camera.jpg"
    path.write_bytes(camera_jpeg())
    details = embedded.camera_details(path)
    assert details.camera == "Canon EOS R5"  # the make is not repeated
    assert details.lens == "RF24-105mm F4 L IS USM"
    assert details.exposure == "f/4 · 1/250 s · ISO 200 · 50 mm"
    assert (round(details.latitude, 2), round(details.longitude, 2)) == BERLIN
    assert details.map_url.startswith("https://www.openstreetmap.org/?mlat=52.520000&mlon=13.410000")


def test_southern_and_western_coordinates_are_negative_and_nonsense_is_dropped(tmp_path):
    path = tmp_path / "photo.jpg"
    exif = Image.Exif()
    exif[0x8825] = {1: "S", 2: (33.0, 51.0, 0.0), 3: "W", 4: (70.0, 40.0, 0.0)}
    path.write_bytes(image_bytes("JPEG", exif=exif.tobytes()))
    details = embedded.camera_details(path)
    assert details.latitude < 0 and details.longitude < 0
    exif[0x8825] = {1: "N", 2: (152.0, 0.0, 0.0), 3: "E", 4: (13.0, 0.0, 0.0)}
    path.write_bytes(image_bytes("JPEG", exif=exif.tobytes()))
    assert not embedded.camera_details(path).has_location
    path.write_bytes(b"not an image")
    assert embedded.camera_details(path) == embedded.CameraDetails()


def test_owner_lightbox_shows_every_detail(owner_client, upload):
    photo = upload("berlin.jpg", camera_jpeg())
    html = owner_client.get(f"/photos/{photo.pk}/", headers={"HX-Request": "true"}).content.decode()
    assert photo.taken_at == datetime(2023, 6, 1, 17, 45, tzinfo=UTC)
    for text in ("Canon EOS R5", "RF24-105mm F4 L IS USM", "f/4 · 1/250 s · ISO 200 · 50 mm", "640 \u00d7 480 px"):
        assert text in html
    assert 'data-detail="taken">June 1, 2023' in html
    assert "52.52000, 13.41000" in html
    assert 'href="https://www.openstreetmap.org/?mlat=52.520000&amp;mlon=13.410000' in html
    assert 'rel="noopener noreferrer"' in html


def test_the_recipe_of_another_tools_image(owner_client, upload):
    photo = upload("castle.png", a1111_png())
    html = owner_client.get(f"/photos/{photo.pk}/").content.decode()
    for text in ("Recipe", "Made with", "AUTOMATIC1111", "DPM++ 2M", "Made at", "512 \u00d7 768 px"):
        assert text in html, text
    assert "LoRAs</dt><dd>add_detail (0.7), film_grain (1)" in html
    assert "v1-5-pruned-emaonly" in html and "6ce0161689" in html


@pytest.mark.parametrize("show_details", [False, True])
def test_share_pages_never_show_the_place_or_the_camera(client, user, upload, show_details):
    photo = upload("berlin.jpg", camera_jpeg())
    token = album_services.share_link_create(owner=user, photo_id=photo.pk, show_details=show_details).token
    page = client.get(f"/s/{token}/")
    body = client.get(f"/s/{token}/photos/{photo.pk}/", headers={"HX-Request": "true"})
    assert page.status_code == body.status_code == 200
    assert "640 \u00d7 480 px" in body.content.decode()  # the shared lightbox, with what it may show
    for html in (page.content.decode(), body.content.decode()):
        assert "52.52" not in html and "openstreetmap" not in html and "Canon" not in html
