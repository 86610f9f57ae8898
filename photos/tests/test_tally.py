"""The trigger-kept photo tallies stay equal to each owner's real counts whatever path writes the rows."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from gallery_project.accounts import ownerless_adopt
from photos import selectors, services
from photos.models import Photo, PhotoTally
from testing.accounts import other_account

from .factories import PhotoFactory

pytestmark = pytest.mark.django_db


def assert_tallies_exact(*owners) -> None:
    for owner in owners:
        live = Photo.objects.filter(owner=owner, deleted_at=None)
        expected = {
            "all": live.count(),
            "generated": live.filter(is_generated=True).count(),
            "uploaded": live.filter(is_generated=False).count(),
            "trash": Photo.objects.filter(owner=owner).exclude(deleted_at=None).count(),
        }
        got = {
            "all": selectors.photo_list(owner=owner).total,
            "generated": selectors.photo_list(owner=owner, generated=True).total,
            "uploaded": selectors.photo_list(owner=owner, generated=False).total,
            "trash": selectors.photo_list(owner=owner, deleted=True).total,
        }
        assert got == expected, owner


def test_tallies_follow_every_kind_of_write(upload, django_capture_on_commit_callbacks, user):
    guest = other_account()
    assert_tallies_exact(user, guest)
    uploaded = [upload(f"{i}.jpg") for i in range(3)]
    generated = PhotoFactory.create_batch(4, is_generated=True)
    theirs = [upload("guest.jpg", owner=guest), *PhotoFactory.create_batch(2, owner=guest, is_generated=True)]
    assert_tallies_exact(user, guest)

    services.photo_delete(owner=user, photo_id=uploaded[0].id)
    services.photo_delete(owner=user, photo_id=generated[0].id)
    services.photo_delete(owner=guest, photo_id=theirs[1].id)
    assert_tallies_exact(user, guest)

    services.photo_restore(owner=user, photo_id=generated[0].id)
    Photo.objects.filter(pk__in=[p.pk for p in generated[1:3]]).update(deleted_at=timezone.now())
    assert_tallies_exact(user, guest)

    with django_capture_on_commit_callbacks(execute=True):
        services.trash_empty(owner=user)
    assert_tallies_exact(user, guest)
    assert selectors.photo_list(owner=guest, deleted=True).total == 1, "one account's trash is its own"

    Photo.objects.filter(pk=generated[3].pk).delete()
    Photo.objects.bulk_create(
        [Photo(owner=user, is_generated=True), Photo(owner=guest, deleted_at=timezone.now()), Photo(owner=None)]
    )
    with connection.cursor() as cursor:
        cursor.execute("UPDATE photos_photo SET deleted_at = NULL")
    assert_tallies_exact(user, guest)
    assert PhotoTally.objects.get(owner=user, name="trash").count == 0

    # A photo that changes hands moves between the owners' tallies; ownerless photos count for nobody.
    Photo.objects.filter(pk=theirs[2].pk).update(owner=user)
    assert_tallies_exact(user, guest)
    ownerless_adopt(models=[Photo], users=get_user_model().objects.all())
    assert not Photo.objects.filter(owner=None).exists()
    assert_tallies_exact(user, guest)


def test_a_list_page_is_two_queries_whatever_the_row_count(django_assert_num_queries, user):
    PhotoFactory.create_batch(30)
    PhotoFactory.create_batch(5, owner=other_account())
    with django_assert_num_queries(2):  # the tallies, the page
        assert selectors.photo_list(owner=user, limit=1).total == 30


def test_tallies_are_rebuilt_after_a_flush(upload, user):
    guest = other_account()
    upload()
    upload("theirs.jpg", owner=guest)
    PhotoTally.objects.all().delete()
    Photo.objects.all().delete()  # the order SQLite's flush uses: tallies first, then the rows
    assert PhotoTally.objects.get(owner=user, name="live").count == -1

    services.photo_tallies_rebuild()
    assert_tallies_exact(user, guest)
    upload()
    upload("theirs.jpg", owner=guest)
    assert_tallies_exact(user, guest)
