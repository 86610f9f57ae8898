"""Reads of the photo store: filtered, paginated lists (offset or keyset cursor) and single photos.

Every read is of one owner's photos (gallery_project.permissions): another account's photo is not found.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Case, Count, Exists, F, Func, IntegerField, OuterRef, Q, QuerySet, Subquery, When
from django.db.models.functions import TruncMonth
from django.utils import timezone

from gallery_project.errors import InvalidInput, NotFound
from gallery_project.permissions import Owner, owned_by

from . import embedded, search, storage
from .models import Photo, PhotoTally

# Each sort's (field, descending): by date taken (the timeline) or by date added.
SORT_KEYS = {
    "taken": ("taken_at", True),
    "taken_oldest": ("taken_at", False),
    "newest": ("created_at", True),
    "oldest": ("created_at", False),
}
SORTS = tuple(SORT_KEYS)
# A search's order: the best matches first (photos.search).
RELEVANCE = "relevance"
_TAKEN_TAG = "taken"
_SEARCH_TAG = "search"
MAX_LIMIT = 200
# album_id=UNCATEGORIZED lists the photos that are in no album.
UNCATEGORIZED = "none"
# An album's photos come in the album's order (the positions its owner arranged), not by date.
ALBUM_ORDER = "album"


# What the main grid shows of a studio step's alternatives (Photo.step_alternative): every one, or the chosen one
# alone, and while none is chosen one stack standing for them all.
EVERY_ALTERNATIVE = "all"
STACKED = "stacked"
ALTERNATIVES = (STACKED, EVERY_ALTERNATIVE)


@dataclass(frozen=True)
class PhotoPage:
    items: list[Photo]
    total: int
    limit: int
    offset: int
    next_cursor: str | None


def _bad_cursor() -> InvalidInput:
    return InvalidInput("The cursor is not one this server handed out.", code="invalid_cursor")


def _encode(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _decode(cursor: str) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        values = None
    if not isinstance(values, list):
        raise _bad_cursor()
    return values


def encode_cursor(photo: Photo, sort: str = "newest") -> str:
    field, _ = SORT_KEYS[sort]
    values = [getattr(photo, field).isoformat(), photo.id.hex]
    # Tagged, so a cursor of one order handed back with the other is refused rather than misread.
    return _encode([_TAKEN_TAG, *values] if field == "taken_at" else values)


def decode_cursor(cursor: str, sort: str = "newest") -> tuple[datetime, uuid.UUID]:
    values = _decode(cursor)
    if SORT_KEYS[sort][0] == "taken_at":
        if values[:1] != [_TAKEN_TAG]:
            raise _bad_cursor()
        values = values[1:]
    try:
        moment, pk = values
        return datetime.fromisoformat(moment), uuid.UUID(hex=pk)
    except (ValueError, TypeError, AttributeError):
        raise _bad_cursor() from None


def _decode_search_cursor(cursor: str) -> int:
    values = _decode(cursor)
    if len(values) != 2 or values[0] != _SEARCH_TAG or not isinstance(values[1], int) or values[1] < 0:
        raise _bad_cursor()
    return values[1]


def _encode_position_cursor(photo: Photo) -> str:
    # Tagged, so a date cursor handed back with album_id (or the reverse) is refused rather than misread.
    return _encode(["position", photo.album_position, photo.id.hex])  # type: ignore[attr-defined]  # annotated on album pages


def _decode_position_cursor(cursor: str) -> tuple[int, uuid.UUID]:
    try:
        tag, position, pk = _decode(cursor)
        if tag != "position" or not isinstance(position, int):
            raise ValueError(tag)
        return position, uuid.UUID(hex=pk)
    except (ValueError, TypeError, AttributeError):
        raise _bad_cursor() from None


def _after_cursor(queryset: QuerySet[Photo], cursor: str, sort: str) -> QuerySet[Photo]:
    if sort == ALBUM_ORDER:
        position, pk = _decode_position_cursor(cursor)
        return queryset.filter(Q(album_position__gte=position), Q(album_position__gt=position) | Q(id__gt=pk))
    moment, pk = decode_cursor(cursor, sort)
    field, descending = SORT_KEYS[sort]
    # The first condition bounds an index range scan; the OR only breaks ties on the boundary timestamp.
    # Written as a bare OR, PostgreSQL would walk the index from the start and filter, making deep pages slow.
    if descending:
        return queryset.filter(Q(**{f"{field}__lte": moment}), Q(**{f"{field}__lt": moment}) | Q(id__lt=pk))
    return queryset.filter(Q(**{f"{field}__gte": moment}), Q(**{f"{field}__gt": moment}) | Q(id__gt=pk))


def _from_day(queryset: QuerySet[Photo], day: date, sort: str) -> QuerySet[Photo]:
    """The list from `day` on, in its own order: a jump to a date, costing what the first page costs."""
    field, descending = SORT_KEYS[sort]
    zone = timezone.get_current_timezone()
    if descending:
        end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
        return queryset.filter(**{f"{field}__lt": end})
    return queryset.filter(**{f"{field}__gte": datetime.combine(day, time.min, tzinfo=zone)})


def _tallied_total(*, owner: Owner, deleted: bool, generated: bool | None) -> int | None:
    """The owner's total from the trigger-kept tallies, or None when they don't cover this filter."""
    if deleted and generated is not None:
        return None
    tallies: dict[str, int] = dict(owned_by(PhotoTally.objects.all(), owner).values_list("name", "count"))
    if deleted:
        return tallies.get(PhotoTally.TRASH, 0)
    live, live_generated = tallies.get(PhotoTally.LIVE, 0), tallies.get(PhotoTally.LIVE_GENERATED, 0)
    if generated is None:
        return live
    return live_generated if generated else live - live_generated


def owned_photos(owner: Owner) -> QuerySet[Photo]:
    return owned_by(Photo.objects.all(), owner)


def live_photos(*, owner: Owner) -> QuerySet[Photo]:
    return owned_photos(owner).filter(deleted_at=None)


def available_q(prefix: str = "") -> Q:
    """Photo.is_available as a filter, for photos reached through `prefix` (e.g. "photo__")."""
    return Q(**{f"{prefix}retrieval_status": Photo.RetrievalStatus.COMPLETED}) & ~Q(
        **{f"{prefix}local_storage_path": ""}
    )


def photo_list(
    *,
    owner: Owner,
    generated: bool | None = None,
    favorite: bool | None = None,
    sort: str = "newest",
    limit: int = 50,
    offset: int = 0,
    cursor: str | None = None,
    from_day: date | None = None,
    deleted: bool = False,
    album_id: uuid.UUID | str | None = None,
    queryset: QuerySet[Photo] | None = None,
    q: str = "",
    taken_after: date | None = None,
    taken_before: date | None = None,
    tool: str = "",
    model: str = "",
    seed: int | None = None,
    alternatives: str = EVERY_ALTERNATIVE,
    stack: int | None = None,
) -> PhotoPage:
    """A page of the owner's photos by date taken or added, either way; `cursor` continues after a page and
    `from_day` starts at a day, both at the cost of the first page (`total` still counts the whole list).

    `album_id` keeps the photos of one album, in the album's order (`sort` does not apply), or with
    `UNCATEGORIZED` the photos in no album. The albums app owns albums; this only follows the reverse
    relation of its AlbumPhoto rows (`album_entries`), so photos never imports albums. A `queryset` given is
    narrowed to the owner's photos too.

    `q` keeps the photos whose text has every word (`photos.search`); with `sort="relevance"` the best
    matches come first, and the cursor then counts the photos already sent (a search's matches are few
    enough). The other filters: dates taken (inclusive days in TIME_ZONE), the generating tool (`tool`),
    the model's name, the seed.

    `alternatives=STACKED` (the main grid's default) shows of a studio step's alternatives the chosen one, or
    while none is, the first as a stack annotated `stack_size` (`_stacked`); not in the trash or an album.
    `stack` lists one step's alternatives (a stack opened).
    """
    words = search.terms(q) if q else []
    if q and not words:
        raise InvalidInput("Search for at least one word (letters or digits).", code="invalid_query")
    if sort == RELEVANCE and not words:
        raise InvalidInput("sort=relevance needs a search (q).", code="invalid_sort")
    if sort not in SORTS and sort != RELEVANCE:
        raise InvalidInput(f"sort must be one of {', '.join(SORTS)}.", code="invalid_sort")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}.", code="invalid_limit")
    if offset < 0:
        raise InvalidInput("offset cannot be negative.", code="invalid_offset")
    total = None
    if queryset is None:
        queryset = owned_photos(owner).filter(deleted_at__isnull=False) if deleted else live_photos(owner=owner)
        narrowed = (favorite, taken_after, taken_before, seed) != (None,) * 4 or bool(q or tool or model)
        if album_id is None and not narrowed:  # the tallies count photos by kind only
            total = _tallied_total(owner=owner, deleted=deleted, generated=generated)
    else:
        queryset = owned_by(queryset, owner)
    if alternatives not in ALTERNATIVES:
        raise InvalidInput(f"alternatives must be one of {', '.join(ALTERNATIVES)}.", code="invalid_alternatives")
    narrowing = _narrowing(
        generated=generated,
        favorite=favorite,
        taken_after=taken_after,
        taken_before=taken_before,
        tool=tool,
        model=model,
        seed=seed,
    )
    queryset = queryset.filter(narrowing)
    if words:
        queryset = search.matching(queryset, words)
    if stack is not None:
        queryset = queryset.filter(step_alternative__step_id=stack)
    elif alternatives == STACKED and album_id is None and not deleted:
        queryset = _stacked(queryset, narrowing & search.matches(words) if words else narrowing)
    if album_id == UNCATEGORIZED:
        queryset = queryset.filter(album_entries__isnull=True)
    elif album_id is not None:
        # One join: the filter and the annotation share the album_entries alias.
        queryset = queryset.filter(album_entries__album_id=album_id).annotate(
            album_position=F("album_entries__position")
        )
        sort = ALBUM_ORDER
    if total is None:
        total = queryset.count()
    ordering: tuple[str, ...]
    if sort == ALBUM_ORDER:
        ordering = ("album_position", "id")
    elif sort == RELEVANCE:
        ordering = ("-search_rank", "-taken_at", "-id")
    else:
        field, descending = SORT_KEYS[sort]
        ordering = (f"-{field}", "-id") if descending else (field, "id")
    page = queryset.order_by(*ordering)
    if from_day is not None and sort not in (ALBUM_ORDER, RELEVANCE):
        page = _from_day(page, from_day, sort)
    if cursor and sort == RELEVANCE:
        offset = _decode_search_cursor(cursor)
    elif cursor:
        page = _after_cursor(page, cursor, sort)
        offset = 0
    items = list(page[offset : offset + limit + 1])
    has_more = len(items) > limit
    items = items[:limit]
    next_cursor = None
    if has_more and sort == RELEVANCE:
        next_cursor = _encode([_SEARCH_TAG, offset + limit])
    elif has_more:
        next_cursor = _encode_position_cursor(items[-1]) if sort == ALBUM_ORDER else encode_cursor(items[-1], sort)
    return PhotoPage(items=items, total=total, limit=limit, offset=offset, next_cursor=next_cursor)


def _narrowing(
    *,
    generated: bool | None,
    favorite: bool | None,
    taken_after: date | None,
    taken_before: date | None,
    tool: str,
    model: str,
    seed: int | None,
) -> Q:
    """photo_list's filters but the search, as one condition: a stack's alternatives must meet it too."""
    condition = Q()
    if generated is not None:
        condition &= Q(is_generated=generated)
    if favorite is not None:
        condition &= Q(is_favorite=favorite)
    zone = timezone.get_current_timezone()
    if taken_after is not None:
        condition &= Q(taken_at__gte=datetime.combine(taken_after, time.min, tzinfo=zone))
    if taken_before is not None:
        condition &= Q(taken_at__lt=datetime.combine(taken_before + timedelta(days=1), time.min, tzinfo=zone))
    if tool:
        condition &= Q(generation_params__source=tool)
    if model:
        condition &= Q(model_name=model)
    if seed is not None:
        condition &= Q(seed=seed)
    return condition


def _stacked(queryset: QuerySet[Photo], matching: Q) -> QuerySet[Photo]:
    """`queryset` with a step's alternatives (those that are live and `matching`, as the list's own rows) folded:
    the chosen one stands alone; while none is, the first (by its place in the batch) stands for them all,
    annotated `stack_size` (None for every other photo). Other photos pass unchanged.

    A filter, not a grouping, so the keyset cursor and the jump to a day work as before: each row is kept or
    not on its own, by index lookups of its alternative (photo_id) and its step's others (step_id), so a page
    costs about the rows it passes over. Lookups, not a join: joined, PostgreSQL hashes the whole alternatives
    table for a page near the end of the list (measured in bench/stacks.py). `stack_step` is the step's id
    (None for a photo of no step).
    """
    # The alternatives' model by the reverse relation: photos does not import the generation app.
    alternatives = Photo._meta.get_field("step_alternative").related_model._default_manager
    own = alternatives.filter(photo_id=OuterRef("pk")).order_by()
    queryset = queryset.annotate(
        stack_step=Subquery(own.values("step_id")),
        stack_index=Subquery(own.values("index")),
        stack_chosen=Subquery(own.values("selected")),
    )
    siblings = Photo.objects.filter(matching, deleted_at=None, step_alternative__step_id=OuterRef("stack_step"))
    others = siblings.exclude(pk=OuterRef("pk"))
    chosen = others.filter(step_alternative__selected=True)
    earlier = others.filter(
        Q(step_alternative__index__lt=OuterRef("stack_index"))
        | Q(step_alternative__index=OuterRef("stack_index"), pk__lt=OuterRef("pk"))
    )
    size = siblings.order_by().annotate(count=Func(F("pk"), function="COUNT")).values("count")
    return queryset.filter(Q(stack_step=None) | Q(stack_chosen=True) | (~Exists(chosen) & ~Exists(earlier))).annotate(
        stack_size=Case(
            When(stack_step__isnull=False, stack_chosen=False, then=Subquery(size)), output_field=IntegerField()
        )
    )


def photo_get(*, photo_id: uuid.UUID | str, owner: Owner, include_deleted: bool = False) -> Photo:
    """One of the owner's photos; any other id, another account's photo included, is not found."""
    queryset = owned_photos(owner) if include_deleted else live_photos(owner=owner)
    try:
        return queryset.get(pk=photo_id)
    except (Photo.DoesNotExist, ValidationError):
        raise NotFound("This photo does not exist.", details={"photo_id": str(photo_id)}) from None


def photo_camera_details(*, photo: Photo) -> embedded.CameraDetails:
    """The camera, exposure and location recorded in the photo's original (for its owner's eyes only)."""
    if not photo.is_available:
        return embedded.CameraDetails()
    try:
        with storage.opened(photo.local_storage_path) as handle:
            return embedded.camera_details(handle)
    except (FileNotFoundError, storage.StoreUnavailable):
        # The details are extra: the lightbox opens without them.
        return embedded.CameraDetails()


def owned_photo_ids(*, owner: Owner, photo_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """`photo_ids` without repeats, once every one is checked to be the owner's (trashed ones included);
    otherwise InvalidInput naming those that are not, so that a bulk action does nothing to the others either."""
    wanted = list(dict.fromkeys(photo_ids))
    existing = set(owned_photos(owner).filter(pk__in=wanted).values_list("pk", flat=True))
    if missing := [str(pk) for pk in wanted if pk not in existing]:
        raise InvalidInput("Some of these photos do not exist.", code="unknown_photos", details={"photo_ids": missing})
    return wanted


def available_photo_ids(*, owner: Owner, photo_ids: Sequence[str]) -> set[str]:
    """Those of `photo_ids` that are the owner's live photos downloaded from InvokeAI, to show as chosen in a form;
    anything else given (not an id, someone else's, trashed) is left out rather than refused."""
    wanted = set()
    for raw in photo_ids:
        try:
            wanted.add(uuid.UUID(str(raw)))
        except ValueError:
            continue
    if not wanted:
        return set()
    found = live_photos(owner=owner).filter(available_q(), pk__in=wanted).values_list("pk", flat=True)
    return {str(pk) for pk in found}


def photos_for_download(*, owner: Owner, photo_ids: Sequence[uuid.UUID]) -> list[Photo]:
    """The owner's photos to put in a ZIP, in timeline order (oldest first); all of them must be the owner's
    and downloaded from InvokeAI already, or none is sent."""
    wanted = owned_photo_ids(owner=owner, photo_ids=photo_ids)
    photos = list(
        owned_photos(owner)
        .filter(pk__in=wanted)
        .only("id", "filename", "local_storage_path", "taken_at", "retrieval_status")
        .order_by("taken_at", "id")
    )
    if pending := [str(photo.pk) for photo in photos if not photo.is_available]:
        raise InvalidInput(
            "Some of these photos have not been downloaded from InvokeAI yet.",
            code="not_retrieved",
            details={"photo_ids": pending},
        )
    return photos


def album_names_matching(*, owner: Owner, q: str) -> list[tuple[uuid.UUID, str]]:
    """(id, name) of the owner's albums with photos whose name has every word of `q` (in any case). Reached
    through the photos' album entries, as photos never imports albums."""
    words = search.terms(q)
    if not words:
        return []
    condition = Q()
    for word in words:
        condition &= Q(album_entries__album__name__icontains=word)
    rows = (
        live_photos(owner=owner).filter(condition).values_list("album_entries__album_id", "album_entries__album__name")
    )
    return sorted(set(rows), key=lambda row: row[1].lower())[:20]


def photo_months(
    *, owner: Owner, generated: bool | None = None, favorite: bool | None = None
) -> list[tuple[date, int]]:
    """(first day of the month, photos taken in it) for every month of the owner's timeline, in TIME_ZONE.

    One grouped scan of the owner's live photos (measured at 100,000 in bench/gallery_list.py); the gallery
    asks for it only when its jump list is opened.
    """
    queryset = live_photos(owner=owner)
    if generated is not None:
        queryset = queryset.filter(is_generated=generated)
    if favorite is not None:
        queryset = queryset.filter(is_favorite=favorite)
    rows = queryset.annotate(month=TruncMonth("taken_at")).order_by().values_list("month").annotate(count=Count("id"))
    return [(timezone.localdate(month) if isinstance(month, datetime) else month, count) for month, count in rows]


MAX_DUPLICATE_GROUPS = 100


def duplicate_groups(*, owner: Owner) -> list[list[Photo]]:
    """The owner's live photos that have the same bytes as another, in groups, the oldest added first in each
    (the first MAX_DUPLICATE_GROUPS groups: once those are resolved, the next ones show)."""
    checksums = list(
        live_photos(owner=owner)
        .exclude(checksum="")
        .values("checksum")
        .annotate(copies=Count("id"))
        .filter(copies__gt=1)
        .order_by("checksum")
        .values_list("checksum", flat=True)[:MAX_DUPLICATE_GROUPS]
    )
    groups: dict[str, list[Photo]] = {checksum: [] for checksum in checksums}
    for photo in live_photos(owner=owner).filter(checksum__in=checksums).order_by("created_at", "id"):
        groups[photo.checksum].append(photo)
    return list(groups.values())
