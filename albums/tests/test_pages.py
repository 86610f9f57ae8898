"""The owner's album pages and fragments: what they show, and queries that do not grow with photos."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from albums import services
from photos import services as photo_services
from photos.tests.factories import PhotoFactory

pytestmark = pytest.mark.django_db


def test_album_list_shows_covers_counts_and_uncategorized(owner_client, album, photos, user):
    services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[photos[1].pk, photos[0].pk])
    archived = services.album_create(owner=user, name="Old stuff")
    services.album_update(owner=user, album_id=archived.pk, is_archived=True)
    html = owner_client.get("/albums/").content.decode()

    assert "Holiday" in html and "2 photos" in html
    assert f"/api/photos/{photos[1].pk}/thumbnail" in html  # the first photo is the cover
    assert "Uncategorized" in html and "3 photos in no album" in html
    assert "Archived (1)" in html and "Old stuff" in html


def test_album_page_shows_its_photos_in_order(owner_client, album, photos, user):
    services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[photos[2].pk, photos[0].pk])
    html = owner_client.get(f"/albums/{album.pk}/").content.decode()
    assert html.index(str(photos[2].pk)) < html.index(str(photos[0].pk))
    assert str(photos[1].pk) not in html
    assert "data-reorder" in html and "Share…" in html


def test_uncategorized_page(owner_client, album, photos, user):
    services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[photos[0].pk])
    html = owner_client.get("/albums/uncategorized/").content.decode()
    assert str(photos[0].pk) not in html
    assert all(str(p.pk) in html for p in photos[1:])
    assert "data-reorder" not in html and "Rename" not in html


def test_album_page_scrolls_in_album_order(owner_client, album, settings, monkeypatch, user):
    monkeypatch.setattr("albums.views.PAGE_SIZE", 2)
    photos = [PhotoFactory() for _ in range(5)]
    services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[p.pk for p in photos])
    first = owner_client.get(f"/albums/{album.pk}/").content.decode()
    cursor = first.split("?cursor=", 1)[1].split('"', 1)[0]
    second = owner_client.get(f"/albums/{album.pk}/?cursor={cursor}", headers={"HX-Request": "true"})
    html = second.content.decode()
    assert "<html" not in html
    assert html.index(str(photos[2].pk)) < html.index(str(photos[3].pk))
    assert str(photos[0].pk) not in html


def test_album_page_queries_do_not_grow_with_photos(owner_client, album, django_assert_num_queries, user):
    services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[PhotoFactory().pk for _ in range(2)])
    owner_client.get(f"/albums/{album.pk}/")  # the session and user are loaded the same way each time
    # session + user + album (annotated) + photo count + photo page + the top bar's backend badge (2)
    # + the worker's heartbeat (its alert)
    with django_assert_num_queries(8):
        owner_client.get(f"/albums/{album.pk}/")
    services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[PhotoFactory().pk for _ in range(50)])
    with django_assert_num_queries(8):
        assert owner_client.get(f"/albums/{album.pk}/").content.decode().count('class="tile') == 52


def test_album_list_queries_do_not_grow_with_albums(owner_client, django_assert_num_queries, user):
    def fill(count):
        for index in range(count):
            album = services.album_create(owner=user, name=f"Album {PhotoFactory().pk}")
            services.album_add_photos(
                owner=user, album_id=album.pk, photo_ids=[PhotoFactory().pk for _ in range(index % 3)]
            )

    fill(2)
    # session + user + albums (annotated) + uncategorized count + its first photo + the backend badge (2)
    # + the worker's heartbeat (its alert)
    with django_assert_num_queries(8):
        owner_client.get("/albums/")
    fill(12)
    with django_assert_num_queries(8):
        owner_client.get("/albums/")


def test_public_album_page_queries_do_not_grow_with_photos(client, album, django_assert_num_queries, user):
    token = services.share_link_create(owner=user, album_id=album.pk).token
    services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[PhotoFactory().pk for _ in range(2)])
    client.get(f"/s/{token}/")  # creates the visitor's session
    # session + link + counted view + photo count + photo page + session save (in a savepoint: 3)
    with django_assert_num_queries(8):
        client.get(f"/s/{token}/")
    services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[PhotoFactory().pk for _ in range(50)])
    with django_assert_num_queries(8):
        assert client.get(f"/s/{token}/").content.decode().count('class="tile') == 52


def test_lightbox_picker_shows_membership_and_album_actions(owner_client, album, photos, user):
    services.album_create(owner=user, name="Other")
    services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[photos[0].pk])
    html = owner_client.get(f"/photos/{photos[0].pk}/albums/?album={album.pk}").content.decode()
    assert f'data-album-toggle="{album.pk}" data-photo-id="{photos[0].pk}" checked' in html
    assert "Other" in html and "Use as album cover" in html and "Share this photo" in html

    photo_services.photo_delete(owner=user, photo_id=photos[0].pk)
    assert owner_client.get(f"/photos/{photos[0].pk}/albums/").status_code == 404


def test_album_choices_for_adding_and_moving(owner_client, album, user):
    other = services.album_create(owner=user, name="Other")
    adding = owner_client.get("/albums/choices/").content.decode()
    assert str(album.pk) in adding and str(other.pk) in adding and "Uncategorized" not in adding
    moving = owner_client.get(f"/albums/choices/?from={album.pk}").content.decode()
    assert f'data-choose-album="{album.pk}"' not in moving
    assert 'data-choose-album="none"' in moving


def test_share_dialog_and_link_list(owner_client, album, photos, user):
    link = services.share_link_create(owner=user, album_id=album.pk, max_views=3).link
    services.share_link_create(owner=user, photo_id=photos[0].pk)
    revoked = services.share_link_create(owner=user, photo_id=photos[1].pk).link
    services.share_link_revoke(owner=user, link_id=revoked.pk)

    dialog = owner_client.get(f"/shares/new/?album={album.pk}").content.decode()
    assert f"/api/albums/{album.pk}/shares" in dialog and "7 days" in dialog
    assert f'data-share-id="{link.pk}"' in dialog

    listed = owner_client.get("/shares/").content.decode()
    assert listed.count("<tr data-share-id") == 2 and "0 / 3" in listed
    assert f'data-share-id="{revoked.pk}"' not in listed
    everything = owner_client.get("/shares/?all=1").content.decode()
    assert f'data-share-id="{revoked.pk}"' in everything and "Revoked" in everything
    assert owner_client.get("/shares/new/").status_code == 400


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_admin_pages_do_not_grow_with_photos_or_albums(owner_client, album, user):
    services.share_link_create(owner=user, album_id=album.pk)
    services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[PhotoFactory().pk for _ in range(2)])
    change, changelist = f"/admin/albums/album/{album.pk}/change/", "/admin/albums/album/"
    for url in (change, changelist):  # the first request also fills caches (content types)
        _queries(owner_client, url)
    small = {url: _queries(owner_client, url) for url in (change, changelist)}

    services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[PhotoFactory().pk for _ in range(20)])
    for index in range(5):
        services.album_create(owner=user, name=f"More {index}")
    assert {url: _queries(owner_client, url) for url in (change, changelist)} == small
    assert owner_client.get(change).content.decode().count("/thumbnail") == 22
    assert owner_client.get("/admin/albums/sharelink/").status_code == 200


def test_album_pages_show_every_alternative_of_a_step_not_a_stack(owner_client, album, user):
    """The main grid stacks a step's alternatives; an album and Uncategorized list each photo they hold."""
    from photos.tests.test_grid import step_photos

    in_album, loose = step_photos(3), step_photos(2)
    services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[photo.pk for photo in in_album])
    album_page = owner_client.get(f"/albums/{album.pk}/").content.decode()
    uncategorized = owner_client.get("/albums/uncategorized/").content.decode()
    assert all(str(photo.pk) in album_page for photo in in_album)
    assert all(str(photo.pk) in uncategorized for photo in loose)
    assert "stack-count" not in album_page and "stack-count" not in uncategorized
