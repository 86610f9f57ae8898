"""Installing models into InvokeAI from the app, and uninstalling them.

Writes: `install_start`, `install_poll`, `installs_poll_unfinished`, `model_uninstall`. Reads: `install_get`,
`install_list`.

InvokeAI runs an install in its background and forgets the job when it restarts (its job ids then count from 0
again), so the app keeps its own record (`ModelInstall`) and brings it up to date from InvokeAI's job: when the
install page asks, in the follow-up task that starts with the install, and every minute for whatever is left
unfinished (a worker restart loses nothing). The job that ends refreshes the model cache. An install InvokeAI
"completes" as type `unknown` is an error: the probe recognised nothing, and the record it left is removed.
"""

from __future__ import annotations

import logging
import time

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django_q.tasks import async_task

from backends import manager
from backends.invokeai.client import InstallJob, InvokeAIClient
from backends.invokeai.errors import InvokeAIConnectionError, InvokeAIError
from gallery_project.errors import Conflict, InvalidInput, NotFound
from gallery_project.permissions import Owner, owned_by

from . import lifecycle, models_cache
from .models import CachedModel, GenerationStep, ModelInstall, Preset

logger = logging.getLogger(__name__)

Status = ModelInstall.Status
UNFINISHED = (Status.QUEUED, Status.DOWNLOADING, Status.INSTALLING)
_MAX_SOURCE = 2000
# InvokeAI's install statuses in the app's words: waiting, downloading, downloads_done, running, paused,
# completed, error, cancelled.
_STATUSES = {
    "waiting": Status.QUEUED,
    "paused": Status.QUEUED,
    "downloading": Status.DOWNLOADING,
    "downloads_done": Status.INSTALLING,
    "running": Status.INSTALLING,
}
UNIDENTIFIED = "InvokeAI could not identify this file as a model"
# The follow-up task watches a new install this long, then leaves it to the one-minute sweep.
FOLLOW_SECONDS = 120
FOLLOW_INTERVAL = 1.0


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def _checked_source(source: str) -> str:
    source = source.strip()
    if not source:
        raise InvalidInput(
            "Say what to install: a path on InvokeAI's host, a URL or a Hugging Face repo id.",
            code="invalid_source",
            details={"field": "source"},
        )
    if len(source) > _MAX_SOURCE or any(not char.isprintable() for char in source):
        raise InvalidInput(
            f"The source must be one line of at most {_MAX_SOURCE} characters.",
            code="invalid_source",
            details={"field": "source"},
        )
    return source


def install_start(*, owner: User, source: str, name: str = "") -> ModelInstall:
    """Ask the InvokeAI in use to install `source`; return our record of its job (202: it goes on in the
    background). Nothing is recorded when InvokeAI refuses outright (no such path, an unreachable repo)."""
    source = _checked_source(source)
    name = name.strip()[:255]
    installed = CachedModel.objects.filter(available=True, source=source).first()
    if installed is not None:
        raise Conflict(
            f"This model is already installed in InvokeAI, as '{installed.name}' ({installed.base} {installed.type}).",
            code="model_already_installed",
            details={"key": installed.key, "source": source},
        )
    backend_url = manager.current_backend_url()
    job = manager.invokeai_client(backend_url).install_model(source, name=name)
    # InvokeAI's spelling of the source, which its job reports later and the restart check compares with.
    install = ModelInstall.objects.create(
        owner=owner, source=job.source or source, name=name, backend_url=backend_url, job_id=job.id
    )
    _apply(install, job, manager.invokeai_client(backend_url))
    install.refresh_from_db()
    if not install.is_finished:
        transaction.on_commit(lambda: async_task("generation.tasks.model_install_follow", install.pk))
    return install


def _error_words(job: InstallJob) -> str:
    """InvokeAI's reason (`error_reason` is an exception's class name, `error` its message) as a sentence."""
    if job.error_reason == "DuplicateModelException":
        return f"This model is already installed in InvokeAI ({job.error})."
    if job.status == "cancelled":
        return "The install was cancelled in InvokeAI."
    reason = job.error or job.error_reason or "no reason given"
    return f"InvokeAI could not install {job.source}: {reason}"


def _finish(install: ModelInstall, **fields: object) -> bool:
    """Record the end of an install once, whoever polled it first; True for the one that did."""
    now = timezone.now()
    return bool(
        ModelInstall.objects.filter(pk=install.pk, status__in=UNFINISHED).update(
            updated_at=now, finished_at=now, **fields
        )
    )


def _apply(install: ModelInstall, job: InstallJob, client: InvokeAIClient) -> None:
    """Bring the record in line with InvokeAI's job, finishing it (and refreshing the cache) once the job is."""
    if not job.finished:
        ModelInstall.objects.filter(pk=install.pk, status__in=UNFINISHED).update(
            status=_STATUSES.get(job.status, Status.INSTALLING),
            bytes=job.bytes,
            total_bytes=job.total_bytes,
            updated_at=timezone.now(),
        )
        return
    model = job.model
    if job.status != "completed" or model is None:
        _finish(install, status=Status.ERROR, error_message=_error_words(job), bytes=job.bytes)
        return
    if model.type == "unknown":
        # InvokeAI registered a record nothing can use; it goes, or it would block installing the file again.
        client.delete_model(model.key)
        ended: dict[str, object] = {
            "status": Status.ERROR,
            "error_message": f"{UNIDENTIFIED} ({job.source}); nothing was installed.",
            "bytes": job.bytes,
        }
    else:
        ended = {
            "status": Status.READY,
            "bytes": job.total_bytes,
            "total_bytes": job.total_bytes,
            "model_key": model.key,
            "model_type": model.type,
            "model_base": model.base,
        }
    # The cache first: if InvokeAI stops answering in between, the install is still unfinished and asked again,
    # rather than ready with a model the studio does not list.
    models_cache.models_refresh(client=client)
    _finish(install, **ended)


def install_poll(*, install_id: int) -> ModelInstall:
    """Update one install from InvokeAI (nothing to do once finished); InvokeAI not answering leaves it as it
    was, to be asked again."""
    install = ModelInstall.objects.get(pk=install_id)
    if install.is_finished:
        return install
    client = manager.invokeai_client(install.backend_url)
    try:
        job = client.install_job(install.job_id) if install.job_id is not None else None
        if job is None or job.source != install.source:
            # Restarted (the id now means another job, or nothing) or pruned: the model may be there anyway.
            installed = next((model for model in client.list_models() if model.source == install.source), None)
            if installed is not None and installed.type != "unknown":
                models_cache.models_refresh(client=client)
                _finish(
                    install,
                    status=Status.READY,
                    model_key=installed.key,
                    model_type=installed.type,
                    model_base=installed.base,
                    bytes=install.total_bytes,
                )
            else:
                _finish(
                    install,
                    status=Status.ERROR,
                    error_message="InvokeAI no longer knows this install (it restarted, or its finished jobs "
                    "were cleared) and has no model from this source: install it again.",
                )
        else:
            _apply(install, job, client)
    except InvokeAIConnectionError as exc:
        logger.info("Install %s not updated: %s", install.pk, exc.message)
    install.refresh_from_db()
    return install


def install_follow(*, install_id: int, seconds: float = FOLLOW_SECONDS) -> str:
    """The follow-up task of a new install: poll it every second for a while (the one-minute sweep goes on)."""
    deadline = time.monotonic() + seconds
    install = install_poll(install_id=install_id)
    while not install.is_finished and time.monotonic() < deadline:
        _sleep(FOLLOW_INTERVAL)
        install = install_poll(install_id=install_id)
    return f"install {install_id}: {install.status}"


def installs_poll_unfinished() -> int:
    """The one-minute sweep: every install not yet finished, whichever InvokeAI it runs on; how many ended."""
    ended = 0
    for install_id in ModelInstall.objects.filter(status__in=UNFINISHED).values_list("pk", flat=True):
        try:
            ended += install_poll(install_id=install_id).is_finished
        except InvokeAIError as exc:
            # An InvokeAI answering nonsense about one install keeps no other from being followed.
            logger.warning("Install %s not updated: %s", install_id, exc.message)
    return ended


# --- uninstall ---


def _users_of(key: str) -> tuple[list[Preset], list[GenerationStep]]:
    presets = [preset for preset in Preset.objects.all() if key in preset.model_keys]
    steps = list(
        GenerationStep.objects.filter(status__in=lifecycle.STEP_IN_FLIGHT).filter(
            Q(model_key=key) | Q(parameters__vae_key=key)
        )
    )
    return presets, steps


def model_uninstall(*, key: str) -> None:
    """Remove a model from InvokeAI and the cache; refused while a preset or a running step uses it."""
    model = models_cache.model_get(key=key)
    presets, steps = _users_of(model.key)
    if presets or steps:
        users = [f"preset '{preset.name}'" for preset in presets[:5]]
        users += [f"running step {step.position} of session {step.session_id}" for step in steps[:5]]
        raise Conflict(
            f"'{model.name}' is in use by {', '.join(users)}: change those presets, or let the steps finish, "
            "before uninstalling it.",
            code="model_in_use",
            details={"presets": [preset.pk for preset in presets], "steps": [step.pk for step in steps]},
        )
    manager.invokeai_client().delete_model(model.key)
    CachedModel.objects.filter(pk=model.pk).delete()


# --- reads ---


def install_list(*, owner: Owner) -> QuerySet[ModelInstall]:
    return owned_by(ModelInstall.objects.all(), owner)


def install_get(*, install_id: int | str, owner: Owner) -> ModelInstall:
    install = install_list(owner=owner).filter(pk=install_id).first()
    if install is None:
        raise NotFound("No such model install.", code="install_not_found", details={"id": install_id})
    return install
