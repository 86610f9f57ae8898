"""Signed photo URLs: minted only for whoever may see the photo, served without the session or the database."""

from __future__ import annotations

import re
import time

import pytest
from django.test import Client, RequestFactory

from albums import services as album_services
from photos import media, services
from testing.accounts import other_account
from testing.media import stored_bytes

from .images import image_bytes

pytestmark = [pytest.mark.local_media, pytest.mark.django_db]

SIGNED = re.compile(r'src="(/media/[^"]+)"')


def signed_urls(html: str) -> list[str]:
    return SIGNED.findall(html)


def body_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.fixture
def photo(upload):
    return upload("holiday.jpg", image_bytes())


def test_the_gallery_mints_a_signed_url_per_thumbnail(owner_client, photo, _photo_store):
    (url,) = signed_urls(owner_client.get("/").content.decode())
    assert url.endswith("/" + photo.local_thumbnail_path)
    assert url == media.signed_url(photo.local_thumbnail_path), "the same URL for a reload in the same window"


def test_a_signed_url_is_served_without_session_or_database(
    owner_client, photo, _photo_store, django_assert_num_queries
):
    (url,) = signed_urls(owner_client.get("/").content.decode())
    stranger = Client()  # no session cookie at all
    with django_assert_num_queries(0):
        response = stranger.get(url)
    assert response.status_code == 200
    assert body_of(response) == stored_bytes(photo.local_thumbnail_path)
    assert response["Content-Type"] == "image/webp"
    assert response["X-Content-Type-Options"] == "nosniff"
    cache = response["Cache-Control"]
    assert cache.startswith("private, max-age=") and cache.endswith(", immutable")
    max_age = int(cache.split("max-age=")[1].split(",")[0])
    assert 24 * 3600 <= max_age <= 48 * 3600
    assert "Set-Cookie" not in response and "Vary" not in response
    # A file for the WSGI server's file_wrapper, which gunicorn sends with sendfile(2).
    direct = media.serve_signed(RequestFactory().get(url))
    assert direct.file_to_stream is not None
    direct.close()


def test_conditional_get(client, photo):
    url = media.signed_url(photo.local_thumbnail_path)
    first = client.get(url)
    body_of(first)
    assert first["ETag"] and first["Last-Modified"]
    again = client.get(url, headers={"If-None-Match": first["ETag"]})
    assert again.status_code == 304 and not again.content
    assert again["ETag"] == first["ETag"] and "immutable" in again["Cache-Control"]
    since = client.get(url, headers={"If-Modified-Since": first["Last-Modified"]})
    assert since.status_code == 304


def test_the_lightbox_gets_a_signed_display_url(owner_client, photo):
    html = owner_client.get(f"/photos/{photo.pk}/", headers={"HX-Request": "true"}).content.decode()
    (url,) = signed_urls(html)
    assert url.endswith(".display.webp")
    response = Client().get(url)
    assert response.status_code == 200
    body_of(response)


def test_a_generated_photo_gets_its_display_rendition_when_the_lightbox_opens(owner_client, upload, _photo_store):
    photo = upload("gen.png", image_bytes("PNG"))
    display = _photo_store / photo.local_thumbnail_path.replace(".webp", ".display.webp")
    display.unlink()  # as a generated image is stored: grid thumbnail only
    html = owner_client.get(f"/photos/{photo.pk}/", headers={"HX-Request": "true"}).content.decode()
    assert display.exists() and len(signed_urls(html)) == 1


@pytest.mark.parametrize(
    "tamper",
    [
        lambda url: url.replace(url.split("/")[3], "A" * 22),  # another signature
        lambda url: url.replace(url.split("/")[2], str(int(url.split("/")[2]) + 86400)),  # a later expiry
        lambda url: url[:-10] + "0" * 5 + url[-5:],  # another file
        lambda url: url.replace("/thumbnails/", "/thumbnails/../"),
        lambda url: url.split("/thumbnails/")[0] + "/",
        lambda url: "/media/garbage",
        lambda url: "/media/",
    ],
)
def test_a_forged_url_is_404(client, photo, tamper):
    response = client.get(tamper(media.signed_url(photo.local_thumbnail_path)))
    assert response.status_code == 404
    assert response["Cache-Control"] == "no-store"


def test_an_expired_url_is_404(client, photo):
    url = media.signed_url(photo.local_thumbnail_path, now=time.time() - 3 * 86400)
    assert client.get(url).status_code == 404


def test_originals_are_never_signed(photo):
    with pytest.raises(ValueError, match="only renditions"):
        media.signed_url(photo.local_storage_path)
    with pytest.raises(ValueError, match="only renditions"):
        media.signed_url("../" + photo.local_thumbnail_path)


def test_urls_signed_before_a_key_rotation_work_until_they_expire(client, photo, settings):
    url = media.signed_url(photo.local_thumbnail_path)
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a new key " * 5, [settings.SECRET_KEY]
    body_of(response := client.get(url))
    assert response.status_code == 200
    settings.SECRET_KEY_FALLBACKS = []
    assert client.get(url).status_code == 404


def test_only_get_and_head(client, photo):
    url = media.signed_url(photo.local_thumbnail_path)
    assert client.post(url).status_code == 405
    head = client.head(url)
    assert head.status_code == 200
    head.close()


def test_a_purged_photo_url_is_404(client, photo, django_capture_on_commit_callbacks):
    url = media.signed_url(photo.local_thumbnail_path)
    services.photo_delete(photo_id=photo.pk, owner=photo.owner)
    with django_capture_on_commit_callbacks(execute=True):
        services.trash_empty(owner=photo.owner)
    assert client.get(url).status_code == 404


def test_no_url_is_minted_for_someone_who_may_not_see_the_photo(client, photo):
    other = other_account("someone-else")
    client.force_login(other)
    assert signed_urls(client.get("/").content.decode()) == []
    assert client.get(f"/photos/{photo.pk}/", headers={"HX-Request": "true"}).status_code == 404
    assert client.get("/trash/").status_code == 200


@pytest.mark.parametrize("mode", ["x-accel", "x-sendfile"])
def test_a_front_proxy_sends_the_bytes(client, photo, settings, _photo_store, mode):
    settings.SENDFILE = mode
    url = media.signed_url(photo.local_thumbnail_path)
    response = client.get(url)
    assert response.status_code == 200 and response.content == b""
    if mode == "x-accel":
        assert response["X-Accel-Redirect"] == "/_photos/" + photo.local_thumbnail_path
    else:
        assert response["X-Sendfile"] == str((_photo_store / photo.local_thumbnail_path).resolve())
    assert response["Content-Type"] == "image/webp" and "immutable" in response["Cache-Control"]
    assert response["ETag"] and response["Last-Modified"]
    assert client.get(url, headers={"If-None-Match": response["ETag"]}).status_code == 304


def test_the_api_file_urls_use_the_front_proxy_too(api, photo, settings):
    settings.SENDFILE, settings.SENDFILE_ACCEL_PREFIX = "x-accel", "/internal/photos"
    response = api.get(f"/api/photos/{photo.pk}/file")
    assert response["X-Accel-Redirect"] == "/internal/photos/" + photo.local_storage_path
    assert response["Content-Disposition"] == 'inline; filename="holiday.jpg"'
    assert response["Content-Type"] == "image/jpeg"


def test_share_pages_keep_token_scoped_image_urls(client, photo, settings):
    created = album_services.share_link_create(owner=photo.owner, photo_id=photo.pk, allow_download=True)
    html = client.get(f"/s/{created.token}/").content.decode()
    assert "/media/" not in html, "a share's images must stop working when the link is revoked"
    display = f"/s/{created.token}/photos/{photo.pk}/display"
    assert display in html
    settings.SENDFILE = "x-accel"
    response = client.get(display)
    assert response["X-Accel-Redirect"].endswith(".display.webp")
    assert response["Cache-Control"] == "private, no-cache"
    # A share's original is a cleaned copy, which only the app can send.
    download = client.get(f"/s/{created.token}/photos/{photo.pk}/file")
    assert "X-Accel-Redirect" not in download and download.streaming
    body_of(download)
    album_services.share_link_revoke(owner=photo.owner, link_id=created.link.pk)
    assert client.get(display).status_code == 404
