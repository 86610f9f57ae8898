"""Share links from the outside.

Every public URL with valid, revoked, expired, used-up and wrong tokens; photos outside the share; passwords
and their rate limit; what the pages and files give away; counting views and downloads.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client, RequestFactory
from django.utils import timezone
from PIL import Image

from albums import public, services
from albums.models import ShareLink
from gallery_project.errors import TooManyRequests
from photos import metadata, storage
from photos import services as photo_services
from photos.tests.images import (
    LOCATION_ATOM_TEXT,
    SECRET_PROMPT,
    image_bytes,
    imagemagick_png_with_gps,
    invokeai_png,
    motion_photo,
    png_chunk_keywords,
    with_gps,
)

pytestmark = pytest.mark.django_db

VARIANTS = ("thumbnail", "display", "file")


def body_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def urls(token: str, photo_id) -> list[str]:
    base = f"/s/{token}/"
    return [
        base,
        f"{base}photos/{photo_id}/",
        *(f"{base}photos/{photo_id}/{variant}" for variant in VARIANTS),
    ]


@pytest.fixture
def shared(upload, user):
    """An album of three photos (one generated, with a prompt), a photo outside it, a link to the album."""
    album = services.album_create(owner=user, name="Trip")
    inside = [upload(f"in{i}.jpg", image_bytes(color=(40 * i, 90, 90))) for i in range(2)]
    generated = upload("gen.png", image_bytes("PNG"))
    generated.is_generated, generated.generation_prompt = True, "a secret prompt about a lighthouse"
    generated.save()
    inside.append(generated)
    outside = upload("outside.jpg", image_bytes(color=(1, 2, 3)))
    services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[p.pk for p in inside])
    created = services.share_link_create(owner=user, album_id=album.pk, allow_download=True)
    return {
        "album": album,
        "inside": inside,
        "outside": outside,
        "link": created.link,
        "token": created.token,
    }


def make_link(shared, **settings) -> tuple[ShareLink, str]:
    created = services.share_link_create(owner=shared["album"].owner, album_id=shared["album"].pk, **settings)
    return created.link, created.token


def comparable(content: bytes) -> bytes:
    """A page without its CSRF token, which is random per visitor and tells nothing."""
    return re.sub(rb"(csrf-token\" content=\"|\"X-CSRFToken\": \"|csrfmiddlewaretoken\" value=\")\w+", rb"\1-", content)


def assert_not_found(response, reference: bytes | None = None):
    assert response.status_code == 404
    assert response["Referrer-Policy"] == "same-origin"
    assert "noindex" in response["X-Robots-Tag"]
    if reference is not None:
        assert comparable(response.content) == reference


@pytest.fixture
def not_found_body(client):
    return comparable(client.get("/s/" + "A" * 43 + "/").content)


def guess(client, url: str, password: str) -> str:
    """Post a password to a share URL: "open", "wrong" (the form again, with the reason) or "locked" (429)."""
    response = client.post(url, {"password": password})
    if response.status_code == 302:
        assert response["Location"] == url
        return "open"
    if response.status_code == 429:
        assert b"Too many wrong passwords" in response.content
        assert int(response["Retry-After"]) > 0
        return "locked"
    assert response.status_code == 200, response.status_code
    assert b"That is not the password for this link." in response.content
    return "wrong"


# --- Every URL, every kind of token ---


def test_a_valid_token_serves_every_url(client, shared):
    photo = shared["inside"][0]
    for url in urls(shared["token"], photo.pk):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response["Referrer-Policy"] == "same-origin"
        assert "noindex" in response["X-Robots-Tag"]
        body_of(response)


def test_a_display_image_not_made_yet_is_made_for_the_visitor(client, shared):
    """Generated photos get their lightbox rendition on first view; a visitor may be the first."""
    photo = shared["inside"][2]
    display = storage.display_path(photo.local_storage_path)
    storage.delete_files([display])
    response = client.get(f"/s/{shared['token']}/photos/{photo.pk}/display")
    assert response.status_code == 200
    assert body_of(response)[:4] == b"RIFF"
    assert storage.exists(display)


def _revoked(shared):
    link, token = make_link(shared)
    services.share_link_revoke(owner=link.owner, link_id=link.pk)
    return token


def _expired(shared):
    link, token = make_link(shared, expires_at=timezone.now() + timedelta(hours=1))
    ShareLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    return token


def _views_used(shared):
    link, token = make_link(shared, max_views=2)
    ShareLink.objects.filter(pk=link.pk).update(view_count=2)
    return token


def _views_used_with_password(shared):
    link, token = make_link(shared, max_views=1, password="open sesame")
    ShareLink.objects.filter(pk=link.pk).update(view_count=1)
    return token


def _downloads_used(shared):
    link, token = make_link(shared, allow_download=True, max_downloads=1)
    ShareLink.objects.filter(pk=link.pk).update(download_count=1)
    return token


def _wrong(shared):
    return shared["token"][:-2] + ("AA" if not shared["token"].endswith("AA") else "BB")


def _garbage(shared):
    return "not-a-token"


@pytest.mark.parametrize(
    "make_token",
    [_revoked, _expired, _views_used, _views_used_with_password, _downloads_used, _wrong, _garbage],
    ids=lambda f: f.__name__,
)
def test_every_url_of_a_dead_or_wrong_token_is_the_same_404(client, shared, not_found_body, make_token):
    token = make_token(shared)
    for url in urls(token, shared["inside"][0].pk):
        assert_not_found(client.get(url), not_found_body)
    assert_not_found(client.get(f"/s/{token}/", headers={"HX-Request": "true"}), not_found_body)
    assert_not_found(client.post(f"/s/{token}/", {"password": "open sesame"}), not_found_body)


def test_a_dead_link_shows_a_visitor_no_way_into_the_app(client, shared, not_found_body):
    """The owner's gallery is no use to a visitor: no link to it, nor to anything else of the app."""
    html = client.get(f"/s/{_revoked(shared)}/").content.decode()
    assert "no longer shared" in html and "ask them for a new link" in html
    assert "<a " not in html and "gallery" not in html.lower()
    # Other URLs under /s/ answer the same page, not the app's own 404.
    for url in (f"/s/{shared['token']}/photos/not-a-photo/", f"/s/{shared['token']}/elsewhere", "/s/"):
        assert_not_found(client.get(url), not_found_body)


def test_revoking_closes_every_url_already_handed_out_at_once(client, shared, user):
    photo = shared["inside"][1]
    assert client.get(f"/s/{shared['token']}/").status_code == 200
    copied = urls(shared["token"], photo.pk)[1:]
    for url in copied:
        body_of(client.get(url))

    services.share_link_revoke(owner=user, link_id=shared["link"].pk)
    for viewer in (client, Client()):
        for url in urls(shared["token"], photo.pk):
            assert_not_found(viewer.get(url))


def test_a_photo_outside_the_album_is_not_reachable(client, shared, not_found_body):
    client.get(f"/s/{shared['token']}/")
    for url in urls(shared["token"], shared["outside"].pk)[1:]:
        assert_not_found(client.get(url), not_found_body)
        assert_not_found(client.get(url, headers={"HX-Request": "true"}), not_found_body)


def test_a_photo_link_shares_that_photo_only(client, shared, user):
    photo, other = shared["outside"], shared["inside"][0]
    token = services.share_link_create(owner=user, photo_id=photo.pk).token
    page = client.get(f"/s/{token}/")
    assert page.status_code == 200
    assert f"/s/{token}/photos/{photo.pk}/display".encode() in page.content
    for variant in ("thumbnail", "display"):
        body_of(client.get(f"/s/{token}/photos/{photo.pk}/{variant}"))
    for url in urls(token, other.pk)[1:]:
        assert_not_found(client.get(url))
    # Downloads were not allowed on this link.
    assert_not_found(client.get(f"/s/{token}/photos/{photo.pk}/file"))


def test_trashed_photos_vanish_from_the_share_and_come_back(client, shared, user):
    photo = shared["inside"][0]
    photo_services.photo_delete(owner=user, photo_id=photo.pk)
    page = client.get(f"/s/{shared['token']}/").content.decode()
    assert str(photo.pk) not in page
    for url in urls(shared["token"], photo.pk)[1:]:
        assert_not_found(client.get(url))

    photo_services.photo_restore(owner=user, photo_id=photo.pk)
    assert str(photo.pk) in client.get(f"/s/{shared['token']}/").content.decode()


def test_a_link_to_a_trashed_photo_pauses(client, shared, user):
    photo = shared["outside"]
    token = services.share_link_create(owner=user, photo_id=photo.pk).token
    photo_services.photo_delete(owner=user, photo_id=photo.pk)
    assert_not_found(client.get(f"/s/{token}/"))
    photo_services.photo_restore(owner=user, photo_id=photo.pk)
    assert client.get(f"/s/{token}/").status_code == 200


def test_deleting_the_album_ends_its_links(client, shared, user):
    services.album_delete(owner=user, album_id=shared["album"].pk)
    assert_not_found(client.get(f"/s/{shared['token']}/"))
    assert not ShareLink.objects.exists()


# --- What a page gives away ---


def test_the_page_shows_only_what_is_shared(client, shared):
    html = client.get(f"/s/{shared['token']}/").content.decode()
    ids = set(re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", html))
    assert ids == {str(p.pk) for p in shared["inside"]}
    assert "lighthouse" not in html
    for leak in ("/api/", "uploaded/", "thumbnails/", "in0.jpg", "/admin", "Log out", "Trash"):
        assert leak not in html, leak
    assert '<meta name="robots" content="noindex, nofollow">' in html
    assert "private" in client.get(f"/s/{shared['token']}/")["Cache-Control"]


def test_generation_details_only_when_the_owner_allows_them(client, shared):
    generated = shared["inside"][2]
    for show_details, expected in ((False, False), (True, True)):
        _, token = make_link(shared, show_details=show_details)
        client.get(f"/s/{token}/")
        fragment = client.get(f"/s/{token}/photos/{generated.pk}/", headers={"HX-Request": "true"})
        assert fragment.status_code == 200
        assert ("lighthouse" in fragment.content.decode()) is expected
        assert "/photos/" + str(generated.pk) + "/" in fragment.content.decode()
        assert "/api/" not in fragment.content.decode()


def test_images_are_revalidated_so_revocation_reaches_caches(client, shared, user):
    photo = shared["inside"][0]
    response = client.get(f"/s/{shared['token']}/photos/{photo.pk}/thumbnail")
    body_of(response)
    assert response["Cache-Control"] == "private, no-cache"
    again = client.get(f"/s/{shared['token']}/photos/{photo.pk}/thumbnail", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304
    services.share_link_revoke(owner=user, link_id=shared["link"].pk)
    revalidated = client.get(f"/s/{shared['token']}/photos/{photo.pk}/thumbnail", HTTP_IF_NONE_MATCH=response["ETag"])
    assert revalidated.status_code == 404


@pytest.mark.parametrize(("fmt", "name"), [("JPEG", "gps.jpg"), ("PNG", "gps.png"), ("WEBP", "gps.webp")])
def test_nothing_served_carries_the_location(client, api, shared, upload, fmt, name, user):
    photo = upload(name, with_gps(fmt))
    services.album_add_photos(owner=user, album_id=shared["album"].pk, photo_ids=[photo.pk])
    for variant in VARIANTS:
        response = client.get(f"/s/{shared['token']}/photos/{photo.pk}/{variant}")
        assert response.status_code == 200, variant
        data = body_of(response)
        image = Image.open(io.BytesIO(data))
        assert image.getexif().get_ifd(metadata.GPS_IFD) == {}, variant
        assert b"Berlin" not in data and b"GPSLatitude" not in data, variant
    # Named from the photo's id, not from the owner's file name.
    assert response["Content-Disposition"] == f'inline; filename="{photo.pk}.{name.split(".")[1]}"'
    # The owner's own download is the file as it was uploaded.
    assert b"Berlin" in body_of(api.get(f"/api/photos/{photo.pk}/file"))


def _served(client, token: str, photo, variant: str = "file") -> bytes:
    response = client.get(f"/s/{token}/photos/{photo.pk}/{variant}")
    assert response.status_code == 200, variant
    if variant == "file":
        assert response["Content-Disposition"] == f'inline; filename="{photo.pk}.{photo.local_storage_path[-3:]}"'
    return body_of(response)


def test_a_shared_original_carries_generation_details_only_when_the_owner_shows_them(client, api, shared, upload):
    photo = upload("my-secret-lighthouse-prompt.png", invokeai_png())
    photo.is_generated, photo.generation_prompt = True, SECRET_PROMPT
    photo.save()
    services.album_add_photos(owner=shared["album"].owner, album_id=shared["album"].pk, photo_ids=[photo.pk])
    chunks = {b"invokeai_metadata", b"invokeai_graph", b"parameters", b"prompt", b"workflow"}

    hidden = _served(client, make_link(shared, allow_download=True)[1], photo)
    assert not {keyword for _, keyword in png_chunk_keywords(hidden)} & chunks
    assert SECRET_PROMPT.encode() not in hidden and b"987654321" not in hidden and b"secret-model" not in hidden
    for variant in ("thumbnail", "display"):
        assert SECRET_PROMPT.encode() not in _served(client, shared["token"], photo, variant)

    shown = _served(client, make_link(shared, allow_download=True, show_details=True)[1], photo)
    assert chunks <= {keyword for _, keyword in png_chunk_keywords(shown)}
    assert body_of(api.get(f"/api/photos/{photo.pk}/file")) == invokeai_png(), "the owner's copy is untouched"


@pytest.mark.parametrize("show_details", [False, True], ids=["details-hidden", "details-shown"])
def test_a_shared_original_carries_no_location_from_other_tools(client, shared, upload, show_details):
    _, token = make_link(shared, allow_download=True, show_details=show_details)
    png = upload("converted.png", imagemagick_png_with_gps())
    motion, jpeg = motion_photo()
    video = upload("PXL_20240601_motion.jpg", motion)
    services.album_add_photos(owner=shared["album"].owner, album_id=shared["album"].pk, photo_ids=[png.pk, video.pk])

    served_png = _served(client, token, png)
    assert not [k for _, k in png_chunk_keywords(served_png) if k.lower().startswith((b"exif:gps", b"raw profile"))]
    assert b"52/1" not in served_png and LOCATION_ATOM_TEXT not in served_png

    served_jpeg = _served(client, token, video)
    assert LOCATION_ATOM_TEXT not in served_jpeg and b"moov" not in served_jpeg
    assert len(served_jpeg) == len(jpeg) and served_jpeg.endswith(b"\xff\xd9")


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_an_original_whose_location_cannot_be_removed_is_not_sent(client, shared, upload, user):
    data = bytearray(with_gps("JPEG"))
    start = data.index(b"Exif\x00\x00") + 6
    data[start + 4 : start + 8] = b"\xff\xff\xff\x00"
    photo = upload("odd.jpg", bytes(data))
    services.album_add_photos(owner=user, album_id=shared["album"].pk, photo_ids=[photo.pk])
    assert_not_found(client.get(f"/s/{shared['token']}/photos/{photo.pk}/file"))
    assert ShareLink.objects.get(pk=shared["link"].pk).download_count == 0


# --- Counting views and downloads ---


def test_views_count_page_loads_only(client, shared):
    photo = shared["inside"][0]
    client.get(f"/s/{shared['token']}/")
    client.get(f"/s/{shared['token']}/photos/{photo.pk}/", headers={"HX-Request": "true"})
    body_of(client.get(f"/s/{shared['token']}/photos/{photo.pk}/thumbnail"))
    body_of(client.get(f"/s/{shared['token']}/photos/{photo.pk}/display"))
    client.get(f"/s/{shared['token']}/")
    client.get(f"/s/{shared['token']}/photos/{photo.pk}/")  # opened directly: a page load
    link = ShareLink.objects.get(pk=shared["link"].pk)
    assert (link.view_count, link.download_count) == (3, 0)


def test_the_last_view_still_shows_its_images_but_nothing_else_does(client, shared, settings):
    link, token = make_link(shared, max_views=1)
    photo = shared["inside"][0]
    assert client.get(f"/s/{token}/").status_code == 200
    assert ShareLink.objects.get(pk=link.pk).status == "exhausted"

    # The browser that used the last view finishes looking at its page...
    assert client.get(f"/s/{token}/photos/{photo.pk}/", headers={"HX-Request": "true"}).status_code == 200
    body_of(client.get(f"/s/{token}/photos/{photo.pk}/display"))
    # ...but cannot load the page again, and nobody else can load anything.
    assert_not_found(client.get(f"/s/{token}/"))
    stranger = Client()
    for url in urls(token, photo.pk):
        assert_not_found(stranger.get(url))
    # Once the grace period is over, not even that browser can.
    settings.SHARE_GRACE_SECONDS = 0
    assert_not_found(client.get(f"/s/{token}/photos/{photo.pk}/display"))


def test_fragments_need_a_view_first(shared):
    photo = shared["inside"][0]
    stranger = Client()
    assert_not_found(stranger.get(f"/s/{shared['token']}/photos/{photo.pk}/", headers={"HX-Request": "true"}))
    assert ShareLink.objects.get(pk=shared["link"].pk).view_count == 0


def test_downloads_are_counted_and_limited(client, shared):
    link, token = make_link(shared, allow_download=True, max_downloads=2)
    photo = shared["inside"][0]
    client.get(f"/s/{token}/")
    first = client.get(f"/s/{token}/photos/{photo.pk}/file")
    body_of(first)
    # A revalidation sends no bytes, so it is not a download.
    assert client.get(f"/s/{token}/photos/{photo.pk}/file", HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    body_of(client.get(f"/s/{token}/photos/{photo.pk}/file"))
    assert ShareLink.objects.get(pk=link.pk).download_count == 2
    assert_not_found(Client().get(f"/s/{token}/photos/{photo.pk}/file"))
    assert_not_found(Client().get(f"/s/{token}/"))


# --- Passwords ---


def test_password_form_then_access_for_this_session_only(client, shared):
    link, token = make_link(shared, password="open sesame", allow_download=True)
    photo = shared["inside"][0]
    form = client.get(f"/s/{token}/")
    assert form.status_code == 200
    assert b'name="password"' in form.content
    assert str(photo.pk).encode() not in form.content
    for url in urls(token, photo.pk)[2:]:
        assert_not_found(client.get(url))

    assert guess(client, f"/s/{token}/", "open sesame ") == "wrong"
    assert guess(client, f"/s/{token}/", "open sesame") == "open"

    assert str(photo.pk).encode() in client.get(f"/s/{token}/").content
    for url in urls(token, photo.pk)[2:]:
        response = client.get(url)
        assert response.status_code == 200, url
        body_of(response)
    assert ShareLink.objects.get(pk=link.pk).view_count == 1

    # Another browser with the same URLs gets nothing, and unlocking one link does not unlock another.
    for url in urls(token, photo.pk)[2:]:
        assert_not_found(Client().get(url))
    _, other = make_link(shared, password="open sesame")
    assert b'name="password"' in client.get(f"/s/{other}/").content


def test_a_photo_opened_directly_asks_for_the_password_then_shows_it(client, shared):
    _, token = make_link(shared, password="open sesame")
    photo = shared["inside"][1]
    url = f"/s/{token}/photos/{photo.pk}/"
    assert b'name="password"' in client.get(url).content
    assert guess(client, url, "nope") == "wrong"
    assert guess(client, url, "open sesame") == "open"
    page = client.get(url)
    assert f"/s/{token}/photos/{photo.pk}/display".encode() in page.content


def test_a_locked_link_does_not_tell_which_photos_it_shares(shared):
    """Before the password, a photo of the album and any other photo id get the very same answers."""
    _, token = make_link(shared, password="open sesame")
    inside, outside = shared["inside"][0].pk, shared["outside"].pk

    def answers(photo_id) -> list:
        visitor = Client()
        page = f"/s/{token}/photos/{photo_id}/"
        responses = [
            visitor.get(page),
            visitor.get(page, headers={"HX-Request": "true"}),
            visitor.post(page, {"password": "a guess"}),
            *(visitor.get(f"{page}{variant}") for variant in VARIANTS),
        ]
        return [(r.status_code, comparable(r.content).replace(str(photo_id).encode(), b"<id>")) for r in responses]

    assert answers(inside) == answers(outside)
    assert [status for status, _ in answers(inside)] == [200, 404, 200, 404, 404, 404]


def test_a_stranger_cannot_lock_the_recipient_out(shared, settings):
    settings.SHARE_PASSWORD_FAILURES_PER_LINK_AND_CLIENT = 3
    _, token = make_link(shared, password="open sesame")
    url = f"/s/{token}/"
    stranger = Client(REMOTE_ADDR="127.0.0.66")
    # The stranger is locked out of the link after 3 wrong passwords, even with the right one, and insisting
    # changes nothing...
    assert [guess(stranger, url, f"guess {i}") for i in range(30)] == ["wrong"] * 3 + ["locked"] * 27
    assert guess(stranger, url, "open sesame") == "locked"
    # ...while the recipient, from their own address, still gets in, even after a typo.
    recipient = Client(REMOTE_ADDR="127.0.0.5")
    assert guess(recipient, url, "open sesame.") == "wrong"
    assert guess(recipient, url, "open sesame") == "open"


def test_guessing_from_many_addresses_meets_the_per_link_backstop(client, shared, settings):
    settings.SHARE_PASSWORD_FAILURES_PER_LINK_AND_CLIENT = 2
    settings.SHARE_PASSWORD_FAILURES_PER_LINK = 5
    _, token = make_link(shared, password="open sesame")
    url = f"/s/{token}/"
    guesses = [guess(Client(REMOTE_ADDR=f"127.0.0.{10 + i // 2}"), url, f"guess {i}") for i in range(7)]
    assert guesses == ["wrong"] * 5 + ["locked"] * 2
    # Now the link takes no password from anyone until the window ends; other links are not affected.
    assert guess(Client(REMOTE_ADDR="127.0.0.5"), url, "open sesame") == "locked"
    _, other = make_link(shared, password="open sesame")
    assert guess(client, f"/s/{other}/", "open sesame") == "open"


def test_retry_after_is_never_zero_in_the_last_second_of_a_window(shared, settings, monkeypatch):
    settings.SHARE_PASSWORD_FAILURES_PER_LINK_AND_CLIENT = 1
    link, _ = make_link(shared, password="open sesame")
    window = settings.SHARE_PASSWORD_WINDOW_SECONDS
    last_moment = datetime.fromtimestamp((1_800_000_000 // window + 1) * window - 0.3, tz=UTC)
    monkeypatch.setattr(services.timezone, "now", lambda: last_moment)
    assert services.share_link_check_password(link=link, password="x", client="127.0.0.9") is False
    with pytest.raises(TooManyRequests, match="Try again in 1 minute\\.") as refused:
        services.share_link_check_password(link=link, password="x", client="127.0.0.9")
    assert refused.value.details["retry_after"] == 1


def test_wrong_passwords_are_rate_limited_per_client(shared, settings):
    settings.SHARE_PASSWORD_FAILURES_PER_CLIENT = 4
    tokens = [make_link(shared, password="open sesame")[1] for _ in range(3)]
    guesser = Client(REMOTE_ADDR="127.0.0.7")
    assert [guess(guesser, f"/s/{token}/", "x") for token in tokens * 2] == ["wrong"] * 4 + ["locked"] * 2
    assert guess(Client(REMOTE_ADDR="127.0.0.8"), f"/s/{tokens[0]}/", "open sesame") == "open"


def test_an_ipv6_client_is_counted_by_its_network(shared, settings):
    """One IPv6 subscriber has a whole /64: counting single addresses would let it guess without end.

    Documentation addresses (2001:db8::/32), only as strings: nothing is contacted.
    """
    settings.SHARE_PASSWORD_FAILURES_PER_LINK_AND_CLIENT = 2
    link, _ = make_link(shared, password="open sesame")

    def check(client: str, password: str = "wrong") -> str:  # noqa: S107
        try:
            right = services.share_link_check_password(link=link, password=password, client=client)
        except TooManyRequests:
            return "locked"
        return "open" if right else "wrong"

    assert [check(f"2001:db8:0:1::{i}") for i in range(1, 5)] == ["wrong", "wrong", "locked", "locked"]
    assert check("2001:db8:0:2::1", "open sesame") == "open"
    # An IPv4 client seen through an IPv6 socket is the same client as over IPv4.
    assert [check(address) for address in ("127.0.0.9", "::ffff:127.0.0.9", "127.0.0.9")] == [
        "wrong",
        "wrong",
        "locked",
    ]


def test_a_right_password_does_not_use_up_attempts(client, shared, settings):
    settings.SHARE_PASSWORD_FAILURES_PER_LINK_AND_CLIENT = 2
    settings.SHARE_PASSWORD_FAILURES_PER_LINK = 2
    _, token = make_link(shared, password="open sesame")
    for _ in range(5):
        assert guess(Client(), f"/s/{token}/", "open sesame") == "open"
    assert guess(client, f"/s/{token}/", "x") == "wrong"


def test_the_client_address_behind_a_trusted_proxy(settings):
    settings.FORWARDED_ALLOW_IPS = ["127.0.0.1"]
    factory = RequestFactory()
    direct = factory.get("/", REMOTE_ADDR="127.0.0.5", HTTP_X_FORWARDED_FOR="127.0.0.99")
    assert public.client_address(direct) == "127.0.0.5"
    proxied = factory.get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="127.0.0.99, 127.0.0.6")
    assert public.client_address(proxied) == "127.0.0.6"


# --- Tokens ---


def test_tokens_are_long_random_and_stored_only_as_a_hash(shared, user):
    tokens = {services.share_link_create(owner=user, album_id=shared["album"].pk).token for _ in range(20)}
    assert len(tokens) == 20
    assert all(len(token) >= 43 and re.fullmatch(r"[A-Za-z0-9_-]+", token) for token in tokens)
    stored = set(ShareLink.objects.values_list("token_hash", flat=True))
    assert not tokens & stored
    assert {services.token_hash(token) for token in tokens} <= stored


def test_resolving_compares_in_constant_time(shared, monkeypatch):
    calls = []
    real = services.hmac.compare_digest
    monkeypatch.setattr(services.hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    services.share_link_resolve(token=shared["token"])
    assert calls == [1]
