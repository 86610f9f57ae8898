"""Photos in an S3-compatible bucket (moto in server mode on 127.0.0.1): how files are served and streamed from
it, and what a bucket that fails or stalls during an upload leaves behind (nothing)."""

from __future__ import annotations

import io
import re
import zipfile

import pytest
import requests
from django.test import Client
from playwright.sync_api import expect

from photos import storage
from photos.models import Photo
from photos.s3 import PhotoS3Storage
from testing.media import stored_bytes

from .conftest import as_upload
from .images import image_bytes

pytestmark = pytest.mark.django_db

SIGNED = re.compile(r'src="(/media/[^"]+)"')


def body_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.fixture
def photo(s3_media, upload):
    return upload("holiday.jpg", image_bytes())


def test_uploads_land_in_the_bucket_and_not_on_disk(s3_media, local_s3, photo, _photo_store):
    assert local_s3.keys(s3_media) == sorted(storage.renditions_of(photo.local_storage_path))
    assert not [path for path in _photo_store.rglob("*") if path.is_file()]
    assert not list((_photo_store.parent / "staging").iterdir()), "the staged upload is removed once sent"


def test_a_signed_thumbnail_url_redirects_to_the_object_without_the_database(
    owner_client, photo, django_assert_num_queries
):
    (url,) = SIGNED.findall(owner_client.get("/").content.decode())
    with django_assert_num_queries(0):
        response = Client().get(url)  # no session at all
    assert response.status_code == 302
    cache = response["Cache-Control"]
    max_age = int(cache.split("max-age=")[1].split(",")[0])
    assert cache.startswith("private, max-age=") and 24 * 3600 <= max_age <= 48 * 3600
    location = response["Location"]
    # Presigned to expire with the signed URL: it grants nothing the signed URL did not.
    assert f"X-Amz-Expires={max_age}" in location
    answer = requests.get(location, timeout=10)
    assert answer.status_code == 200
    assert answer.content == stored_bytes(photo.local_thumbnail_path)
    assert answer.headers["Content-Type"] == "image/webp"
    assert answer.headers["Cache-Control"] == cache


def test_a_forged_signed_url_is_404_not_a_redirect(client, photo):
    response = client.get(f"/media/9999999999/forged/{photo.local_thumbnail_path}")
    assert response.status_code == 404


def test_the_gallery_allows_images_from_the_bucket_only(owner_client, photo, local_s3):
    policy = owner_client.get("/")["Content-Security-Policy"]
    img_src = next(part for part in policy.split(";") if part.strip().startswith("img-src"))
    assert img_src.split() == ["img-src", "'self'", local_s3.url]


def test_an_original_is_streamed_from_the_bucket_after_the_owner_check(api, anon_api, photo):
    response = api.get(f"/api/photos/{photo.pk}/file")
    assert response.status_code == 200
    assert response["Content-Length"] == str(photo.file_size)
    assert body_of(response) == stored_bytes(photo.local_storage_path)
    assert anon_api.get(f"/api/photos/{photo.pk}/file").status_code in (401, 403)


def test_a_missing_object_is_404_not_500(api, photo):
    storage.delete_files([photo.local_storage_path])
    response = api.get(f"/api/photos/{photo.pk}/file")
    assert response.status_code == 404
    assert response.json()["code"] == "file_missing"


def test_the_zip_streams_objects_without_downloading_them_whole(api, photo, upload, monkeypatch):
    second = upload("second.png", image_bytes("PNG"))
    expected = {
        "holiday.jpg": stored_bytes(photo.local_storage_path),
        "second.png": stored_bytes(second.local_storage_path),
    }

    def whole_download(*args, **kwargs):
        raise AssertionError("the ZIP read an object through S3File, which downloads it whole first")

    monkeypatch.setattr(PhotoS3Storage, "_open", whole_download)
    response = api.post("/api/photos/download/", {"photo_ids": [str(photo.pk), str(second.pk)]}, format="json")
    archive = zipfile.ZipFile(io.BytesIO(body_of(response)))
    assert {name: archive.read(name) for name in archive.namelist()} == expected


# --- A bucket that misbehaves during an upload ---


def _upload(api):
    return api.post("/api/photos/", {"file": as_upload("holiday.jpg", image_bytes())}, format="multipart")


def test_a_bucket_answering_500_fails_the_upload_clearly_and_keeps_nothing(api, faulty_s3, local_s3):
    proxy, bucket = faulty_s3
    # The original and the thumbnail go in; the lightbox rendition is refused every time.
    fault = proxy.fail("PUT", r"\.display\.webp$")
    response = _upload(api)
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "store_unavailable"
    assert bucket in body["message"] and "try again" in body["message"]
    assert fault.hits == 4, "the first try and botocore's three retries, then the error"
    assert not Photo.objects.exists()
    assert local_s3.keys(bucket) == [], "the objects already uploaded are removed again"


def test_a_bucket_that_stalls_fails_the_upload_clearly_and_keeps_nothing(api, faulty_s3, local_s3, _photo_store):
    proxy, bucket = faulty_s3
    # Held past the client's 1 s timeout and never passed on: the thumbnail never lands.
    proxy.stall("PUT", r"/thumbnails/", seconds=2.5)
    response = _upload(api)
    assert response.status_code == 503
    assert response.json()["code"] == "store_unavailable"
    assert "timeout" in response.json()["message"].lower()
    assert not Photo.objects.exists()
    assert local_s3.keys(bucket) == []
    assert not list((_photo_store.parent / "staging").iterdir())


def test_an_upload_works_again_once_the_bucket_does(api, faulty_s3, local_s3):
    proxy, bucket = faulty_s3
    proxy.fail("PUT", r"\.webp$")
    assert _upload(api).status_code == 503
    proxy.faults.clear()
    response = _upload(api)
    assert response.status_code == 201
    photo = Photo.objects.get()
    assert local_s3.keys(bucket) == sorted(storage.renditions_of(photo.local_storage_path))


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("size", [(1440, 900), (390, 844)])
def test_the_gallery_shows_thumbnails_and_the_lightbox_from_the_bucket(
    s3_media, logged_in_page, live_server, upload, size
):
    """Through the redirect to the presigned object, within the page's Content-Security-Policy (the page fixture
    fails the test on any violation)."""
    photos = [upload(f"photo{i}.jpg", image_bytes("JPEG", (800, 600), color=(40 * i, 90, 160))) for i in range(3)]
    page = logged_in_page
    page.set_viewport_size({"width": size[0], "height": size[1]})
    page.goto(f"{live_server.url}/")
    tiles = page.locator(f"img[src*='{photos[0].local_thumbnail_path}']")
    expect(tiles).to_have_count(1)
    page.wait_for_function("() => [...document.images].filter(i => i.src.includes('/media/')).every(i => i.complete)")
    loaded = page.evaluate("() => [...document.images].filter(i => i.src.includes('/media/')).map(i => i.naturalWidth)")
    assert len(loaded) == 3 and all(width > 0 for width in loaded)
    page.screenshot(path=f"/tmp/s3-gallery-{size[0]}.png")
    tiles.click()
    display = page.locator(f"img[src*='{storage.display_path(photos[0].local_storage_path)}']")
    expect(display).to_be_visible()
    page.wait_for_function("(image) => image.complete && image.naturalWidth > 0", arg=display.element_handle())
    page.screenshot(path=f"/tmp/s3-lightbox-{size[0]}.png")
