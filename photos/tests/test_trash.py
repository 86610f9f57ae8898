"""The soft delete -> restore -> purge cycle, and the scheduled purge after TRASH_DAYS."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from photos import selectors, services, storage, tasks
from photos.models import Photo

pytestmark = pytest.mark.django_db


def test_delete_hides_restore_brings_back(upload, user):
    photo = upload()
    services.photo_delete(owner=user, photo_id=photo.id)

    assert selectors.photo_list(owner=user).total == 0
    assert selectors.photo_list(owner=user, deleted=True).items == [Photo.objects.get()]

    services.photo_restore(owner=user, photo_id=photo.id)
    assert [p.id for p in selectors.photo_list(owner=user).items] == [photo.id]
    assert selectors.photo_list(owner=user, deleted=True).total == 0


def test_delete_twice_keeps_the_first_date(upload, user):
    photo = upload()
    first = services.photo_delete(owner=user, photo_id=photo.id).deleted_at
    assert services.photo_delete(owner=user, photo_id=photo.id).deleted_at == first


def test_purge_removes_rows_then_files_after_commit(upload, _photo_store, django_capture_on_commit_callbacks, user):
    photo = upload()
    paths = storage.renditions_of(photo.local_storage_path)
    services.photo_delete(owner=user, photo_id=photo.id)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert services.photo_purge(photo_ids=[photo.id]) == 1
    assert not Photo.objects.exists()
    assert all(storage.exists(p) for p in paths), "files stay until the transaction has committed"

    for callback in callbacks:
        callback()
    assert not any(storage.exists(p) for p in paths)


def test_purge_ignores_photos_not_in_the_trash(upload):
    photo = upload()
    assert services.photo_purge(photo_ids=[photo.id]) == 0
    assert Photo.objects.filter(pk=photo.id).exists()


def test_scheduled_purge_only_takes_expired_photos(upload, settings, django_capture_on_commit_callbacks):
    settings.TRASH_DAYS = 30
    old, recent, live = upload("old.jpg"), upload("recent.jpg"), upload("live.jpg")
    now = timezone.now()
    Photo.objects.filter(pk=old.pk).update(deleted_at=now - timedelta(days=31))
    Photo.objects.filter(pk=recent.pk).update(deleted_at=now - timedelta(days=29))

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.purge_expired_trash() == 1

    assert set(Photo.objects.values_list("id", flat=True)) == {recent.id, live.id}
    assert not storage.exists(old.local_storage_path)
    assert storage.exists(recent.local_storage_path)


def test_empty_trash(upload, django_capture_on_commit_callbacks, user):
    for name in ("a.jpg", "b.jpg"):
        services.photo_delete(owner=user, photo_id=upload(name).id)
    upload("kept.jpg")
    with django_capture_on_commit_callbacks(execute=True):
        assert services.trash_empty(owner=user) == 2
    assert Photo.objects.count() == 1
