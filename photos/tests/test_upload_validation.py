"""Every refusal of the upload validation, each with its own file, through the API: a 400 (or 413) with a
message a person understands, and nothing stored: no row, no file."""

from __future__ import annotations

import os

import pytest

from photos.models import Photo

from .conftest import as_upload
from .images import image_bytes, png_declaring, truncated

pytestmark = pytest.mark.django_db


def store_is_empty(photos_dir) -> bool:
    return not [p for p in photos_dir.rglob("*") if p.is_file()]


REFUSALS = [
    pytest.param("notes.txt", b"hello", "unsupported_type", "only .jpg", id="text-extension"),
    pytest.param("anim.gif", image_bytes("GIF"), "unsupported_type", "only .jpg", id="gif"),
    pytest.param("noextension", image_bytes(), "unsupported_type", "no extension", id="no-extension"),
    pytest.param("really-png.jpg", image_bytes("PNG"), "format_mismatch", "contains PNG data", id="png-named-jpg"),
    pytest.param("really-jpeg.webp", image_bytes("JPEG"), "format_mismatch", "contains JPEG", id="jpeg-named-webp"),
    pytest.param("tiny.png", image_bytes("PNG", (50, 50)), "bad_dimensions", "between 100 and 8192", id="too-small"),
    pytest.param("strip.png", image_bytes("PNG", (99, 400)), "bad_dimensions", "99x400", id="one-side-too-small"),
    pytest.param("wide.png", image_bytes("PNG", (8193, 120)), "bad_dimensions", "8193x120", id="too-wide"),
    pytest.param("bomb.png", png_declaring(40000, 40000), "decompression_bomb", "decompression bomb", id="bomb"),
    pytest.param(
        "cut.jpg",
        truncated(image_bytes("JPEG", (800, 600), quality=95)),
        "corrupt_image",
        "damaged",
        id="truncated-jpeg",
    ),
    pytest.param("cut.png", truncated(image_bytes("PNG", (800, 600))), "corrupt_image", "damaged", id="truncated-png"),
    pytest.param("noise.png", os.urandom(4096), "corrupt_image", "not an image", id="random-bytes"),
    pytest.param("empty.jpg", b"", "empty_file", "empty", id="empty"),
]


@pytest.mark.parametrize(("name", "data", "code", "message"), REFUSALS)
def test_refused_upload_says_why_and_stores_nothing(api, _photo_store, name, data, code, message):
    response = api.post("/api/photos/", {"file": as_upload(name, data)}, format="multipart")

    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == code
    assert message in body["message"]
    assert set(body) == {"code", "message", "details"}
    assert Photo.objects.count() == 0
    assert store_is_empty(_photo_store)


def test_file_over_the_size_limit_is_refused_with_413(api, settings, _photo_store):
    settings.MAX_UPLOAD_SIZE = 1000
    data = image_bytes("PNG", (400, 400))
    assert len(data) > 1000

    response = api.post("/api/photos/", {"file": as_upload("big.png", data)}, format="multipart")

    assert response.status_code == 413
    assert response.json()["code"] == "too_large"
    assert "limit is" in response.json()["message"]
    assert Photo.objects.count() == 0
    assert store_is_empty(_photo_store)


def test_request_body_far_over_the_limit_is_refused_before_it_is_read(api, settings):
    settings.MAX_UPLOAD_SIZE = 1000
    response = api.post("/api/photos/", {"file": as_upload("big.png", b"x" * 200_000)}, format="multipart")
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"


def test_missing_file_field_is_a_400(api):
    response = api.post("/api/photos/", {}, format="multipart")
    assert response.status_code == 400
    assert response.json()["message"].startswith("file:")


@pytest.mark.parametrize(
    ("name", "fmt", "mime"),
    [
        ("a.jpg", "JPEG", "image/jpeg"),
        ("b.JPEG", "JPEG", "image/jpeg"),
        ("c.png", "PNG", "image/png"),
        ("d.webp", "WEBP", "image/webp"),
        ("e.heic", "HEIF", "image/heic"),
    ],
)
def test_each_accepted_format(api, name, fmt, mime):
    response = api.post("/api/photos/", {"file": as_upload(name, image_bytes(fmt, (320, 200)))}, format="multipart")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["mime_type"] == mime
    assert (body["width"], body["height"]) == (320, 200)
