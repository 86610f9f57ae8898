"""Reads of albums and share links, each a fixed number of queries however many photos an album holds.

Every read is of one owner's albums and links (gallery_project.permissions): another account's are not found.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, TypeAlias, TypedDict

from django.core.exceptions import ValidationError
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery, UUIDField
from django.db.models.functions import Coalesce
from django.utils import timezone

from gallery_project.errors import NotFound
from gallery_project.permissions import Owner, owned_by
from photos.models import Photo
from photos.selectors import available_q, live_photos

from .models import Album, AlbumPhoto, ShareLink

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class AlbumTotals(TypedDict):
    photo_count: int
    cover_id: uuid.UUID | None


AnnotatedAlbum: TypeAlias = "WithAnnotations[Album, AlbumTotals]"


def live_entries() -> QuerySet[AlbumPhoto]:
    """Album entries whose photo is not in the trash (trashed photos keep their entry and place)."""
    return AlbumPhoto.objects.filter(photo__deleted_at=None)


def albums_annotated(albums: QuerySet[Album]) -> QuerySet[AnnotatedAlbum]:
    """The albums with `photo_count` (live photos) and `cover_id`, in one query.

    The cover is the chosen photo while it is a live, available photo of the album, and otherwise the album's
    first such photo, so trashing or removing the cover never leaves an album without one.
    """
    entries = live_entries().filter(album=OuterRef("pk"))
    showable = entries.filter(available_q("photo__"))
    count = entries.order_by().values("album").annotate(n=Count("pk")).values("n")
    chosen = showable.filter(photo_id=OuterRef("cover_photo_id")).values("photo_id")[:1]
    first = showable.order_by("position", "id").values("photo_id")[:1]
    return albums.annotate(
        photo_count=Coalesce(Subquery(count), 0),
        cover_id=Coalesce(Subquery(chosen), Subquery(first), output_field=UUIDField()),
    )


def album_list(*, owner: Owner, archived: bool | None = None) -> QuerySet[Album]:
    """The owner's albums, annotated as `albums_annotated` does."""
    albums = albums_annotated(owned_by(Album.objects.all(), owner))
    if archived is not None:
        albums = albums.filter(is_archived=archived)
    return albums


def album_get(*, album_id: uuid.UUID | str, owner: Owner) -> Album:
    try:
        return album_list(owner=owner).get(pk=album_id)
    except (Album.DoesNotExist, ValidationError):
        raise NotFound("This album does not exist.", details={"album_id": str(album_id)}) from None


def album_photo_ids(*, album_id: uuid.UUID | str) -> list[uuid.UUID]:
    """The ids of the album's live photos, in the album's order (of an album the caller got for its owner)."""
    return list(live_entries().filter(album_id=album_id).order_by("position", "id").values_list("photo_id", flat=True))


def album_ids_of_photo(*, photo_id: uuid.UUID | str) -> set[uuid.UUID]:
    """The albums holding a photo (one the caller got for its owner: albums only ever hold their owner's)."""
    return set(AlbumPhoto.objects.filter(photo_id=photo_id).values_list("album_id", flat=True))


def share_link_live_q(now: datetime) -> Q:
    """Links that are neither revoked nor expired."""
    return Q(revoked_at=None) & (Q(expires_at=None) | Q(expires_at__gt=now))


def share_link_downloads_left_q() -> Q:
    return Q(max_downloads=None) | Q(download_count__lt=F("max_downloads"))


def share_link_unspent_q() -> Q:
    """Links with views and downloads left (an empty limit means no limit)."""
    return (Q(max_views=None) | Q(view_count__lt=F("max_views"))) & share_link_downloads_left_q()


def share_link_list(
    *,
    owner: Owner,
    active_only: bool = False,
    album_id: uuid.UUID | str | None = None,
    photo_id: uuid.UUID | str | None = None,
) -> QuerySet[ShareLink]:
    """The owner's share links, newest first, with their album or photo; `active_only` keeps the ones that
    still work."""
    links = owned_by(ShareLink.objects.select_related("album", "photo"), owner)
    if album_id is not None:
        links = links.filter(album_id=album_id)
    if photo_id is not None:
        links = links.filter(photo_id=photo_id)
    if active_only:
        links = links.filter(
            share_link_live_q(timezone.now()),
            share_link_unspent_q(),
            Q(photo=None) | Q(photo__deleted_at=None),
        )
    return links


def share_link_photo(*, link: ShareLink, photo_id: uuid.UUID | str) -> Photo:
    """A photo the link shares: its one photo, or a live photo of its album. Anything else is not found, so a
    valid token cannot be used to reach any other photo."""
    if link.photo is not None:
        if str(link.photo_id) != str(photo_id):
            raise NotFound("This photo is not shared by this link.")
        return link.photo
    if link.album_id is None:
        raise NotFound("This photo is not shared by this link.")
    photo = live_photos(owner=link.owner_id).filter(pk=photo_id, album_entries__album_id=link.album_id).first()
    if photo is None:
        raise NotFound("This photo is not shared by this link.")
    return photo
