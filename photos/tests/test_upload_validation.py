"""Every refusal of the upload validation, each with its own file, through the API: a 400 (or 413) with a
message a person understands, and nothing stored: no row, no file."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import threading

import pytest
from PIL import Image

from gallery_project.errors import AppError, Unavailable
from photos import decode_budget, metadata
from photos import services as photo_services
from photos.models import Photo
from testing.media import stored_bytes, stored_image, stored_names

from .conftest import as_upload
from .images import image_bytes, png_declaring, truncated, with_garbage_pixels, zip_archive

pytestmark = pytest.mark.django_db


def store_is_empty(photos_dir) -> bool:
    return not [p for p in photos_dir.rglob("*") if p.is_file()]


TAKES = "the gallery takes JPEG, PNG, WebP or HEIC photos"
RE_EXPORT = "export it again as JPEG or PNG"


def webp_declaring(width: int, height: int) -> bytes:
    """A small lossy WebP whose frame header claims another size."""
    data = bytearray(image_bytes("WEBP", (120, 120)))
    assert data[12:16] == b"VP8 "
    data[26:30] = struct.pack("<HH", width, height)
    return bytes(data)


def jpeg_declaring(width: int, height: int) -> bytes:
    """A JPEG whose start-of-frame claims another size than its data holds."""
    data = bytearray(image_bytes("JPEG", (120, 120)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


REFUSALS = [
    pytest.param("notes.txt", b"hello", "unsupported_type", TAKES, id="text-extension"),
    pytest.param("anim.gif", image_bytes("GIF"), "unsupported_type", TAKES, id="gif"),
    pytest.param("noextension", image_bytes(), "unsupported_type", "without an extension", id="no-extension"),
    pytest.param(
        "really-png.jpg", image_bytes("PNG"), "format_mismatch", "holds a PNG image. Rename it", id="png-named-jpg"
    ),
    pytest.param("really-jpeg.webp", image_bytes("JPEG"), "format_mismatch", "end in .jpg", id="jpeg-named-webp"),
    pytest.param("really-gif.png", image_bytes("GIF"), "format_mismatch", RE_EXPORT, id="gif-named-png"),
    pytest.param("tiny.png", image_bytes("PNG", (50, 50)), "bad_dimensions", "between 100 and 8192", id="too-small"),
    pytest.param("strip.png", image_bytes("PNG", (99, 400)), "bad_dimensions", "99x400", id="one-side-too-small"),
    pytest.param("wide.png", image_bytes("PNG", (8193, 120)), "bad_dimensions", "Resize it", id="too-wide"),
    pytest.param("bomb.png", png_declaring(40000, 40000), "decompression_bomb", "resize it to at most", id="bomb"),
    pytest.param("bomb.webp", webp_declaring(16000, 16000), "bad_dimensions", "16000x16000", id="webp-bomb"),
    pytest.param("bomb.jpg", jpeg_declaring(60000, 60000), "decompression_bomb", "far larger", id="jpeg-bomb"),
    # A header that claims a large canvas its data does not fill: the decode runs out of data.
    pytest.param("liar.png", png_declaring(4000, 4000), "corrupt_image", "damaged or incomplete", id="lying-png"),
    pytest.param("liar.webp", webp_declaring(4000, 4000), "corrupt_image", "damaged or incomplete", id="lying-webp"),
    pytest.param(
        "cut.webp", truncated(image_bytes("WEBP", (300, 300), lossless=True)), "corrupt_image", "damaged", id="cut-webp"
    ),
    pytest.param(
        "cut.jpg",
        truncated(image_bytes("JPEG", (800, 600), quality=95)),
        "corrupt_image",
        "damaged",
        id="truncated-jpeg",
    ),
    pytest.param("cut.png", truncated(image_bytes("PNG", (800, 600))), "corrupt_image", "damaged", id="truncated-png"),
    pytest.param("garbled.png", with_garbage_pixels(image_bytes("PNG")), "corrupt_image", RE_EXPORT, id="garbled-png"),
    pytest.param("noise.png", os.urandom(4096), "corrupt_image", "is not a JPEG, PNG, WebP or HEIC image", id="random"),
    pytest.param("empty.jpg", b"", "empty_file", "Upload the original again", id="empty"),
]


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "HEIF", "JPEG"])
def test_a_picture_that_is_also_a_zip_is_kept_as_uploaded_and_shared_without_the_zip(upload, _photo_store, fmt):
    """A polyglot decodes as its picture; the owner's original is the file as uploaded (as for a motion
    photo's video after a JPEG), and a shared copy carries only the picture."""
    picture = image_bytes(fmt, (320, 200))
    extension = {"PNG": "png", "WEBP": "webp", "HEIF": "heic", "JPEG": "jpg"}[fmt]
    polyglot = picture + zip_archive()  # once: an archive records the time it was made
    photo = upload(f"poly.{extension}", polyglot)

    assert (photo.width, photo.height) == (320, 200)
    assert stored_bytes(photo.local_storage_path) == polyglot
    with stored_image(photo.local_thumbnail_path) as thumb:
        assert thumb.size == (300, 188)
    shared = metadata.shareable_copy(io.BytesIO(stored_bytes(photo.local_storage_path)), keep_details=False).getvalue()
    assert b"PK\x03\x04" not in shared and b"payload.html" not in shared


def test_no_refusal_names_the_imaging_library(user):
    for param in REFUSALS:
        name, data, _, _ = param.values
        with pytest.raises(AppError) as refused:
            photo_services.photo_create(owner=user, file=io.BytesIO(data), filename=name, size=len(data))
        assert "pillow" not in refused.value.message.lower() and "PIL" not in refused.value.message


@pytest.mark.parametrize(("name", "data", "code", "message"), REFUSALS)
def test_refused_upload_says_why_and_stores_nothing(api, _photo_store, name, data, code, message):
    response = api.post("/api/photos/", {"file": as_upload(name, data)}, format="multipart")

    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == code
    assert message in body["message"]
    assert set(body) == {"code", "message", "details"}
    assert Photo.objects.count() == 0
    assert not stored_names()


def test_file_over_the_size_limit_is_refused_with_413(api, settings, _photo_store):
    settings.MAX_UPLOAD_SIZE = 1000
    data = image_bytes("PNG", (400, 400))
    assert len(data) > 1000

    response = api.post("/api/photos/", {"file": as_upload("big.png", data)}, format="multipart")

    assert response.status_code == 413
    assert response.json()["code"] == "too_large"
    assert "limit is" in response.json()["message"] and "as a JPEG" in response.json()["message"]
    assert Photo.objects.count() == 0
    assert not stored_names()


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


def test_a_jpeg_whose_data_ends_before_its_declared_size_is_shown_as_viewers_show_it(upload, _photo_store):
    """libjpeg finishes such a file (the missing rows grey) without an error to tell it from a whole one;
    every browser shows it the same way. Its decode is counted against the budget at the declared size."""
    photo = upload("liar.jpg", jpeg_declaring(3000, 3000))
    assert (photo.width, photo.height) == (3000, 3000)
    with stored_image(photo.local_thumbnail_path) as thumb:
        assert thumb.size == (300, 300)


# --- memory: one image's decode is bounded, and so are all decodes at once ---


def test_an_image_needing_more_decode_memory_than_allowed_is_refused_with_413(api, settings, _photo_store):
    settings.IMAGE_DECODE_MEMORY = 32 * 1024 * 1024
    data = image_bytes("PNG", (3000, 3000))  # 36 MB decoded, before any rendition

    response = api.post("/api/photos/", {"file": as_upload("poster.png", data)}, format="multipart")

    assert response.status_code == 413, response.content
    body = response.json()
    assert body["code"] == "image_too_costly"
    assert "fewer pixels" in body["message"] and "as a JPEG" in body["message"]
    assert body["details"]["width"] == 3000 and body["details"]["needed_bytes"] > settings.IMAGE_DECODE_MEMORY
    assert Photo.objects.count() == 0
    assert not stored_names()


def hold_decode_budget(settings, size: int):
    """Another process (as a second gunicorn worker would be) holding `size` bytes of the decode budget."""
    script = (
        "import django, sys; django.setup()\n"
        "from photos import decode_budget\n"
        f"with decode_budget.reserve({size}, 'other.png'):\n"
        "    print('held', flush=True)\n"
        "    sys.stdin.read()\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "gallery_project.settings_test",
        "DATA_DIR": str(settings.DATA_DIR),
        "IMAGE_DECODE_MEMORY": str(settings.IMAGE_DECODE_MEMORY),
    }
    holder = subprocess.Popen(  # noqa: S603  (this interpreter, a script of the test's own)
        [sys.executable, "-c", script], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_an_upload_waits_for_decode_memory_held_by_another_process_then_says_busy(api, settings, _photo_store):
    settings.IMAGE_DECODE_MEMORY = 64 * 1024 * 1024
    settings.IMAGE_DECODE_WAIT = 0.3
    holder = hold_decode_budget(settings, settings.IMAGE_DECODE_MEMORY)
    try:
        response = api.post("/api/photos/", {"file": as_upload("a.png", image_bytes("PNG"))}, format="multipart")
        assert response.status_code == 503, response.content
        assert response.json()["code"] == "decoder_busy" and "try 'a.png' again" in response.json()["message"]
        assert Photo.objects.count() == 0
        assert not stored_names()
    finally:
        holder.kill()  # as the kernel does to a process out of memory: its share must not leak
        holder.wait()

    response = api.post("/api/photos/", {"file": as_upload("a.png", image_bytes("PNG"))}, format="multipart")
    assert response.status_code == 201, response.content


def test_decodes_share_the_budget_across_threads_and_release_it_when_they_fail(settings, user):
    settings.IMAGE_DECODE_MEMORY = 4 * decode_budget.UNIT
    settings.IMAGE_DECODE_WAIT = 0
    with decode_budget.reserve(2 * decode_budget.UNIT, "first.png"):
        with decode_budget.reserve(2 * decode_budget.UNIT, "second.png"):
            assert isinstance(_try_reserve(1), Unavailable)  # the same thread asking again waits like any other
        outcome: list[object] = []
        thread = threading.Thread(
            target=lambda: outcome.append(_try_reserve(3 * decode_budget.UNIT)), name="another request"
        )
        thread.start()
        thread.join()
        assert isinstance(outcome[0], Unavailable)  # 2 of 4 units held: 3 do not fit, from any thread

    bad = truncated(image_bytes("PNG", (800, 600)))
    for _ in range(3):  # a refused decode gives its share back
        with pytest.raises(AppError, match="damaged"):
            photo_services.photo_create(owner=user, file=io.BytesIO(bad), filename="cut.png", size=len(bad))
    with decode_budget.reserve(4 * decode_budget.UNIT, "all.png"):
        pass


def _try_reserve(size: int) -> object:
    try:
        with decode_budget.reserve(size, "thread.png"):
            return "reserved"
    except Unavailable as exc:
        return exc


def test_a_webp_is_checked_and_counted_before_its_decoder_allocates_anything(settings, monkeypatch, user):
    """libwebp allocates its canvases when the file is opened: a huge declared canvas must never get there."""
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda *args, **kwargs: opened.append(args) or real_open(*args, **kwargs))
    data = webp_declaring(16000, 16000)
    with pytest.raises(AppError, match="16000x16000"):
        photo_services.photo_create(owner=user, file=io.BytesIO(data), filename="huge.webp", size=len(data))
    assert opened == []

    settings.IMAGE_DECODE_MEMORY = 16 * 1024 * 1024
    data = image_bytes("WEBP", (1500, 1500))  # 9 MB decoded, 36 MB while libwebp decodes it
    with pytest.raises(AppError, match="more than this server allows"):
        photo_services.photo_create(owner=user, file=io.BytesIO(data), filename="big.webp", size=len(data))
    assert opened == []
