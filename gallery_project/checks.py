"""System checks for the environment the app runs in: image codecs, a writable DATA_DIR (and photo bucket),
backend settings."""

from __future__ import annotations

import os
import re
import stat
import tempfile
import uuid
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from PIL import features

from backends.invokeai.transport import RefusedURL, normalise_url


@register(Tags.compatibility, deploy=False)
def check_image_codecs(app_configs=None, **kwargs) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for codec in ("jpg", "zlib", "webp"):
        if not features.check(codec):
            errors.append(
                Error(
                    f"Pillow was built without {codec} support; uploads and thumbnails need it.",
                    hint="Install a Pillow wheel from the package index (they include every codec).",
                    id="gallery.E001",
                )
            )
    try:
        import pillow_heif  # noqa: F401
    except ImportError:
        errors.append(
            Warning(
                "pillow-heif is not installed: .heic uploads will be refused.",
                hint="pip install pillow-heif",
                id="gallery.W002",
            )
        )
    return errors


@register(Tags.compatibility)
def check_data_dir(app_configs=None, **kwargs) -> list:
    data_dir = settings.DATA_DIR
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=data_dir, prefix=".write-check-"):
            pass
    except OSError as exc:
        return [
            Error(
                f"DATA_DIR {data_dir} is not writable: {exc.strerror or exc}.",
                hint="Point DATA_DIR at a directory this user can write, or fix its permissions.",
                id="gallery.E003",
            )
        ]
    if data_dir.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        # Settings make it private; this stays only when that failed (a directory of another account's).
        return [
            Warning(
                f"DATA_DIR {data_dir} is open to other accounts on this machine (photos, database, secret key).",
                hint=f"chmod 700 {data_dir}",
                id="gallery.W010",
            )
        ]
    return []


@register(Tags.compatibility)
def check_photo_bucket(app_configs=None, **kwargs) -> list[CheckMessage]:
    """With photos in a bucket: that it answers and takes, gives back, lists and deletes an object, as every
    upload, view, preview sweep and purge will."""
    from django.core.files.base import ContentFile

    from photos import storage

    if storage.is_local():
        return []
    name = f".write-check/{uuid.uuid4().hex}"
    backend = storage.backend()
    try:
        backend.save(name, ContentFile(b"photo-studio write check"))
        readable = storage.read_bytes(name) == b"photo-studio write check"
        storage.subfolders(".write-check")
        backend.delete(name)
    except Exception as exc:
        problem = exc.message if isinstance(exc, storage.StoreUnavailable) else f"{type(exc).__name__}: {exc}"
        return [
            Error(
                f"The photo bucket {settings.AWS_STORAGE_BUCKET_NAME!r} at {settings.AWS_S3_ENDPOINT_URL or 'AWS'} "
                f"cannot be used: {problem}",
                hint="Check AWS_STORAGE_BUCKET_NAME, AWS_S3_ENDPOINT_URL, AWS_S3_REGION_NAME and the keys; the "
                "bucket must exist and the keys need PutObject, GetObject, ListBucket and DeleteObject on it.",
                id="gallery.E030",
            )
        ]
    if not readable:
        return [Error("The photo bucket gave back other bytes than were written.", id="gallery.E030")]
    if settings.SENDFILE:
        return [
            Warning(
                f"SENDFILE={settings.SENDFILE} does nothing while photos are in a bucket: signed URLs redirect to "
                "it, and other files are streamed by the app.",
                hint="Unset SENDFILE (and the proxy's internal location for the photos).",
                id="gallery.W031",
            )
        ]
    return []


def _bad_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme not in ("http", "https") or not parts.hostname


def _invokeai_url_problem(url: str) -> str:
    try:
        normalise_url(url, allow_link_local=settings.INVOKEAI_ALLOW_LINK_LOCAL)
    except RefusedURL as exc:
        return str(exc)
    return ""


@register(Tags.compatibility)
def check_backend_settings(app_configs=None, **kwargs) -> list:
    errors = []
    if problem := _invokeai_url_problem(settings.INVOKEAI_LOCAL_URL):
        errors.append(
            Error(
                f"INVOKEAI_LOCAL_URL={settings.INVOKEAI_LOCAL_URL!r} cannot be used: {problem}",
                hint="For example http://localhost:9090",
                id="gallery.E004",
            )
        )
    for name in ("INVOKEAI_CONNECTION_TIMEOUT", "INVOKEAI_READ_TIMEOUT", "INVOKEAI_TOTAL_TIMEOUT"):
        if getattr(settings, name) <= 0:
            errors.append(Error(f"{name} must be a positive number of seconds.", id="gallery.E005"))
    if settings.INVOKEAI_TOTAL_TIMEOUT < settings.INVOKEAI_READ_TIMEOUT:
        errors.append(
            Error(
                "INVOKEAI_TOTAL_TIMEOUT is shorter than INVOKEAI_READ_TIMEOUT: every slow answer would be cut off.",
                id="gallery.E010",
            )
        )
    for name in (
        "MAX_UPLOAD_SIZE",
        "MAX_BATCH_SIZE",
        "RETRIEVAL_MAX_ATTEMPTS",
        "RETRIEVAL_RETRY_BACKOFF",
        "RUNPOD_IDLE_TIMEOUT",
        "INVOKEAI_MAX_IMAGE_BYTES",
        "SIGNED_URL_TTL",
        "RUNPOD_DEADMAN_MINUTES",
    ):
        if getattr(settings, name) < 1:
            errors.append(Error(f"{name} must be at least 1.", id="gallery.E006"))
    if os.environ.get("RUNPOD_API_BASE_URL") and _bad_url(os.environ["RUNPOD_API_BASE_URL"]):
        errors.append(Error("RUNPOD_API_BASE_URL is not an http(s) URL.", id="gallery.E007"))
    if settings.SENDFILE not in ("", "x-accel", "x-sendfile"):
        errors.append(Error("SENDFILE must be empty, x-accel or x-sendfile.", id="gallery.E020"))
    errors += _runpod_errors()
    return errors


def _runpod_errors() -> list:
    errors = []
    template = settings.RUNPOD_PROXY_URL_TEMPLATE
    try:
        proxy = template.format(pod_id="abc123", port=9090)
    except (KeyError, IndexError, ValueError):
        proxy = ""
    problem = _invokeai_url_problem(proxy) if proxy else "it does not make a URL."
    if problem:
        errors.append(
            Error(
                f"RUNPOD_PROXY_URL_TEMPLATE={template!r} does not make a usable InvokeAI URL: {problem}",
                hint="Only {pod_id} and {port} may be filled in, e.g. https://{pod_id}-{port}.proxy.runpod.net",
                id="gallery.E008",
            )
        )
    if settings.RUNPOD_START_TIMEOUT < 1:
        errors.append(Error("RUNPOD_START_TIMEOUT must be at least 1 (minutes).", id="gallery.E006"))
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,40}", settings.RUNPOD_POD_PREFIX):
        errors.append(
            Error(
                f"RUNPOD_POD_PREFIX={settings.RUNPOD_POD_PREFIX!r}: use lowercase letters, digits and dashes.",
                hint="Pod names are sent to RunPod unescaped, so only a safe character set is allowed.",
                id="gallery.E009",
            )
        )
    return errors
