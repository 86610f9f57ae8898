"""AlbumService: positions after add, remove, reorder, move; duplicates; covers; Uncategorized; trash."""

from __future__ import annotations

import pytest

from albums import selectors, services
from albums.models import Album, AlbumPhoto
from gallery_project.errors import Conflict, InvalidInput, NotFound
from photos import selectors as photo_selectors
from photos import services as photo_services

from .conftest import ids_in

pytestmark = pytest.mark.django_db


def positions(album) -> list[int]:
    return list(album.entries.order_by("position", "id").values_list("position", flat=True))


def test_add_appends_in_the_given_order_and_ignores_duplicates(album, photos, user):
    a, b, c, d, _ = photos
    assert services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[b.pk, a.pk]) == 2
    # c is new; a is already there and b is named twice: neither moves nor doubles.
    assert services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[a.pk, c.pk, b.pk, c.pk]) == 1
    assert services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[d.pk]) == 1

    assert ids_in(album) == [b.pk, a.pk, c.pk, d.pk]
    assert positions(album) == [0, 1, 2, 3]
    assert AlbumPhoto.objects.filter(album=album).count() == 4


def test_add_refuses_unknown_or_trashed_photos_and_adds_nothing(album, photos, user):
    photo_services.photo_delete(owner=user, photo_id=photos[1].pk)
    with pytest.raises(InvalidInput) as refused:
        services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[photos[0].pk, photos[1].pk])
    assert refused.value.details == {"photo_ids": [str(photos[1].pk)]}
    assert ids_in(album) == []


def test_remove_keeps_the_others_in_order(album, photos, user):
    services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[p.pk for p in photos])
    assert services.album_remove_photos(owner=user, album_id=album.pk, photo_ids=[photos[1].pk, photos[3].pk]) == 2
    assert services.album_remove_photos(owner=user, album_id=album.pk, photo_ids=[photos[1].pk]) == 0

    assert ids_in(album) == [photos[0].pk, photos[2].pk, photos[4].pk]
    # Adding after removals still appends at the end.
    services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[photos[1].pk])
    assert ids_in(album)[-1] == photos[1].pk


def test_reorder_rewrites_positions(album, photos, user):
    services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[p.pk for p in photos])
    order = [photos[i].pk for i in (4, 2, 0, 3, 1)]
    services.album_reorder(owner=user, album_id=album.pk, photo_ids=order)

    assert ids_in(album) == order
    assert positions(album) == [0, 1, 2, 3, 4]
    assert selectors.album_photo_ids(album_id=album.pk) == order


@pytest.mark.parametrize(
    ("indexes", "error"),
    [((0, 1, 2, 3), Conflict), ((0, 1, 2, 3, 4, 4), InvalidInput)],
    ids=["missing-one", "duplicate"],
)
def test_reorder_must_name_every_photo_once(album, photos, indexes, error, user):
    services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[p.pk for p in photos])
    with pytest.raises(error):
        services.album_reorder(owner=user, album_id=album.pk, photo_ids=[photos[i].pk for i in indexes])
    assert ids_in(album) == [p.pk for p in photos]


def test_reorder_refuses_a_photo_from_elsewhere(album, photos, user):
    services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[p.pk for p in photos[:2]])
    with pytest.raises(Conflict) as refused:
        services.album_reorder(owner=user, album_id=album.pk, photo_ids=[photos[0].pk, photos[2].pk])
    assert refused.value.details == {"missing": [str(photos[1].pk)], "unexpected": [str(photos[2].pk)]}


def test_trashed_photo_vanishes_and_comes_back_in_place(album, photos, user):
    a, b, c, d, e = photos
    services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[a.pk, b.pk, c.pk, d.pk])
    photo_services.photo_delete(owner=user, photo_id=b.pk)

    assert selectors.album_photo_ids(album_id=album.pk) == [a.pk, c.pk, d.pk]
    assert selectors.album_get(owner=user, album_id=album.pk).photo_count == 3
    # The owner reorders what they can see; the trashed photo keeps its slot among them.
    services.album_reorder(owner=user, album_id=album.pk, photo_ids=[d.pk, a.pk, c.pk])
    services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[e.pk])

    photo_services.photo_restore(owner=user, photo_id=b.pk)
    assert selectors.album_photo_ids(album_id=album.pk) == [d.pk, b.pk, a.pk, c.pk, e.pk]


def test_purged_photo_leaves_the_album(album, photos, user):
    services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[photos[0].pk, photos[1].pk])
    photo_services.photo_delete(owner=user, photo_id=photos[0].pk)
    photo_services.photo_purge(photo_ids=[photos[0].pk])
    assert ids_in(album) == [photos[1].pk]


def test_cover_is_the_chosen_photo_else_the_first(album, photos, user):
    services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[p.pk for p in photos[:3]])
    assert selectors.album_get(owner=user, album_id=album.pk).cover_id == photos[0].pk

    services.album_set_cover(owner=user, album_id=album.pk, photo_id=photos[2].pk)
    assert selectors.album_get(owner=user, album_id=album.pk).cover_id == photos[2].pk

    photo_services.photo_delete(owner=user, photo_id=photos[2].pk)
    assert selectors.album_get(owner=user, album_id=album.pk).cover_id == photos[0].pk
    photo_services.photo_restore(owner=user, photo_id=photos[2].pk)
    assert selectors.album_get(owner=user, album_id=album.pk).cover_id == photos[2].pk

    services.album_remove_photos(owner=user, album_id=album.pk, photo_ids=[photos[2].pk])
    assert Album.objects.get(pk=album.pk).cover_photo_id is None
    assert selectors.album_get(owner=user, album_id=album.pk).cover_id == photos[0].pk


def test_cover_must_be_in_the_album(album, photos, user):
    with pytest.raises(InvalidInput):
        services.album_set_cover(owner=user, album_id=album.pk, photo_id=photos[0].pk)


def test_empty_album_has_no_cover_and_no_photos(album, user):
    fetched = selectors.album_get(owner=user, album_id=album.pk)
    assert (fetched.cover_id, fetched.photo_count) == (None, 0)


def test_names_are_unique_ignoring_case_and_uncategorized_is_reserved(album, user):
    with pytest.raises(InvalidInput):
        services.album_create(owner=user, name="holiday")
    for reserved in ("Uncategorized", " uncategorized "):
        with pytest.raises(InvalidInput):
            services.album_create(owner=user, name=reserved)
        with pytest.raises(InvalidInput):
            services.album_update(owner=user, album_id=album.pk, name=reserved)
    with pytest.raises(InvalidInput):
        services.album_create(owner=user, name="   ")


def test_rename_describe_archive(album, user):
    services.album_update(owner=user, album_id=album.pk, name="  Summer 2026 ", description="Beach", is_archived=True)
    album.refresh_from_db()
    assert (album.name, album.description, album.is_archived) == ("Summer 2026", "Beach", True)
    assert list(selectors.album_list(owner=user, archived=False)) == []


def test_delete_keeps_the_photos(album, photos, user):
    services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[photos[0].pk])
    services.album_delete(owner=user, album_id=album.pk)
    assert not Album.objects.exists()
    assert photo_selectors.photo_list(owner=user).total == 5
    with pytest.raises(NotFound):
        services.album_delete(owner=user, album_id=album.pk)


def test_uncategorized_is_the_photos_in_no_album(album, photos, user):
    other = services.album_create(owner=user, name="Other")
    services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[photos[0].pk, photos[1].pk])
    services.album_add_photos(owner=user, album_id=other.pk, photo_ids=[photos[1].pk, photos[2].pk])
    photo_services.photo_delete(owner=user, photo_id=photos[4].pk)

    page = photo_selectors.photo_list(owner=user, album_id=photo_selectors.UNCATEGORIZED)
    assert [p.pk for p in page.items] == [photos[3].pk]
    assert page.total == 1


def test_move_between_albums_in_one_step(album, photos, user):
    other = services.album_create(owner=user, name="Other")
    services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[p.pk for p in photos[:3]])
    services.album_add_photos(owner=user, album_id=other.pk, photo_ids=[photos[4].pk])

    services.album_move_photos(
        owner=user, photo_ids=[photos[0].pk, photos[2].pk], source_album_id=album.pk, target_album_id=other.pk
    )
    assert ids_in(album) == [photos[1].pk]
    assert ids_in(other) == [photos[4].pk, photos[0].pk, photos[2].pk]


def test_move_is_all_or_nothing(album, photos, user):
    services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[photos[0].pk])
    photo_services.photo_delete(owner=user, photo_id=photos[1].pk)
    other = services.album_create(owner=user, name="Other")
    with pytest.raises(InvalidInput):
        services.album_move_photos(
            owner=user, photo_ids=[photos[0].pk, photos[1].pk], source_album_id=album.pk, target_album_id=other.pk
        )
    assert ids_in(album) == [photos[0].pk]
    assert ids_in(other) == []


def test_move_from_and_to_uncategorized(album, photos, user):
    other = services.album_create(owner=user, name="Other")
    services.album_move_photos(owner=user, photo_ids=[photos[0].pk], source_album_id=None, target_album_id=album.pk)
    services.album_add_photos(owner=user, album_id=other.pk, photo_ids=[photos[0].pk])
    assert ids_in(album) == [photos[0].pk]

    # To Uncategorized means in no album at all, so the photo shows up there.
    services.album_move_photos(owner=user, photo_ids=[photos[0].pk], source_album_id=album.pk, target_album_id=None)
    assert ids_in(album) == ids_in(other) == []
    uncategorized = photo_selectors.photo_list(owner=user, album_id=photo_selectors.UNCATEGORIZED).items
    assert photos[0] in uncategorized

    with pytest.raises(InvalidInput):
        services.album_move_photos(owner=user, photo_ids=[photos[0].pk], source_album_id=None, target_album_id=None)
