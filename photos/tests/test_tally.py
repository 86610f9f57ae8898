"""The trigger-kept photo tallies stay equal to real counts whatever path writes the rows."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from photos import selectors, services
from photos.models import Photo, PhotoTally

from .factories import PhotoFactory

pytestmark = pytest.mark.django_db


def assert_tallies_exact() -> None:
    live = Photo.objects.filter(deleted_at=None)
    expected = {
        "all": live.count(),
        "generated": live.filter(is_generated=True).count(),
        "uploaded": live.filter(is_generated=False).count(),
        "trash": Photo.objects.exclude(deleted_at=None).count(),
    }
    got = {
        "all": selectors.photo_list().total,
        "generated": selectors.photo_list(generated=True).total,
        "uploaded": selectors.photo_list(generated=False).total,
        "trash": selectors.photo_list(deleted=True).total,
    }
    assert got == expected


def test_tallies_follow_every_kind_of_write(upload, django_capture_on_commit_callbacks):
    assert_tallies_exact()
    uploaded = [upload(f"{i}.jpg") for i in range(3)]
    generated = PhotoFactory.create_batch(4, is_generated=True)
    assert_tallies_exact()

    services.photo_delete(photo_id=uploaded[0].id)
    services.photo_delete(photo_id=generated[0].id)
    assert_tallies_exact()

    services.photo_restore(photo_id=generated[0].id)
    Photo.objects.filter(pk__in=[p.pk for p in generated[1:3]]).update(deleted_at=timezone.now())
    assert_tallies_exact()

    with django_capture_on_commit_callbacks(execute=True):
        services.trash_empty()
    assert_tallies_exact()

    Photo.objects.filter(pk=generated[3].pk).delete()
    Photo.objects.bulk_create([Photo(is_generated=True), Photo(deleted_at=timezone.now())])
    with connection.cursor() as cursor:
        cursor.execute("UPDATE photos_photo SET deleted_at = NULL")
    assert_tallies_exact()
    assert PhotoTally.objects.get(name="trash").count == 0


def test_a_list_page_is_two_queries_whatever_the_row_count(django_assert_num_queries):
    PhotoFactory.create_batch(30)
    with django_assert_num_queries(2):  # the tallies, the page
        assert selectors.photo_list(limit=1).total == 30


def test_tallies_are_rebuilt_after_a_flush(upload):
    upload()
    PhotoTally.objects.all().delete()
    Photo.objects.all().delete()  # the order SQLite's flush uses: tallies first, then the rows
    assert PhotoTally.objects.get(name="live").count == -1

    services.photo_tallies_rebuild()
    assert_tallies_exact()
