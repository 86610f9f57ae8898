from __future__ import annotations

import factory

from albums.models import Album


class AlbumFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Album

    name = factory.Sequence(lambda n: f"Album {n}")
