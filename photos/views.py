"""Gallery pages: the grid with infinite scroll, the lightbox, the trash."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from gallery_project.errors import InvalidInput, NotFound
from gallery_project.http import HtmxRequest

from . import media, selectors, services

KINDS = {"all": None, "uploaded": False, "generated": True}
PAGE_SIZE = 60
# Tiles of a first page fetched at once, not when layout finds them on screen: about a 1440x900 screen's worth
# (its first row first). Lazy loading would hold them until the style sheets have loaded and laid the page out.
EAGER_TILES = 40


def _filters(request: HttpRequest) -> dict[str, str]:
    kind = request.GET.get("kind", "all")
    sort = request.GET.get("sort", "newest")
    if kind not in KINDS or sort not in selectors.SORTS:
        raise InvalidInput("Unknown filter.", code="invalid_filter")
    return {"kind": kind, "sort": sort}


@require_GET
@vary_on_headers("HX-Request")
def gallery(request: HtmxRequest) -> HttpResponse:
    filters = _filters(request)
    page = selectors.photo_list(
        owner=request.user,
        generated=KINDS[filters["kind"]],
        sort=filters["sort"],
        limit=PAGE_SIZE,
        cursor=request.GET.get("cursor") or None,
    )
    template = "photos/gallery.html"
    if request.htmx and request.GET.get("cursor"):
        template += "#grid-page"
    context = {
        "page": page,
        "filters": filters,
        "max_upload_mb": settings.MAX_UPLOAD_SIZE // (1024 * 1024),
        "eager_tiles": 0 if request.GET.get("cursor") else EAGER_TILES,
    }
    return render(request, template, context)


@require_GET
@vary_on_headers("HX-Request")
def photo_detail(request: HtmxRequest, pk) -> HttpResponse:
    """The lightbox body for htmx; the same content as a page of its own for a direct link."""
    photo = selectors.photo_get(photo_id=pk, owner=request.user, include_deleted=True)
    template = "photos/photo.html"
    if request.htmx:
        template += "#lightbox-body"
    # Generated photos get their lightbox rendition on first view: made here, so the signed URL has a file.
    try:
        display = services.photo_display_rendition(photo=photo)
    except NotFound:
        display = ""  # its file is missing: the lightbox says so, with the details still readable
    return render(request, template, {"photo": photo, "display_url": media.signed_url(display) if display else ""})


@require_GET
def photo_tile(request: HttpRequest, pk) -> HttpResponse:
    """One grid tile, for photos added by the upload script without reloading the grid."""
    photo = selectors.photo_get(photo_id=pk, owner=request.user)
    return render(request, "photos/gallery.html#photo-tile", {"photo": photo})


@require_GET
@vary_on_headers("HX-Request")
def trash(request: HtmxRequest) -> HttpResponse:
    page = selectors.photo_list(
        owner=request.user, deleted=True, limit=PAGE_SIZE, cursor=request.GET.get("cursor") or None
    )
    template = "photos/trash.html"
    if request.htmx and request.GET.get("cursor"):
        template += "#trash-page"
    return render(request, template, {"page": page, "trash_days": settings.TRASH_DAYS})


@require_POST
def trash_empty(request: HttpRequest) -> HttpResponse:
    services.trash_empty(owner=request.user)
    return redirect("photos:trash")
