"""Writes to albums and share links (the spec's AlbumService and section 7.2).

Each takes the acting user as `owner` and works only on that account's albums, photos and links: anything
else is not found, and an album or a link never refers to another account's photo.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone

from backends import manager
from backends.invokeai.client import UPLOAD_FORMATS, Board, InvokeAIClient
from gallery_project.errors import AppError, Conflict, InvalidInput, NotFound, TooManyRequests
from gallery_project.permissions import Owner, owned_by
from photos import selectors as photos_selectors
from photos import services as photo_services
from photos import storage
from photos.models import Photo
from photos.selectors import live_photos, photo_get
from workflows import services as workflow_services

from .models import UNCATEGORIZED, Album, AlbumPhoto, ShareLink, SharePasswordFailures
from .selectors import (
    live_entries,
    share_link_downloads_left_q,
    share_link_live_q,
    share_link_unspent_q,
)

# One answer for every link that does not work, whatever the reason, so a visitor learns nothing from it.
SHARE_NOT_FOUND = "This link does not exist or is no longer shared."
SHARE_PASSWORD_MIN_LENGTH = 4
# A view or download limit beyond this is no limit at all, and past 2**31 the database column overflows.
SHARE_LIMIT_MAX = 1_000_000
# The choices the share dialog offers, and the API's `expires_in`: (label, lifetime or None for no expiry).
EXPIRY_PRESETS: dict[str, tuple[str, timedelta | None]] = {
    "1h": ("1 hour", timedelta(hours=1)),
    "1d": ("1 day", timedelta(days=1)),
    "7d": ("7 days", timedelta(days=7)),
    "30d": ("30 days", timedelta(days=30)),
    "never": ("Never", None),
}
DEFAULT_EXPIRY = "7d"


# --- Albums ---


def _album(album_id: uuid.UUID | str, *, owner: Owner, lock: bool = True) -> Album:
    """The owner's album, by default locked until the transaction ends: writes to one album's entries happen
    one at a time, so two concurrent appends cannot take the same position."""
    albums = owned_by(Album.objects.select_for_update() if lock else Album.objects.all(), owner)
    try:
        return albums.get(pk=album_id)
    except (Album.DoesNotExist, ValidationError):
        raise NotFound("This album does not exist.", details={"album_id": str(album_id)}) from None


def _validated_save(album: Album) -> Album:
    try:
        album.full_clean()
    except ValidationError as exc:
        raise InvalidInput(exc.messages[0], code="invalid_album", details=exc.message_dict) from None
    try:
        with transaction.atomic():
            album.save()
    except IntegrityError:
        # Another request took the name between the check above and this save.
        raise Conflict("An album with this name already exists.", code="album_name_taken") from None
    return album


def _touch(album_id: uuid.UUID | str) -> None:
    Album.objects.filter(pk=album_id).update(updated_at=timezone.now())


def album_create(*, owner: User, name: str, description: str = "") -> Album:
    return _validated_save(Album(owner=owner, name=name, description=description))


def album_update(
    *,
    album_id: uuid.UUID | str,
    owner: Owner,
    name: str | None = None,
    description: str | None = None,
    is_archived: bool | None = None,
) -> Album:
    """Rename, describe, archive or unarchive an album; arguments left as None are kept."""
    with transaction.atomic():
        album = _album(album_id, owner=owner)
        if name is not None:
            album.name = name
        if description is not None:
            album.description = description
        if is_archived is not None:
            album.is_archived = is_archived
        return _validated_save(album)


def album_delete(*, album_id: uuid.UUID | str, owner: Owner) -> None:
    """Delete an album and its share links; its photos stay in the gallery."""
    with transaction.atomic():
        _album(album_id, owner=owner).delete()


def _unique(photo_ids: Sequence[uuid.UUID | str]) -> list[uuid.UUID]:
    try:
        return list(dict.fromkeys(uuid.UUID(str(pk)) for pk in photo_ids))
    except ValueError:
        raise InvalidInput("photo_ids must be photo ids.", code="invalid_photo_ids") from None


def album_add_photos(*, album_id: uuid.UUID | str, owner: Owner, photo_ids: Sequence[uuid.UUID | str]) -> int:
    """Append photos after the album's last one, in the given order; photos already there stay where they are.

    Returns how many were added. Unknown or trashed photos (or another account's) are refused, and nothing is
    added.
    """
    wanted = _unique(photo_ids)
    with transaction.atomic():
        album = _album(album_id, owner=owner)
        existing = set(live_photos(owner=owner).filter(pk__in=wanted).values_list("pk", flat=True))
        if missing := [str(pk) for pk in wanted if pk not in existing]:
            raise InvalidInput(
                "Some of these photos do not exist or are in the trash.",
                code="unknown_photos",
                details={"photo_ids": missing},
            )
        present = set(album.entries.filter(photo_id__in=wanted).values_list("photo_id", flat=True))
        new = [pk for pk in wanted if pk not in present]
        # Trashed photos keep their position, so new photos go after them too and a restore fits back in.
        last = album.entries.aggregate(last=Max("position"))["last"]
        start = 0 if last is None else last + 1
        now = timezone.now()
        AlbumPhoto.objects.bulk_create(
            AlbumPhoto(album=album, photo_id=pk, position=start + index, added_at=now) for index, pk in enumerate(new)
        )
        if new:
            _touch(album.pk)
    return len(new)


def album_remove_photos(*, album_id: uuid.UUID | str, owner: Owner, photo_ids: Sequence[uuid.UUID | str]) -> int:
    """Take photos out of an album (they stay in the gallery); photos not in it are ignored."""
    wanted = _unique(photo_ids)
    with transaction.atomic():
        album = _album(album_id, owner=owner)
        removed, _ = album.entries.filter(photo_id__in=wanted).delete()
        if album.cover_photo_id in wanted:
            album.cover_photo = None
            album.save(update_fields=["cover_photo", "updated_at"])
        elif removed:
            _touch(album.pk)
    return removed


def album_reorder(*, album_id: uuid.UUID | str, owner: Owner, photo_ids: Sequence[uuid.UUID | str]) -> None:
    """Put the album's photos in the given order, which must name each of its live photos once.

    Photos in the trash keep their slot among the others, so restoring one puts it back where it was.
    """
    order = _unique(photo_ids)
    if len(order) != len(photo_ids):
        raise InvalidInput("photo_ids names a photo twice.", code="duplicate_photo_ids")
    with transaction.atomic():
        album = _album(album_id, owner=owner)
        entries = list(
            album.entries.select_related("photo")
            .only("id", "photo_id", "position", "photo__deleted_at")
            .order_by("position", "id")
        )
        live = {entry.photo_id for entry in entries if entry.photo.deleted_at is None}
        if set(order) != live:
            raise Conflict(
                "The order must name every photo of the album exactly once; the album may have changed "
                "since it was loaded.",
                code="album_changed",
                details={
                    "missing": sorted(str(pk) for pk in live - set(order)),
                    "unexpected": sorted(str(pk) for pk in set(order) - live),
                },
            )
        by_photo = {entry.photo_id: entry for entry in entries}
        next_live = iter(order)
        placed = [by_photo[next(next_live)] if entry.photo_id in live else entry for entry in entries]
        changed = []
        for position, entry in enumerate(placed):
            if entry.position != position:
                entry.position = position
                changed.append(entry)
        AlbumPhoto.objects.bulk_update(changed, ["position"], batch_size=500)
        _touch(album.pk)


def album_set_cover(*, album_id: uuid.UUID | str, owner: Owner, photo_id: uuid.UUID | str | None) -> Album:
    """Choose the album's cover among its live photos; None goes back to its first photo."""
    with transaction.atomic():
        album = _album(album_id, owner=owner)
        if photo_id is not None and not live_entries().filter(album=album, photo_id=photo_id).exists():
            raise InvalidInput(
                "The cover must be a photo of the album.",
                code="cover_not_in_album",
                details={"photo_id": str(photo_id)},
            )
        album.cover_photo_id = photo_id
        album.save(update_fields=["cover_photo", "updated_at"])
    return album


def album_move_photos(
    *,
    owner: Owner,
    photo_ids: Sequence[uuid.UUID | str],
    source_album_id: uuid.UUID | str | None,
    target_album_id: uuid.UUID | str | None,
) -> None:
    """Move photos from one album to another in one transaction (InvokeAI's move_image_to_board).

    None stands for Uncategorized: moving from it only adds to the target, and moving to it takes the photos
    out of every album, so they do show up under Uncategorized afterwards.
    """
    if str(source_album_id) == str(target_album_id):
        raise InvalidInput("The photos are already there.", code="same_album")
    wanted = _unique(photo_ids)
    with transaction.atomic():
        if target_album_id is None:
            leaving = owned_by(AlbumPhoto.objects.filter(photo_id__in=wanted), owner, via="album__owner")
            album_ids = {str(pk) for pk in leaving.values_list("album_id", flat=True)}
        else:
            album_ids = {str(target_album_id)}
        if source_album_id is not None:
            album_ids.add(str(source_album_id))
        # Lock every album involved first, always in the same order, so two opposite moves cannot deadlock.
        for album_id in sorted(album_ids):
            _album(album_id, owner=owner)
        if target_album_id is None:
            for album_id in sorted(album_ids):
                album_remove_photos(album_id=album_id, owner=owner, photo_ids=wanted)
            return
        album_add_photos(album_id=target_album_id, owner=owner, photo_ids=wanted)
        if source_album_id is not None:
            album_remove_photos(album_id=source_album_id, owner=owner, photo_ids=wanted)


# --- Share links ---


@dataclass(frozen=True)
class ShareLinkCreated:
    link: ShareLink
    # The only time the token exists outside the visitor's hands: it is not stored, only its hash.
    token: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def generate_share_token() -> str:
    """32 random bytes, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def share_link_create(
    *,
    owner: User,
    album_id: uuid.UUID | str | None = None,
    photo_id: uuid.UUID | str | None = None,
    expires_at: datetime | None = None,
    max_views: int | None = None,
    max_downloads: int | None = None,
    allow_download: bool = False,
    show_details: bool = False,
    password: str = "",
) -> ShareLinkCreated:
    """Create a link to one of the owner's albums or live photos; the returned token is never shown again."""
    if (album_id is None) == (photo_id is None):
        raise InvalidInput("A link shares either an album or a photo.", code="invalid_share_target")
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInput("The expiry must be in the future.", code="invalid_expiry")
    for name, limit in (("max_views", max_views), ("max_downloads", max_downloads)):
        if limit is not None and not 1 <= limit <= SHARE_LIMIT_MAX:
            raise InvalidInput(
                f"{name} must be between 1 and {SHARE_LIMIT_MAX:,}, or empty for no limit.", code="invalid_limit"
            )
    if max_downloads is not None and not allow_download:
        raise InvalidInput("A download limit needs downloads to be allowed.", code="invalid_limit")
    if password and len(password) < SHARE_PASSWORD_MIN_LENGTH:
        raise InvalidInput(
            f"The password must have at least {SHARE_PASSWORD_MIN_LENGTH} characters.", code="weak_password"
        )
    album = _album(album_id, owner=owner, lock=False) if album_id is not None else None
    photo = photo_get(photo_id=photo_id, owner=owner) if photo_id is not None else None
    token = generate_share_token()
    link = ShareLink.objects.create(
        owner=owner,
        album=album,
        photo=photo,
        token_hash=token_hash(token),
        expires_at=expires_at,
        max_views=max_views,
        max_downloads=max_downloads,
        allow_download=allow_download,
        show_details=show_details,
        password=make_password(password) if password else "",
    )
    return ShareLinkCreated(link=link, token=token)


def share_link_revoke(*, link_id: uuid.UUID | str, owner: Owner) -> ShareLink:
    """Revoke one of the owner's links at once: its page and every image URL it served answer 404 from now on."""
    try:
        link = owned_by(ShareLink.objects.select_related("album", "photo"), owner).get(pk=link_id)
    except (ShareLink.DoesNotExist, ValidationError):
        raise NotFound("This share link does not exist.", details={"share_id": str(link_id)}) from None
    if link.revoked_at is None:
        link.revoked_at = timezone.now()
        link.save(update_fields=["revoked_at"])
    return link


def share_link_resolve(*, token: str) -> ShareLink:
    """The link a visitor's token names, while it is neither revoked nor expired and its target is live.

    A used-up link is returned too: whether a used-up link may still serve a request depends on who asks
    (see albums.public). Every failure raises the same NotFound.
    """
    digest = token_hash(token)
    link = ShareLink.objects.select_related("album", "photo").filter(token_hash=digest).first()
    # The lookup is by hash, so a visitor cannot steer it byte by byte; comparing again in constant time
    # costs nothing and keeps the check honest if the lookup ever changes.
    if link is None or not hmac.compare_digest(link.token_hash, digest):
        raise NotFound(SHARE_NOT_FOUND, code="share_not_found")
    if link.status_at(timezone.now()) in (ShareLink.Status.REVOKED, ShareLink.Status.EXPIRED):
        raise NotFound(SHARE_NOT_FOUND, code="share_not_found")
    if link.photo is not None and link.photo.deleted_at is not None:
        raise NotFound(SHARE_NOT_FOUND, code="share_not_found")
    return link


def share_link_count_view(*, link_id: uuid.UUID) -> bool:
    """Count one view if the link still has one; False means it is used up (or was revoked meanwhile).

    One conditional UPDATE: concurrent views are each counted once and never pass the limit.
    """
    updated = ShareLink.objects.filter(share_link_live_q(timezone.now()), share_link_unspent_q(), pk=link_id).update(
        view_count=F("view_count") + 1
    )
    return updated == 1


def share_link_count_download(*, link_id: uuid.UUID) -> bool:
    """Count one download of an original if downloads are allowed and some are left."""
    updated = ShareLink.objects.filter(
        share_link_live_q(timezone.now()), share_link_downloads_left_q(), pk=link_id, allow_download=True
    ).update(download_count=F("download_count") + 1)
    return updated == 1


def _window_start(now: datetime) -> datetime:
    seconds = settings.SHARE_PASSWORD_WINDOW_SECONDS
    return datetime.fromtimestamp(int(now.timestamp()) // seconds * seconds, tz=now.tzinfo)


def _client_key(client: str) -> str:
    """Who is guessing: an IPv4 address, or an IPv6 client's /64, which one subscriber gets whole (counting
    single IPv6 addresses would give every guesser billions of fresh ones)."""
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return client[:45]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def share_link_check_password(*, link: ShareLink, password: str, client: str) -> bool:
    """Check a visitor's password for a link, refusing with 429 after too many wrong ones.

    Wrong passwords are counted in three counters per window: this link from this client, this client over
    all links, and this link from everyone. The first two lock out only the guesser, so a stranger cannot lock
    the real recipient out; the third, far higher, is a backstop against guessing from many addresses.

    Each attempt first takes a slot in every counter with an atomic increment, and is refused if any is then
    over its limit; a refused attempt (the password was not even checked) and a right password give their
    slots back. Counting before checking keeps concurrent guesses from slipping past a limit together, and
    giving refused slots back keeps a locked-out guesser from filling the other counters by insisting.
    """
    now = timezone.now()
    window = _window_start(now)
    who = _client_key(client)
    limits = {
        f"link:{link.pk}:client:{who}": settings.SHARE_PASSWORD_FAILURES_PER_LINK_AND_CLIENT,
        f"client:{who}": settings.SHARE_PASSWORD_FAILURES_PER_CLIENT,
        f"link:{link.pk}": settings.SHARE_PASSWORD_FAILURES_PER_LINK,
    }
    counters = SharePasswordFailures.objects.filter(window_start=window, key__in=limits)
    for key in limits:
        SharePasswordFailures.objects.get_or_create(key=key, window_start=window)
    counters.update(failures=F("failures") + 1)
    counts = dict(counters.values_list("key", "failures"))
    if any(counts[key] > limit for key, limit in limits.items()):
        counters.update(failures=F("failures") - 1)
        window_end = window + timedelta(seconds=settings.SHARE_PASSWORD_WINDOW_SECONDS)
        # Rounded up: in the window's last second, rounding down would tell the client to retry at once.
        retry = max(1, math.ceil((window_end - now).total_seconds()))
        minutes = math.ceil(retry / 60)
        raise TooManyRequests(
            f"Too many wrong passwords. Try again in {minutes} minute{'s' if minutes > 1 else ''}.",
            details={"retry_after": retry},
        )
    if check_password(password, link.password):
        counters.update(failures=F("failures") - 1)
        return True
    SharePasswordFailures.objects.filter(window_start__lt=window).delete()
    return False


# --- InvokeAI boards ---
#
# A board is InvokeAI's album. Importing one makes (or finds) the album of that board and lands each of its
# images as a generated photo, downloaded in full with InvokeAI's metadata and a recipe read from it; images are
# matched by their InvokeAI name, so importing again adds only what is new. The "none" board (InvokeAI's
# uncategorized images) maps to Uncategorized: its images join no album. Sending goes the other way: each photo is
# uploaded to InvokeAI unless InvokeAI still has it, then moved to the board with POST /api/v1/board_images/.

NONE_BOARD = "none"
# The recipe fields read from InvokeAI's core metadata, when present.
_RECIPE_KEYS = ("width", "height", "steps", "cfg_scale", "scheduler", "guidance", "strength", "generation_mode")


@dataclass
class BoardImport:
    albums: int = 0
    added: int = 0
    already_there: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def _board_album(owner: User, board: Board) -> Album:
    """The owner's album of `board`, made with the board's name (suffixed if the owner has that name already)."""
    album = owned_by(Album.objects.all(), owner).filter(invokeai_board_id=board.board_id).first()
    if album is not None:
        return album
    name = board.name.strip()[:180] or "InvokeAI board"
    taken = {existing.casefold() for existing in owned_by(Album.objects.all(), owner).values_list("name", flat=True)}
    candidate, number = name, 1
    while candidate.casefold() in taken or candidate.casefold() == UNCATEGORIZED.casefold():
        number += 1
        candidate = f"{name} (InvokeAI {number})" if number > 2 else f"{name} (InvokeAI)"
    return Album.objects.create(owner=owner, name=candidate, invokeai_board_id=board.board_id)


def _recipe(metadata: dict[str, Any] | None) -> dict[str, Any]:
    metadata = metadata or {}
    model: dict[str, Any] = metadata["model"] if isinstance(metadata.get("model"), dict) else {}
    seed = metadata.get("seed")
    return {
        "prompt": str(metadata.get("positive_prompt") or "")[:5000],
        "negative_prompt": str(metadata.get("negative_prompt") or "")[:5000],
        "params": {key: metadata[key] for key in _RECIPE_KEYS if isinstance(metadata.get(key), str | int | float)},
        "seed": seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        "model_key": str(model.get("key") or "")[:255],
        "model_hash": str(model.get("hash") or "")[:255],
        "model_name": str(model.get("name") or "")[:255],
    }


def _board_image_import(client: InvokeAIClient, owner: User, name: str, board: str) -> tuple[Photo | None, bool]:
    """The owner's photo of InvokeAI image `name`, imported now if new: (photo, added). None if another account
    has imported it already (an InvokeAI image is one photo)."""
    existing = Photo.objects.filter(invoke_id=name).first()
    if existing is not None:
        return (existing, False) if existing.owner_id == owner.pk else (None, False)
    record = client.image_record(name)
    if record is None:
        raise NotFound(f"InvokeAI no longer has image {name}.", code="image_missing", details={"image_name": name})
    recipe = _recipe(client.image_metadata(name))
    params = {**recipe.pop("params"), "invokeai_board": board}
    if record.has_workflow:
        document = client.image_workflow(name)
        found = workflow_services.workflow_from_image(owner=owner, document=document) if document else None
        if found is not None:
            # As on a photo the studio ran a workflow for: "Open in the studio" brings its form back.
            workflow, values = found
            params.update(workflow=workflow.name, workflow_id=workflow.pk, values=values)
    try:
        thumbnail: bytes | None = client.thumbnail(name)
    except AppError:
        thumbnail = None  # one is made from the image instead
    prepared = photo_services.generated_image_prepare(data=client.image(name), name=name, thumbnail=thumbnail)
    photo, created = photo_services.generated_photo_register(owner_id=owner.pk, invoke_id=name, params=params, **recipe)
    if created:
        relative = storage.imported_path(photo.pk, timezone.localdate())
        photo_services.generated_photo_store(photo_id=photo.pk, image=prepared, relative=relative)
        photo.refresh_from_db()
    return photo, created


def boards_import(
    *,
    owner: User,
    boards: Sequence[str] | None = None,
    sync: bool = False,
    progress: Callable[[str], None] | None = None,
) -> BoardImport:
    """Import InvokeAI's boards as albums of `owner`: all of them ("none" included), or those `boards` names (by
    id or name). With `sync`, the albums are kept in sync: the board sync imports their new images."""
    client = manager.invokeai_client()
    available = [*client.list_boards(), Board(board_id=NONE_BOARD, name=UNCATEGORIZED)]
    chosen = available
    if boards is not None:

        def matches(board: Board, wanted: str) -> bool:
            return wanted == board.board_id or wanted.casefold() == board.name.casefold()

        chosen = [board for board in available if any(matches(board, wanted) for wanted in boards)]
        unknown = sorted(wanted for wanted in boards if not any(matches(board, wanted) for board in available))
        if unknown:
            raise NotFound(
                f"InvokeAI at {client.base_url} has no board {', '.join(unknown)}.",
                code="board_not_found",
                details={"boards": unknown},
            )
    result = BoardImport()
    for board in chosen:
        names = client.board_image_names(board.board_id)
        album = None if board.board_id == NONE_BOARD else _board_album(owner, board)
        if album is not None:
            result.albums += 1
            if sync and not album.invokeai_sync:
                Album.objects.filter(pk=album.pk).update(invokeai_sync=True)
        photo_ids = []
        for name in names:
            if progress:
                progress(f"{board.name}: {name}")
            try:
                photo, added = _board_image_import(client, owner, name, board.name)
            except AppError as exc:
                result.failed += 1
                result.errors.append(f"{name}: {exc.message}")
                continue
            if photo is None:
                result.failed += 1
                result.errors.append(f"{name}: another account has imported this image.")
                continue
            result.added += added
            result.already_there += not added
            if photo.is_available:
                photo_ids.append(photo.pk)
        if album is not None and photo_ids:
            album_add_photos(album_id=album.pk, owner=owner, photo_ids=photo_ids)
    return result


def boards_sync() -> int:
    """Import what is new on the boards of albums kept in sync; return how many images were added."""
    added = 0
    synced = Album.objects.filter(invokeai_sync=True).exclude(invokeai_board_id="").select_related("owner")
    by_owner: dict[int, tuple[User, list[str]]] = {}
    for album in synced:
        if album.owner is not None:
            by_owner.setdefault(album.owner.pk, (album.owner, []))[1].append(album.invokeai_board_id)
    for owner, board_ids in by_owner.values():
        added += boards_import(owner=owner, boards=board_ids).added
    return added


@dataclass(frozen=True)
class BoardSend:
    board_id: str
    board_name: str
    sent: int
    uploaded: int


def board_send(
    *,
    owner: Owner,
    album_id: uuid.UUID | str | None = None,
    photo_ids: Sequence[uuid.UUID | str] = (),
    board_id: str = "",
    board_name: str = "",
) -> BoardSend:
    """Put an album's photos (or a selection) on an InvokeAI board: `board_id`, a new board `board_name`, or else
    the album's own board (made with its name the first time). Photos InvokeAI still has are not uploaded again."""
    client = manager.invokeai_client()
    album = _album(album_id, owner=owner, lock=False) if album_id else None
    if album is not None:
        photos = list(
            live_photos(owner=owner)
            .filter(album_entries__album=album)
            .order_by("album_entries__position")
            .filter(photos_selectors.available_q())
        )
    else:
        wanted = _unique(photo_ids)
        photos = list(live_photos(owner=owner).filter(pk__in=wanted).filter(photos_selectors.available_q()))
        if len(photos) != len(wanted):
            raise InvalidInput("Some of these photos do not exist, are in the trash or are not downloaded yet.")
    boards = {board.board_id: board for board in client.list_boards()}
    if board_id:
        if board_id not in boards:
            raise NotFound(f"InvokeAI has no board {board_id}.", code="board_not_found", details={"board_id": board_id})
        board = boards[board_id]
    elif board_name.strip():
        board = client.create_board(board_name.strip())
    elif album is not None:
        board = boards.get(album.invokeai_board_id) or client.create_board(album.name)
    else:
        raise InvalidInput("Choose a board, or name a new one.", code="invalid_parameter")
    if album is not None and album.invokeai_board_id != board.board_id:
        Album.objects.filter(pk=album.pk).update(invokeai_board_id=board.board_id)
    sent = uploaded = 0
    for photo in photos:
        name = photo.invoke_id
        if not name or client.image_record(name) is None:
            # InvokeAI reads no HEIC: such a photo goes as a JPEG copy, turned as the gallery shows it.
            data, ext = photo_services.photo_file_in(photo=photo, formats=UPLOAD_FORMATS)
            name = client.upload_image(data=data, filename=f"{photo.pk}.{ext}", category="user").image_name
            # Remembered, so the next send finds the image on the server instead of uploading it again.
            Photo.objects.filter(pk=photo.pk).update(invoke_id=name)
            uploaded += 1
        if client.add_image_to_board(board_id=board.board_id, image_name=name):
            sent += 1
    return BoardSend(board_id=board.board_id, board_name=board.name, sent=sent, uploaded=uploaded)
