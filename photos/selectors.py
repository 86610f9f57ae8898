"""Reads of the photo store: filtered, paginated lists (offset or keyset cursor) and single photos."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

from gallery_project.errors import InvalidInput, NotFound

from .models import Photo, PhotoTally

SORTS = ("newest", "oldest")
MAX_LIMIT = 200


@dataclass(frozen=True)
class PhotoPage:
    items: list[Photo]
    total: int
    limit: int
    offset: int
    next_cursor: str | None


def encode_cursor(photo: Photo) -> str:
    raw = json.dumps([photo.created_at.isoformat(), photo.id.hex]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, pk = json.loads(raw)
        return datetime.fromisoformat(created), uuid.UUID(hex=pk)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise InvalidInput("The cursor is not one this server handed out.", code="invalid_cursor") from None


def _after_cursor(queryset: QuerySet[Photo], cursor: str, sort: str) -> QuerySet[Photo]:
    created, pk = decode_cursor(cursor)
    # The first condition bounds an index range scan; the OR only breaks ties on the boundary timestamp.
    # Written as a bare OR, PostgreSQL would walk the index from the start and filter, making deep pages slow.
    if sort == "newest":
        return queryset.filter(Q(created_at__lte=created), Q(created_at__lt=created) | Q(id__lt=pk))
    return queryset.filter(Q(created_at__gte=created), Q(created_at__gt=created) | Q(id__gt=pk))


def _tallied_total(*, deleted: bool, generated: bool | None) -> int | None:
    """The total from the trigger-kept tallies, or None when they don't cover this filter."""
    if deleted and generated is not None:
        return None
    tallies = dict(PhotoTally.objects.values_list("name", "count"))
    if deleted:
        return tallies.get(PhotoTally.TRASH, 0)
    live, live_generated = tallies.get(PhotoTally.LIVE, 0), tallies.get(PhotoTally.LIVE_GENERATED, 0)
    if generated is None:
        return live
    return live_generated if generated else live - live_generated


def live_photos() -> QuerySet[Photo]:
    return Photo.objects.filter(deleted_at=None)


def photo_list(
    *,
    generated: bool | None = None,
    sort: str = "newest",
    limit: int = 50,
    offset: int = 0,
    cursor: str | None = None,
    deleted: bool = False,
    queryset: QuerySet[Photo] | None = None,
) -> PhotoPage:
    """A page of photos, newest or oldest first; `cursor` continues after a page at constant cost."""
    if sort not in SORTS:
        raise InvalidInput(f"sort must be one of {', '.join(SORTS)}.", code="invalid_sort")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}.", code="invalid_limit")
    if offset < 0:
        raise InvalidInput("offset cannot be negative.", code="invalid_offset")
    total = None
    if queryset is None:
        queryset = Photo.objects.filter(deleted_at__isnull=False) if deleted else live_photos()
        total = _tallied_total(deleted=deleted, generated=generated)
    if generated is not None:
        queryset = queryset.filter(is_generated=generated)
    if total is None:
        total = queryset.count()
    ordering = ("-created_at", "-id") if sort == "newest" else ("created_at", "id")
    page = queryset.order_by(*ordering)
    if cursor:
        page = _after_cursor(page, cursor, sort)
        offset = 0
    items = list(page[offset : offset + limit + 1])
    has_more = len(items) > limit
    items = items[:limit]
    return PhotoPage(
        items=items,
        total=total,
        limit=limit,
        offset=offset,
        next_cursor=encode_cursor(items[-1]) if has_more else None,
    )


def photo_get(*, photo_id: uuid.UUID | str, include_deleted: bool = False) -> Photo:
    queryset = Photo.objects.all() if include_deleted else live_photos()
    try:
        return queryset.get(pk=photo_id)
    except (Photo.DoesNotExist, ValidationError):
        raise NotFound("This photo does not exist.", details={"photo_id": str(photo_id)}) from None
