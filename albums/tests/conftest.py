from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from albums import services
from generation.tests.conftest import gallery_photo  # noqa: F401  (the fixture: photos with real files)
from photos.tests.conftest import upload  # noqa: F401  (the fixture, for real files on disk)
from photos.tests.factories import PhotoFactory


@pytest.fixture
def photos(db):
    """Five photos without files, oldest first."""
    start = timezone.now() - timedelta(days=1)
    return [PhotoFactory(created_at=start + timedelta(minutes=i)) for i in range(5)]


@pytest.fixture
def album(user):
    return services.album_create(owner=user, name="Holiday")


def ids_in(album) -> list:
    """The album's photo ids in order, trashed ones included."""
    return list(album.entries.order_by("position", "id").values_list("photo_id", flat=True))
