"""The backend settings row: mode, what the user sets on the backend page, the RunPod API key, the idle timer
and what the app last learned about the InvokeAI it talks to. Pod lifecycle services are in `pods`."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django_q.tasks import async_task

from gallery_project.errors import AppError, Conflict, InvalidInput, NotFound

from . import crypto, manager
from .invokeai.client import InvokeAIModel
from .models import Backend, BackendSettings, PodSession

logger = logging.getLogger(__name__)

# RunPod keys are printable ASCII without spaces; anything else is a paste gone wrong.
_API_KEY = re.compile(r"[\x21-\x7e]{8,200}")
# The studio reports activity on every poll; the idle timer needs no finer grain than this.
_ACTIVITY_GRAIN = timedelta(seconds=30)
# Fields the backend page may change (the rest are the app's own bookkeeping).
EDITABLE_FIELDS = (
    "local_backend_url",
    "remote_backend_url",
    "runpod_gpu_type",
    "runpod_cloud_type",
    "runpod_image",
    "runpod_volume_in_gb",
    "runpod_volume_mount_path",
    "runpod_network_volume_id",
    "idle_timeout_minutes",
    "max_session_hours",
    "monthly_budget",
    "terminate_if_stop_fails",
)


def backend_settings_get() -> BackendSettings:
    row, _ = BackendSettings.objects.get_or_create(pk=1)
    return row


def backend_settings_update(**fields: Any) -> BackendSettings:
    """Change what the backend page edits; unknown or bookkeeping fields are refused."""
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise InvalidInput(f"These settings cannot be changed here: {', '.join(sorted(unknown))}.")
    row = backend_settings_get()
    used_before = _url_in_use(row)
    for name, value in fields.items():
        setattr(row, name, value)
    row.full_clean()
    row.save(update_fields=list(fields))
    if _url_in_use(row) != used_before:
        _connection_forget(row)
    return row


def _url_in_use(row: BackendSettings) -> str:
    try:
        return manager.current_backend_url()
    except AppError:
        return ""


def _connection_forget(row: BackendSettings, **changes: Any) -> None:
    """What was learned about one InvokeAI says nothing about another: "checking" until the check has run."""
    BackendSettings.objects.filter(pk=row.pk).update(is_connected=False, api_version="", connection_error="", **changes)
    transaction.on_commit(lambda: async_task("backends.tasks.backend_connection_check"))


def backend_mode_set(*, mode: str) -> str:
    """Switch between the local InvokeAI and the remote one; return what the user should know next."""
    if mode not in BackendSettings.Mode.values:
        raise InvalidInput(f"Unknown backend mode {mode!r}: use 'local' or 'remote'.", code="invalid_mode")
    row = backend_settings_get()
    if row.backend_mode != mode:
        _connection_forget(row, backend_mode=mode)
    if mode == BackendSettings.Mode.LOCAL:
        return f"Using the local InvokeAI at {row.effective_local_url}."
    if PodSession.objects.filter(state=PodSession.State.READY).exists():
        return "Using the RunPod pod."
    if PodSession.objects.active().exclude(state=PodSession.State.STOPPING).exists():
        return "Remote mode is on: the studio generates on the RunPod pod once it is ready."
    if row.remote_backend_url:
        return f"Using the remote InvokeAI at {row.remote_backend_url} until a RunPod pod is ready."
    if not api_key_get():
        return "Remote mode is on. To rent a GPU, enter your RunPod API key in the settings, then start a pod."
    return "Remote mode is on, but no RunPod pod is running yet: start one to generate."


# --- the RunPod API key: stored encrypted, never shown ---


@dataclass(frozen=True)
class ApiKeyState:
    is_set: bool
    # "stored" (entered in the app), "environment" (RUNPOD_API_KEY) or "" (none).
    source: str
    problem: str = ""


def _stored_key(row: BackendSettings) -> tuple[str, str]:
    """The stored key and, if it cannot be read, why."""
    if not row.runpod_api_key_encrypted:
        return "", ""
    try:
        return crypto.decrypt(row.runpod_api_key_encrypted), ""
    except crypto.UnreadableSecret:
        return "", "The stored RunPod API key cannot be decrypted (SECRET_KEY changed?): enter it again."


def api_key_get() -> str:
    """The key to call RunPod with: the one entered in the app, else RUNPOD_API_KEY. Never log it."""
    stored, _ = _stored_key(backend_settings_get())
    return stored or settings.RUNPOD_API_KEY


def api_key_state() -> ApiKeyState:
    stored, problem = _stored_key(backend_settings_get())
    if stored:
        return ApiKeyState(is_set=True, source="stored")
    if settings.RUNPOD_API_KEY:
        return ApiKeyState(is_set=True, source="environment", problem=problem)
    return ApiKeyState(is_set=False, source="", problem=problem)


def api_key_set(*, api_key: str) -> None:
    api_key = api_key.strip()
    if not _API_KEY.fullmatch(api_key):
        # Not echoing the value: it may be a real key with a stray character.
        raise InvalidInput("That does not look like a RunPod API key.", code="invalid_api_key")
    BackendSettings.objects.filter(pk=backend_settings_get().pk).update(
        runpod_api_key_encrypted=crypto.encrypt(api_key)
    )
    logger.info("RunPod API key stored")


def api_key_clear() -> None:
    BackendSettings.objects.filter(pk=backend_settings_get().pk).update(runpod_api_key_encrypted="")
    logger.info("Stored RunPod API key removed")


# --- activity and connection ---


def activity_record(*, now: datetime | None = None) -> None:
    """Reset the idle timer: the user, or work of ours, needs the GPU now."""
    now = now or timezone.now()
    pk = backend_settings_get().pk
    BackendSettings.objects.filter(pk=pk).filter(
        Q(last_activity_at__isnull=True) | Q(last_activity_at__lt=now - _ACTIVITY_GRAIN)
    ).update(last_activity_at=now)


def images_record(*, count: int, backend_url: str = "") -> None:
    """Count images made on a pod (the one at `backend_url`, else the latest), for the cost per image."""
    if count <= 0 or backend_settings_get().backend_mode != BackendSettings.Mode.REMOTE:
        return
    sessions = PodSession.objects.filter(state__in=(PodSession.State.READY, PodSession.State.STOPPING)).order_by(
        "-created_at"
    )
    session = sessions.first()
    if backend_url and len(live := list(sessions.exclude(pod_id=""))) > 1:
        session = next((pod for pod in live if manager.proxy_url(pod.pod_id) == backend_url), None)
    if session is not None:
        PodSession.objects.filter(pk=session.pk).update(images_generated=F("images_generated") + count)


def connection_record(
    *, connected: bool, version: str = "", error: str = "", url: str = "", now: datetime | None = None
) -> None:
    """Remember whether the InvokeAI in use answered, and its version when known.

    With `url`, only if that is the InvokeAI in use: a pod answering says nothing while the local one is used.
    """
    now = now or timezone.now()
    if url:
        try:
            if manager.current_backend_url() != url:
                return
        except AppError:
            return
    pk = backend_settings_get().pk
    if connected:
        changes = {"is_connected": True, "last_connected_at": now, "connection_error": ""}
        if version:
            changes["api_version"] = version
        BackendSettings.objects.filter(pk=pk).update(**changes)
    else:
        BackendSettings.objects.filter(pk=pk).update(is_connected=False, connection_error=error[:500])


def connection_check(*, now: datetime | None = None) -> bool:
    """Ask the InvokeAI in use for its version; record and return whether it answered."""
    try:
        client = manager.probe_client(manager.current_backend_url())
        version = client.connect()
        queue = client.queue_status()
    except AppError as exc:
        connection_record(connected=False, error=exc.message, now=now)
        return False
    connection_record(connected=True, version=version, now=now)
    BackendSettings.objects.filter(pk=backend_settings_get().pk).update(
        queue_pending=queue.pending, queue_in_progress=queue.in_progress
    )
    return True


# --- other InvokeAI backends (see `routing`) ---


def backend_add(*, name: str, url: str, enabled: bool = True) -> Backend:
    """Add an InvokeAI that takes new work beside the one in use; its status is checked right after."""
    backend = Backend(name=name.strip(), url=url, enabled=enabled)
    if not backend.name:
        raise InvalidInput("Give the backend a name.", code="invalid_backend", details={"field": "name"})
    _backend_validate(backend)
    try:
        in_use = manager.current_backend_url()
    except AppError:
        in_use = ""
    if Backend.objects.filter(url=backend.url).exists() or backend.url == in_use:
        raise Conflict(f"{backend.url} is already a backend.", code="backend_exists", details={"url": backend.url})
    backend.save()
    transaction.on_commit(lambda: async_task("backends.tasks.backend_check", backend.pk))
    logger.info("Backend %s added at %s", backend.pk, backend.url)
    return backend


def _backend_validate(backend: Backend) -> None:
    try:
        backend.full_clean(validate_unique=False)
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise InvalidInput(" ".join(messages), code="invalid_backend", details={"field": field}) from None


def backend_get(*, backend_id: int) -> Backend:
    # An id no row can have is not sent to the database, which would refuse it rather than find nothing.
    backend = Backend.objects.filter(pk=backend_id).first() if 0 < backend_id < 2**63 else None
    if backend is None:
        raise NotFound("No such backend.", code="backend_not_found", details={"id": backend_id})
    return backend


def backend_update(*, backend_id: int, name: str | None = None, enabled: bool | None = None) -> Backend:
    """Rename a backend, or stop (start) sending it new steps; the steps it has keep running there."""
    backend = backend_get(backend_id=backend_id)
    if name is not None:
        backend.name = name.strip()
        if not backend.name:
            raise InvalidInput("Give the backend a name.", code="invalid_backend", details={"field": "name"})
    if enabled is not None:
        backend.enabled = enabled
    _backend_validate(backend)
    backend.save(update_fields=["name", "enabled"])
    return backend


def backend_remove(*, backend_id: int) -> None:
    """Remove a backend: it gets no new steps; steps already sent to it are still followed there (by URL)."""
    backend = backend_get(backend_id=backend_id)
    backend.delete()
    logger.info("Backend %s at %s removed", backend_id, backend.url)


def _backend_read(backend: Backend, *, now: datetime) -> list[InvokeAIModel] | None:
    """Ask a backend for its version, queue and models; record what it said. Its models, or None if it did not
    answer."""
    client = manager.probe_client(backend.url)
    try:
        version = client.connect()
        queue = client.queue_status()
        models = client.list_models()
    except AppError as exc:
        Backend.objects.filter(pk=backend.pk).update(
            is_connected=False, connection_error=exc.message[:500], checked_at=now
        )
        return None
    Backend.objects.filter(pk=backend.pk).update(
        is_connected=True,
        api_version=version,
        connection_error="",
        checked_at=now,
        queue_pending=queue.pending,
        queue_in_progress=queue.in_progress,
        model_hashes=sorted({model.hash for model in models}),
        models_listed_at=now,
        patchmatch=client.patchmatch_status(),
    )
    return models


def backend_check(*, backend_id: int, now: datetime | None = None) -> Backend:
    """Read a backend's status, queue and models now (the minute check does it for all)."""
    backend = backend_get(backend_id=backend_id)
    _backend_read(backend, now=now or timezone.now())
    backend.refresh_from_db()
    return backend


def backends_check(*, now: datetime | None = None) -> int:
    """The minute check of every added backend; return how many answered."""
    now = now or timezone.now()
    return sum(_backend_read(backend, now=now) is not None for backend in Backend.objects.all())


def backends_models(*, now: datetime | None = None) -> list[list[InvokeAIModel]]:
    """The models of each enabled added backend that answers (recorded for routing as they are read)."""
    now = now or timezone.now()
    lists = (_backend_read(backend, now=now) for backend in Backend.objects.filter(enabled=True))
    return [models for models in lists if models is not None]


def backend_models_record(
    *, url: str, hashes: list[str], patchmatch: bool | None = None, now: datetime | None = None
) -> None:
    """Remember which models the InvokeAI at `url` has (the model refresh lists them), and whether it has
    PatchMatch, for routing and the studio's infill choices."""
    now = now or timezone.now()
    hashes = sorted(set(hashes))
    if Backend.objects.filter(url=url).update(model_hashes=hashes, models_listed_at=now, patchmatch=patchmatch):
        return
    BackendSettings.objects.filter(pk=backend_settings_get().pk).update(
        model_hashes=hashes, models_url=url, patchmatch=patchmatch
    )
