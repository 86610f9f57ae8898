"""Photo files sent at static-file speed: signed, expiring URLs and the fastest way to send the bytes.

A page that shows a photo mints its URL (`signed_url`) after the usual owner check; the URL then carries its
own proof, an HMAC of the file's path and an expiry, so serving it (`SignedMediaMiddleware`) touches neither
the session nor the database: it checks the signature, stats the file and hands it to the server. This is how
Wagtail signs rendition URLs. Whoever holds such a URL can load that one file until it expires, as with any
bearer link; expiries are rounded so that a page loaded again within SIGNED_URL_TTL mints the same URLs and
the browser's cache answers them.

Bytes leave by the fastest route the deployment has (`SENDFILE`): gunicorn's sendfile(2) through
wsgi.file_wrapper by default, or a front proxy told by a header to send the file itself (`x-accel` for nginx
and Caddy, `x-sendfile` for Apache and lighttpd).

With photos in a bucket, a signed URL answers with a redirect to a presigned URL of the object that expires
when the signed URL does (so it grants nothing more, and the browser caches both for as long); the check is the
same HMAC and the presigning is local arithmetic, so still no database and no request to the bucket. Every
other file (an owner's original, a share link's files, which must stop with the link) is streamed from the
bucket through the app after its checks, a chunk at a time.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import hmac
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseBase
from django.utils.cache import get_conditional_response
from django.utils.encoding import force_bytes
from django.utils.http import content_disposition_header, http_date

from . import storage

PREFIX = "/media/"
# Only renditions are signed: originals keep their owner check (and share links their counting) per request.
_SIGNABLE = storage.THUMBNAILS + "/"
_SALT = "photos.media.signed_url"
_SIGNATURE_BYTES = 16
# SigV4 presigned URLs live at most a week.
_PRESIGNED_MAX = 7 * 24 * 60 * 60


def _signable(relative: str) -> bool:
    return relative.startswith(_SIGNABLE) and ".." not in relative.split("/")


@functools.lru_cache(maxsize=8)
def _key(secret: str | bytes) -> bytes:
    # Derived once per secret, as salted_hmac would derive it on every call (a page mints 60 URLs).
    return hashlib.sha256(_SALT.encode() + force_bytes(secret)).digest()


def _signature(message: str, secret: str | bytes) -> str:
    digest = hmac.new(_key(secret), message.encode(), hashlib.sha256).digest()[:_SIGNATURE_BYTES]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def signed_url(relative: str, *, now: float | None = None) -> str:
    """A URL for the rendition at `relative` that works for at least SIGNED_URL_TTL and at most twice that.

    Call it only for someone allowed to see the photo: the URL is the permission.
    """
    if not _signable(relative):
        raise ValueError(f"only renditions are served by signed URL, not {relative!r}")
    ttl = settings.SIGNED_URL_TTL
    # The same expiry for every URL minted in one TTL window, so pages reloaded within it hit the cache.
    expires = (int(now if now is not None else time.time()) // ttl + 2) * ttl
    return f"{PREFIX}{expires}/{_signature(f'{expires}/{relative}', settings.SECRET_KEY)}/{relative}"


def verify(path: str, *, now: float | None = None) -> tuple[str, int] | None:
    """The relative file path and expiry a signed URL's path grants, or None if it is forged or expired."""
    try:
        expires_text, signature, relative = path.removeprefix(PREFIX).split("/", 2)
        expires = int(expires_text)
    except ValueError:
        return None
    if expires < (now if now is not None else time.time()) or not _signable(relative):
        return None
    message = f"{expires}/{relative}"
    # Old keys in SECRET_KEY_FALLBACKS keep URLs minted before a key rotation working until they expire.
    for secret in [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]:
        if hmac.compare_digest(signature, _signature(message, secret)):
            return relative, expires
    return None


def send(
    request: HttpRequest,
    relative: str,
    *,
    path: Path | None = None,
    content_type: str,
    etag: str,
    last_modified: int,
    cache_control: str,
    open_file: Callable[[BinaryIO], BinaryIO] | None = None,
    filename: str = "",
) -> HttpResponseBase:
    """Send a stored file with validators for conditional GET, by the route `SENDFILE` names (on disk), or
    streamed from the bucket.

    `open_file`, when given, makes a copy to send instead of the file itself (a share's cleaned original) from
    the stored file open for reading: such a copy is not on disk for a proxy to find, so it always goes through
    the app. It is called only when a body is sent, never for a 304, and may raise to refuse. A missing file
    raises FileNotFoundError. `path`, the file's absolute path on disk, saves resolving `relative` again when the
    caller has it.
    """
    response: HttpResponseBase
    not_modified = get_conditional_response(request, etag=etag, last_modified=last_modified)
    if not_modified is not None:
        response = not_modified
    elif not storage.is_local():
        handle, size = storage.open_stream(relative)
        if open_file is not None:
            with contextlib.closing(handle):
                handle = open_file(handle)
        response = FileResponse(handle, content_type=content_type, filename=filename)
        if open_file is None:
            # FileResponse cannot measure a network stream; the bucket said how long it is.
            response["Content-Length"] = str(size)
    else:
        path = path or storage.absolute(relative)
        mode = settings.SENDFILE
        if open_file is None and mode:
            if not path.is_file():
                raise FileNotFoundError(relative)
            # The proxy reads the file and sends it with these headers; the app sends no body.
            response = HttpResponse(content_type=content_type)
            if mode == "x-accel":
                response["X-Accel-Redirect"] = settings.SENDFILE_ACCEL_PREFIX.rstrip("/") + "/" + relative
            else:
                response["X-Sendfile"] = str(path)
            if filename:
                response["Content-Disposition"] = content_disposition_header(False, filename) or ""
        else:
            # FileResponse hands the open file to the WSGI server's file_wrapper: gunicorn sends it with sendfile(2).
            handle = path.open("rb")
            if open_file is not None:
                with handle:
                    handle = open_file(handle)
            response = FileResponse(handle, content_type=content_type, filename=filename)
    response["ETag"] = etag
    response["Last-Modified"] = http_date(last_modified)
    response["Cache-Control"] = cache_control
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _not_found() -> HttpResponse:
    response = HttpResponse(b"Not found.", status=404, content_type="text/plain")
    # A URL that fails now fails for good (forged, expired, or its photo purged): nothing to revalidate.
    response["Cache-Control"] = "no-store"
    return response


def serve_signed(request: HttpRequest, *, now: float | None = None) -> HttpResponseBase:
    """The answer to a request for a signed URL: the file, a 304, 404 or 405. No session, no database."""
    if request.method not in ("GET", "HEAD"):
        response = HttpResponse(status=405)
        response["Allow"] = "GET, HEAD"
        return response
    granted = verify(request.path_info, now=now)
    if granted is None:
        return _not_found()
    relative, expires = granted
    if not storage.is_local():
        return _redirect_to_bucket(relative, expires, now)
    # Not storage.absolute(): resolving every component cost more than the rest of the answer, and only paths
    # the app signed get here; ".." is refused all the same, should a signed path ever carry one.
    path = storage.root() / relative
    try:
        stat = path.stat()
    except OSError:
        return _not_found()
    max_age = max(0, expires - int(now if now is not None else time.time()))
    try:
        return send(
            request,
            relative,
            path=path,
            content_type="image/webp",  # every rendition is
            # Files are written once under names made from ids, so size and time identify their bytes.
            etag=f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"',
            last_modified=int(stat.st_mtime),
            cache_control=f"private, max-age={max_age}, immutable",
        )
    except FileNotFoundError:
        return _not_found()


def _redirect_to_bucket(relative: str, expires: int, now: float | None) -> HttpResponse:
    """A redirect to the object, presigned to expire with the signed URL (within SigV4's week)."""
    max_age = min(_PRESIGNED_MAX, max(1, expires - int(now if now is not None else time.time())))
    cache_control = f"private, max-age={max_age}, immutable"
    location = storage.bucket().url(
        relative,
        parameters={"ResponseContentType": "image/webp", "ResponseCacheControl": cache_control},
        expire=max_age,
    )
    response = HttpResponse(status=302)
    response["Location"] = location
    response["Cache-Control"] = cache_control
    response["X-Content-Type-Options"] = "nosniff"
    return response


class SignedMediaMiddleware:
    """Answers signed photo URLs before sessions, authentication and CSRF, as WhiteNoise does static files."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.path_info.startswith(PREFIX):
            return serve_signed(request)
        return self.get_response(request)
