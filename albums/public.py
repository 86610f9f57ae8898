"""The public pages of share links, under /s/<token>/: no login, and nothing beyond what the link shares.

Every URL carries the token and resolves it again, so revoking or expiring a link closes all of them at once,
image URLs included. Every failure answers the same 404 page. What is counted:

- a view is one load of the share page (`/s/<token>/`, or a photo's page opened directly); the lightbox,
  more grid pages and the images of a page already open are part of that view;
- a download is one original file sent in full (`.../file`; a 304 sends nothing and is not counted).

When a link's last view or download is used, the browsers that opened its page before may keep loading that
page's images and lightbox for SHARE_GRACE_SECONDS; nobody can open the page again, and every other request
answers 404. Without that, the last permitted view would show a grid of broken images.

A password, once given, unlocks the link for that browser session only, and is needed for every URL of the
link, images included: a copied image URL does not get around it. Until then every photo URL of the link answers
the same whether or not the photo is in it (the form for a page, 404 for the rest), so the form reveals nothing
about what the link shares.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from gallery_project.clients import client_address
from gallery_project.errors import AppError, NotFound, TooManyRequests
from gallery_project.http import HtmxRequest
from photos import metadata
from photos import services as photo_services
from photos.api import serve_photo_file
from photos.selectors import photo_list
from photos.views import PAGE_SIZE

from . import selectors, services
from .models import ShareLink

logger = logging.getLogger(__name__)

_SESSION_KEY = "share_links"
# Revalidate on every use (a 304 while the link works), so a revoked link stops serving even from caches.
_PUBLIC_CACHE = "private, no-cache"


def _public(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Open to anyone; any 404 becomes the one share-not-found page; privacy headers on every answer."""

    @login_not_required
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponseBase:
        try:
            response = view(request, *args, **kwargs)
        except (Http404, AppError) as exc:
            if isinstance(exc, AppError) and exc.status != 404:
                raise
            response = _gone(request)
        # The token is in every URL here: it must never reach another site. "same-origin" keeps it at home, and
        # unlike "no-referrer" it lets browsers send the Origin header that CSRF checks the password form by
        # (Chromium sends "Origin: null" under no-referrer, and Django refuses that).
        response["Referrer-Policy"] = "same-origin"
        response["X-Robots-Tag"] = "noindex, nofollow"
        if "Cache-Control" not in response:
            response["Cache-Control"] = "private, no-store"
        return response

    return wrapper


def _gone(request: HttpRequest) -> HttpResponse:
    """The one answer for a link that does not work, for someone who cannot use the rest of the app."""
    return render(request, "albums/public_gone.html", {"message": services.SHARE_NOT_FOUND}, status=404)


@_public
def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Any other URL under /s/: the same page as a dead link, not the app's own 404 with its way in."""
    raise Http404


# --- What this browser session may do with a link ---


def _grant(request: HttpRequest, link: ShareLink) -> dict:
    return request.session.get(_SESSION_KEY, {}).get(str(link.pk), {})


def _remember(request: HttpRequest, link: ShareLink, **facts) -> None:
    grants = dict(request.session.get(_SESSION_KEY, {}))
    grants[str(link.pk)] = {**grants.get(str(link.pk), {}), **facts}
    request.session[_SESSION_KEY] = grants


def _unlocked(request: HttpRequest, link: ShareLink) -> bool:
    return not link.has_password or _grant(request, link).get("unlocked", False)


def _has_viewed(request: HttpRequest, link: ShareLink) -> bool:
    return "viewed_at" in _grant(request, link)


def _usable(request: HttpRequest, link: ShareLink) -> bool:
    """Whether this session may load what an open page of the link needs (grid pages, lightbox, images)."""
    if not _unlocked(request, link):
        return False
    if not link.is_exhausted:
        return True
    viewed_at = _grant(request, link).get("viewed_at")
    return viewed_at is not None and time.time() - viewed_at < settings.SHARE_GRACE_SECONDS


def _link(request: HttpRequest, token: str) -> ShareLink:
    link = services.share_link_resolve(token=token)
    if not _usable(request, link):
        raise Http404
    return link


# --- Pages ---


def _password_form(request: HttpRequest, link: ShareLink) -> HttpResponse | None:
    """The password form if this session has not unlocked the link yet, else None."""
    if link.is_exhausted:
        raise Http404  # before the password form, which would tell that the link exists
    if _unlocked(request, link):
        return None
    return render(request, "albums/public_password.html")


def _open_page(request: HttpRequest, token: str, link: ShareLink, content: Callable[[], dict]) -> HttpResponse:
    """A page load of the link: the password form if it is locked, else one counted view, else 404.

    `content` gives the page's context; it is only read once the view has been counted.
    """
    if (form := _password_form(request, link)) is not None:
        return form
    if not services.share_link_count_view(link_id=link.pk):
        raise Http404
    _remember(request, link, viewed_at=time.time())
    return render(request, "albums/public.html", {"link": link, "token": token, **content()})


@_public
@require_http_methods(["GET", "POST"])
def share(request: HtmxRequest, token: str) -> HttpResponse:
    if request.method == "POST":
        return _password(request, token)
    link = services.share_link_resolve(token=token)
    cursor = request.GET.get("cursor")
    if request.htmx and cursor:
        # The next grid page of a page this session has open: part of that view, so not counted again.
        if link.album_id is None or not _has_viewed(request, link) or not _usable(request, link):
            raise Http404
        page = photo_list(owner=link.owner_id, album_id=link.album_id, limit=PAGE_SIZE, cursor=cursor)
        return render(request, "albums/public.html#public-grid-page", {"link": link, "token": token, "page": page})
    if link.album_id is None:
        return _open_page(request, token, link, lambda: {"photo": link.photo})
    return _open_page(
        request,
        token,
        link,
        lambda: {
            "album": link.album,
            "page": photo_list(owner=link.owner_id, album_id=link.album_id, limit=PAGE_SIZE),
        },
    )


def _password(request: HttpRequest, token: str) -> HttpResponse:
    link = services.share_link_resolve(token=token)
    if link.is_exhausted:
        raise Http404
    if _unlocked(request, link):
        return redirect(request.path)
    try:
        right = services.share_link_check_password(
            link=link, password=request.POST.get("password", ""), client=client_address(request)
        )
    except TooManyRequests as exc:
        response = render(request, "albums/public_password.html", {"error": exc.message}, status=429)
        response["Retry-After"] = str(exc.details["retry_after"])
        return response
    if not right:
        # The form again, with the reason, as a login form answers a wrong password (200, not 403).
        error = "That is not the password for this link."
        return render(request, "albums/public_password.html", {"error": error})
    # A new session key once the password is right, as a login does, so a planted session id gains nothing.
    request.session.cycle_key()
    _remember(request, link, unlocked=True)
    return redirect(request.path)


@_public
@require_http_methods(["GET", "POST"])
def share_photo(request: HtmxRequest, token: str, photo_id) -> HttpResponse:
    """A shared photo: the lightbox body for the page's htmx, or a page of its own when opened directly.

    Whether this session may see the link is settled before the photo is looked up, so a locked link answers
    the same for a photo it shares and one it does not.
    """
    if request.method == "POST":
        return _password(request, token)
    link = services.share_link_resolve(token=token)
    if not request.htmx:
        if (form := _password_form(request, link)) is not None:
            return form
        photo = selectors.share_link_photo(link=link, photo_id=photo_id)
        return _open_page(request, token, link, lambda: {"photo": photo, "album": link.album})
    if not _has_viewed(request, link) or not _usable(request, link):
        raise Http404
    photo = selectors.share_link_photo(link=link, photo_id=photo_id)
    context = {"link": link, "token": token, "photo": photo, "album": link.album}
    return render(request, "albums/public.html#public-lightbox-body", context)


@_public
@require_GET
def share_photo_file(request: HttpRequest, token: str, photo_id: str, variant: str) -> HttpResponseBase:
    link = _link(request, token)
    photo = selectors.share_link_photo(link=link, photo_id=photo_id)
    if variant == "thumbnail":
        return serve_photo_file(
            request, photo, photo.local_thumbnail_path, "image/webp", variant, cache_control=_PUBLIC_CACHE
        )
    if variant == "display":
        # Generated photos get their display rendition on first view, which may be this one.
        relative = photo_services.photo_display_rendition(photo=photo)
        return serve_photo_file(request, photo, relative, "image/webp", variant, cache_control=_PUBLIC_CACHE)
    if not link.allow_download:
        raise Http404

    def open_counted(original: BinaryIO) -> BinaryIO:
        try:
            cleaned = metadata.shareable_copy(original, keep_details=link.show_details)
        except metadata.NotCleanable as exc:
            # Refused rather than sent with the owner's location or hidden details; the owner still has the file.
            logger.warning("Shared photo %s not sent: it could not be cleaned (%s)", photo.pk, exc)
            raise NotFound(services.SHARE_NOT_FOUND) from None
        if not services.share_link_count_download(link_id=link.pk):
            raise NotFound(services.SHARE_NOT_FOUND)
        return cleaned

    return serve_photo_file(
        request,
        photo,
        photo.local_storage_path,
        photo.mime_type,
        "original",
        cache_control=_PUBLIC_CACHE,
        open_file=open_counted,
        # Named from the photo's id, as it is stored: the owner's file name is the owner's business.
        download_name=Path(photo.local_storage_path).name,
    )
