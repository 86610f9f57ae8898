from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from photos import services

from .factories import PhotoFactory

pytestmark = pytest.mark.django_db


def test_gallery_lists_photos_newest_first(owner_client):
    old = PhotoFactory(created_at=timezone.now() - timedelta(days=2), filename="old.jpg")
    new = PhotoFactory(filename="new.jpg")
    html = owner_client.get("/").content.decode()
    assert html.index(str(new.id)) < html.index(str(old.id))
    assert "2 photos" in html


def test_gallery_filters(owner_client):
    PhotoFactory(filename="mine.jpg")
    generated = PhotoFactory(is_generated=True, generation_prompt="a red fox")
    html = owner_client.get("/?kind=generated").content.decode()
    assert str(generated.id) in html
    assert "mine.jpg" not in html
    assert owner_client.get("/?kind=bogus").status_code == 400


def test_infinite_scroll_returns_the_next_page_fragment(owner_client):
    start = timezone.now() - timedelta(hours=1)
    photos = [PhotoFactory(created_at=start + timedelta(seconds=i)) for i in range(65)]
    first = owner_client.get("/").content.decode()
    assert first.count('class="tile') == 60
    cursor = first.split("cursor=")[1].split('"')[0]

    fragment = owner_client.get(f"/?kind=all&sort=taken&cursor={cursor}", headers={"HX-Request": "true"})
    html = fragment.content.decode()
    assert "<html" not in html
    assert html.count('class="tile') == 5
    assert str(photos[0].id) in html
    assert "sentinel" not in html


def test_gallery_query_count_does_not_grow_with_rows(owner_client, django_assert_max_num_queries):
    PhotoFactory.create_batch(2)
    with django_assert_max_num_queries(7) as few:  # 6, and the worker's heartbeat for its alert
        owner_client.get("/")
    PhotoFactory.create_batch(50)
    with django_assert_max_num_queries(len(few.captured_queries)):
        owner_client.get("/")


def test_lightbox_fragment_and_permalink(owner_client):
    photo = PhotoFactory(
        is_generated=True,
        generation_prompt="a lighthouse at dusk",
        generation_negative_prompt="blurry",
        seed=1234,
        model_name="Dreamshaper 8",
        generation_params={"steps": 30, "cfg_scale": 7.5, "width": 512, "height": 768, "session": 7, "step": 2},
    )
    fragment = owner_client.get(f"/photos/{photo.id}/", headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in fragment
    for text in ("a lighthouse at dusk", "blurry", "1234", "Dreamshaper 8", "<dt>Steps</dt><dd>30</dd>"):
        assert text in fragment
    assert "<dt>CFG scale</dt><dd>7.5</dd>" in fragment
    assert '<a href="/studio/7/">session 7, step 2</a>' in fragment
    assert "<dt>Width</dt>" not in fragment  # the size line shows it already
    page = owner_client.get(f"/photos/{photo.id}/").content.decode()
    assert "<html" in page and "a lighthouse at dusk" in page


def test_unknown_photo_page_is_404(owner_client):
    response = owner_client.get("/photos/00000000-0000-0000-0000-000000000000/")
    assert response.status_code == 404


def test_trash_page_lists_trashed_photos_and_empties(owner_client, upload, django_capture_on_commit_callbacks, user):
    photo = upload()
    services.photo_delete(owner=user, photo_id=photo.id)
    html = owner_client.get("/trash/").content.decode()
    assert str(photo.id) in html and "Restore" in html

    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post("/trash/empty/")
    assert response.status_code == 302
    assert "The trash is empty" in owner_client.get("/trash/").content.decode()


def test_tile_fragment_for_new_uploads(owner_client):
    photo = PhotoFactory()
    html = owner_client.get(f"/photos/{photo.id}/tile/").content.decode()
    assert html.strip().startswith('<div class="tile')  # the photo's link and its favourite star
    assert f"/{photo.local_thumbnail_path}" in html and "/media/" in html  # its signed URL


def test_the_first_screen_of_thumbnails_loads_at_once(owner_client):
    PhotoFactory.create_batch(61)
    html = owner_client.get("/").content.decode()
    assert html.count('loading="eager"') == 40 and html.count('fetchpriority="high"') == 8
    assert html.count('loading="lazy"') == 20
    cursor = re.search(r"cursor=([^\"&]+)", html).group(1)
    more = owner_client.get(f"/?cursor={cursor}", headers={"HX-Request": "true"}).content.decode()
    assert 'loading="eager"' not in more and 'loading="lazy"' in more


def test_a_tile_reverses_its_photo_url_once(owner_client, monkeypatch):
    """Reversing a URL is most of a tile's render time; the link and its hx-get share one."""
    import django.urls

    reversed_names = []

    def counting_reverse(name, *args, **kwargs):
        reversed_names.append(name)
        return reverse(name, *args, **kwargs)

    reverse = django.urls.reverse
    monkeypatch.setattr(django.urls, "reverse", counting_reverse)  # the url tag imports it on every call
    photos = PhotoFactory.create_batch(3)
    html = owner_client.get("/").content.decode()
    assert reversed_names.count("photos:detail") == 3
    for photo in photos:
        assert html.count(f'"/photos/{photo.pk}/"') == 2  # href and hx-get
