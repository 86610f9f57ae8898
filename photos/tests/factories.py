from __future__ import annotations

import uuid

import factory
from django.utils import timezone

from photos.models import Photo
from testing.accounts import owner_account


class PhotoFactory(factory.django.DjangoModelFactory):
    """A photo row without files, for tests about lists and queries."""

    class Meta:
        model = Photo

    id = factory.LazyFunction(uuid.uuid4)
    owner = factory.LazyFunction(owner_account)
    filename = factory.Sequence(lambda n: f"photo-{n}.jpg")
    width = 640
    height = 480
    file_size = 12345
    mime_type = "image/jpeg"
    checksum = factory.Sequence(lambda n: f"{n:064x}")
    local_storage_path = factory.LazyAttribute(lambda p: f"uploaded/2026-01-01/{p.id}.jpg")
    local_thumbnail_path = factory.LazyAttribute(lambda p: f"thumbnails/uploaded/2026-01-01/{p.id}.webp")
    created_at = factory.LazyFunction(timezone.now)
    taken_at = factory.SelfAttribute("created_at")
