"""The owner's album and share-link pages. They only read; changes go through the API (js/albums.js)."""

from __future__ import annotations

import uuid

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from gallery_project.errors import InvalidInput
from gallery_project.http import HtmxRequest
from photos.models import Photo
from photos.selectors import UNCATEGORIZED, photo_get, photo_list
from photos.views import PAGE_SIZE

from . import selectors, services
from .models import Album


@require_GET
def album_list(request: HttpRequest) -> HttpResponse:
    albums = list(selectors.album_list(owner=request.user))
    context = {
        "albums": [album for album in albums if not album.is_archived],
        "archived": [album for album in albums if album.is_archived],
        "uncategorized": photo_list(owner=request.user, album_id=UNCATEGORIZED, limit=1),
    }
    return render(request, "albums/album_list.html", context)


def _album_page(request: HtmxRequest, album, album_id) -> HttpResponse:
    page = photo_list(owner=request.user, album_id=album_id, limit=PAGE_SIZE, cursor=request.GET.get("cursor") or None)
    template = "albums/album.html"
    if request.htmx and request.GET.get("cursor"):
        template += "#grid-page"
    return render(request, template, {"album": album, "page": page})


@require_GET
@vary_on_headers("HX-Request")
def album_detail(request: HtmxRequest, album_id: uuid.UUID) -> HttpResponse:
    return _album_page(request, selectors.album_get(album_id=album_id, owner=request.user), album_id)


@require_GET
@vary_on_headers("HX-Request")
def uncategorized(request: HtmxRequest) -> HttpResponse:
    """The built-in view of photos in no album: the same page as an album's, without its controls."""
    return _album_page(request, None, UNCATEGORIZED)


def _uuid_param(request: HttpRequest, name: str) -> uuid.UUID | None:
    value = request.GET.get(name)
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidInput(f"{name} must be an id.", code="invalid_id") from None


@require_GET
def album_choices(request: HttpRequest) -> HttpResponse:
    """The albums to add photos to, or (with `from`) to move them to from that album, for a dialog."""
    source = _uuid_param(request, "from")
    albums = [album for album in selectors.album_list(owner=request.user, archived=False) if album.pk != source]
    return render(request, "albums/album_list.html#album-choices", {"albums": albums, "source": source})


@require_GET
def photo_albums(request: HttpRequest, photo_id: uuid.UUID) -> HttpResponse:
    """The lightbox's album picker: which albums hold this photo, and the current album's actions."""
    photo = photo_get(photo_id=photo_id, owner=request.user)
    context = {
        "photo": photo,
        "albums": selectors.album_list(owner=request.user, archived=False),
        "member_of": selectors.album_ids_of_photo(photo_id=photo.pk),
        "current_album": _uuid_param(request, "album"),
    }
    return render(request, "albums/album_list.html#photo-albums", context)


@require_GET
@vary_on_headers("HX-Request")
def share_list(request: HtmxRequest) -> HttpResponse:
    """Every active link (every link with ?all=1); with htmx, the table rows (a share dialog's list, too)."""
    show_all = request.GET.get("all") == "1"
    links = selectors.share_link_list(
        owner=request.user,
        active_only=not show_all,
        album_id=_uuid_param(request, "album"),
        photo_id=_uuid_param(request, "photo"),
    )
    template = "albums/shares.html"
    if request.htmx:
        template += "#share-rows"
    return render(request, template, {"links": links, "show_all": show_all})


@require_GET
def share_new(request: HttpRequest) -> HttpResponse:
    """The share dialog for one album or one photo: a form for a new link and the target's links so far."""
    album_id, photo_id = _uuid_param(request, "album"), _uuid_param(request, "photo")
    target: Album | Photo
    if album_id is not None and photo_id is None:
        target = selectors.album_get(album_id=album_id, owner=request.user)
    elif photo_id is not None and album_id is None:
        target = photo_get(photo_id=photo_id, owner=request.user)
    else:
        raise InvalidInput("Share either an album or a photo.", code="invalid_share_target")
    links = selectors.share_link_list(owner=request.user, album_id=album_id, photo_id=photo_id)
    context = {
        "album": target if album_id else None,
        "photo": target if photo_id else None,
        "links": links,
        "presets": {key: label for key, (label, _) in services.EXPIRY_PRESETS.items()},
        "default_expiry": services.DEFAULT_EXPIRY,
    }
    return render(request, "albums/shares.html#share-dialog", context)
