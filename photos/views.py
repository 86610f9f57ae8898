"""Gallery pages: the grid with infinite scroll, the lightbox, the trash."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from gallery_project.errors import InvalidInput, NotFound
from gallery_project.http import HtmxRequest

from . import media, selectors, services
from .models import Photo

KINDS = {"all": None, "uploaded": False, "generated": True}
PAGE_SIZE = 60
TIMELINE_SORTS = ("taken", "taken_oldest")
# Tiles of a first page fetched at once, not when layout finds them on screen: about a 1440x900 screen's worth
# (its first row first). Lazy loading would hold them until the style sheets have loaded and laid the page out.
EAGER_TILES = 40


# The grid's look, kept in cookies (set by app.js) so the server renders it right from the first byte: tile size
# (ZOOMS, densest first; the densest has month headers) and square or justified (aspect-preserving) tiles.
ZOOMS = ("xs", "s", "m", "l")
DEFAULT_ZOOM = "m"
DENSEST_ZOOM = ZOOMS[0]
LAYOUTS = ("square", "justified")
ZOOM_COOKIE, LAYOUT_COOKIE, ALTERNATIVES_COOKIE = "grid_zoom", "grid_layout", "grid_alternatives"
YEAR = 365 * 24 * 3600


def _grid_look(request: HttpRequest) -> dict[str, str]:
    zoom, layout = request.COOKIES.get(ZOOM_COOKIE, ""), request.COOKIES.get(LAYOUT_COOKIE, "")
    return {"zoom": zoom if zoom in ZOOMS else DEFAULT_ZOOM, "layout": layout if layout in LAYOUTS else LAYOUTS[0]}


def _alternatives(request: HttpRequest) -> str:
    """Every alternative or stacks: the address says (its form sends both values, the last one wins when the
    box is ticked), else what this browser chose last."""
    values = request.GET.getlist("alternatives")
    chosen = values[-1] if values else request.COOKIES.get(ALTERNATIVES_COOKIE, selectors.STACKED)
    if values and chosen not in selectors.ALTERNATIVES:
        raise InvalidInput("Unknown filter.", code="invalid_filter")
    return chosen if chosen in selectors.ALTERNATIVES else selectors.STACKED


def _filters(request: HttpRequest) -> dict[str, str]:
    kind = request.GET.get("kind", "all")
    q = request.GET.get("q", "").strip()[:200]
    # The gallery is a timeline: by date taken unless asked otherwise; a search, best matches first.
    sort = request.GET.get("sort") or (selectors.RELEVANCE if q else "taken")
    favorites = request.GET.get("favorites", "")
    sorts = (*selectors.SORTS, selectors.RELEVANCE) if q else selectors.SORTS
    if kind not in KINDS or sort not in sorts or favorites not in ("", "1"):
        raise InvalidInput("Unknown filter.", code="invalid_filter")
    return {"kind": kind, "sort": sort, "favorites": favorites, "q": q, "alternatives": _alternatives(request)}


def _filter_query(filters: dict[str, str]) -> str:
    """The filters as the query string of the grid's further pages and jumps."""
    return urlencode({name: value for name, value in filters.items() if value})


def _from_day(request: HttpRequest) -> date | None:
    value = request.GET.get("from", "")
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        raise InvalidInput("from must be a day (YYYY-MM-DD).", code="invalid_filter") from None


@dataclass(frozen=True)
class Header:
    day: date
    # The first day of its month in the list: at the densest zoom only these show, as month headers.
    new_month: bool


def _day_headers(photos: list[Photo], previous: date | None) -> list[tuple[Photo, Header | None]]:
    """Each photo with the day to head it with, where its day (taken, in TIME_ZONE) differs from the photo
    before it; `previous` is the day of the last photo of the page before."""
    headed = []
    for photo in photos:
        day = timezone.localdate(photo.taken_at)
        new_month = previous is None or (day.year, day.month) != (previous.year, previous.month)
        headed.append((photo, Header(day, new_month) if day != previous else None))
        previous = day
    return headed


@require_GET
@vary_on_headers("HX-Request")
def gallery(request: HtmxRequest) -> HttpResponse:
    filters = _filters(request)
    if "stack" in request.GET:
        return _stack(request, filters)
    cursor = request.GET.get("cursor") or None
    page = selectors.photo_list(
        owner=request.user,
        generated=KINDS[filters["kind"]],
        favorite=True if filters["favorites"] else None,
        q=filters["q"],
        sort=filters["sort"],
        limit=PAGE_SIZE,
        cursor=cursor,
        from_day=_from_day(request),
        alternatives=filters["alternatives"],
    )
    # The timeline has a header for every day taken; a page goes on from the day its cursor ends on.
    timeline = filters["sort"] in TIMELINE_SORTS
    previous = timezone.localdate(selectors.decode_cursor(cursor, filters["sort"])[0]) if timeline and cursor else None
    template = "photos/gallery.html"
    if request.htmx and request.GET.get("cursor"):
        template += "#grid-page"
    context = {
        "page": page,
        "tiles": _day_headers(page.items, previous) if timeline else [(photo, None) for photo in page.items],
        "timeline": timeline,
        "filters": filters,
        "max_upload_mb": settings.MAX_UPLOAD_SIZE // (1024 * 1024),
        "albums_found": selectors.album_names_matching(owner=request.user, q=filters["q"]) if filters["q"] else [],
        "eager_tiles": 0 if request.GET.get("cursor") else EAGER_TILES,
        "filter_query": _filter_query(filters),
        "look": _grid_look(request),
        "zooms": ZOOMS,
    }
    response = render(request, template, context)
    if "alternatives" in request.GET:
        response.set_cookie(ALTERNATIVES_COOKIE, filters["alternatives"], max_age=YEAR, samesite="Lax")
    return response


def _stack(request: HttpRequest, filters: dict[str, str]) -> HttpResponse:
    """A stack opened: the tiles of its step's alternatives (those the grid's filters keep), in its place."""
    try:
        step = int(request.GET["stack"])
    except ValueError:
        raise InvalidInput("stack must be a step's id.", code="invalid_filter") from None
    page = selectors.photo_list(
        owner=request.user,
        generated=KINDS[filters["kind"]],
        favorite=True if filters["favorites"] else None,
        q=filters["q"],
        sort="taken_oldest" if filters["sort"] == "taken_oldest" else "taken",
        limit=selectors.MAX_LIMIT,
        stack=step,
    )
    context = {"tiles": [(photo, None) for photo in page.items], "filters": filters, "eager_tiles": len(page.items)}
    return render(request, "photos/gallery.html#stack-tiles", context)


@require_GET
def duplicates(request: HttpRequest) -> HttpResponse:
    """Photos stored more than once, side by side: keep one, the others go to the trash."""
    groups = selectors.duplicate_groups(owner=request.user)
    return render(
        request, "photos/duplicates.html", {"groups": groups, "more": len(groups) >= selectors.MAX_DUPLICATE_GROUPS}
    )


@require_GET
def timeline_months(request: HttpRequest) -> HttpResponse:
    """The jump list of the timeline: every month with photos, by year, each a link to its first day; with
    view=scrubber the same links as the date scrubber along the grid's edge."""
    filters = _filters(request)
    months = selectors.photo_months(
        owner=request.user,
        generated=KINDS[filters["kind"]],
        favorite=True if filters["favorites"] else None,
    )
    oldest_first = filters["sort"] == "taken_oldest"
    years: dict[int, list[tuple[date, date, int]]] = {}
    for month, count in sorted(months, reverse=not oldest_first):
        # Newest first, a month starts at its last day; oldest first, at its first.
        last = date(month.year + month.month // 12, month.month % 12 + 1, 1) - timedelta(days=1)
        years.setdefault(month.year, []).append((month, month if oldest_first else last, count))
    context = {
        "years": [(year, sum(count for *_, count in months), months) for year, months in years.items()],
        "filters": filters,
        "filter_query": _filter_query(filters),
    }
    partial = "scrubber" if request.GET.get("view") == "scrubber" else "jump-list"
    return render(request, f"photos/gallery.html#{partial}", context)


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
    return render(
        request,
        template,
        {
            "photo": photo,
            "camera": selectors.photo_camera_details(photo=photo),
            "display_url": media.signed_url(display) if display else "",
        },
    )


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
