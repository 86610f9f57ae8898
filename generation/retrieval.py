"""From a finished InvokeAI item to a Photo in the gallery, and again when a download failed.

`items_store` registers each completed item's image as a pending Photo with its StepAlternative (idempotent on
the InvokeAI image name: a resumed or doubled follower finds the same rows) and downloads it at once: the PNG
(which carries InvokeAI's metadata in its text chunks) and InvokeAI's own thumbnail. Downloads run a few at a
time, because the images of a batch can finish together (a fast GPU, or a follower catching up); the database
work stays in the calling thread, storing each image while the next ones download.

A failed download is retried by `retrievals_retry_due` (every minute) with exponential backoff from
RETRIEVAL_RETRY_BACKOFF seconds, until RETRIEVAL_MAX_ATTEMPTS; then the photo stays failed with its error,
and `photo_retrieval_retry` (the Retry button) starts a fresh set of attempts.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from albums import services as album_services
from backends import manager
from backends.invokeai import graphs
from backends.invokeai.client import QueueItem
from backends.invokeai.errors import InvokeAIConnectionError
from backends.signals import images_generated
from gallery_project.errors import AppError, Conflict
from gallery_project.permissions import Owner
from photos import selectors as photo_selectors
from photos import services as photo_services
from photos import storage
from photos.models import Photo

from .models import GenerationStep, StepAlternative

logger = logging.getLogger(__name__)

# Downloads at once: enough to keep a remote InvokeAI's latency from adding up over a batch, few enough for
# two cores (measured: 2 to 6 threads ingest at about the same rate, bench/generation.py).
DOWNLOAD_THREADS = 3
# A photo still pending this long after its last attempt was orphaned by a worker that died mid-download.
STALLED_AFTER = timedelta(minutes=5)
_RETRY_BATCH = 200

_DOWNLOADS, _THUMBNAILS = "retrieval", "thumbnails"
# Two pools: a download waits on its thumbnail's, which must never queue behind the downloads themselves.
_pools: dict[str, ThreadPoolExecutor] = {}
_pool_lock = threading.Lock()


def _executor(name: str = _DOWNLOADS) -> ThreadPoolExecutor:
    with _pool_lock:
        if name not in _pools:
            _pools[name] = ThreadPoolExecutor(max_workers=DOWNLOAD_THREADS, thread_name_prefix=name)
        return _pools[name]


# What a workflow step's recipe keeps: the workflow (its id lets "Open in the studio" find it again) and the values.
_WORKFLOW_RECIPE = ("workflow", "workflow_id", "values")


def _swept_values(step: GenerationStep, item: QueueItem) -> dict[str, Any]:
    """The values a workflow step's batch went over, as this item ran with them (its `field_values`), in the
    recipe's terms: each sent value found in the list sent, and its recorded value (a photo id for an image)."""
    sent = step.parameters.get("batch_sent") or {}
    values = {}
    for name, recorded in (step.parameters.get("batch") or {}).items():
        node_id, _, field_name = name.rpartition(".")
        used = item.value_of(node_id, field_name)
        options = sent.get(name, recorded)
        if used in options:
            values[name] = recorded[options.index(used)]
        else:
            logger.warning("Item %s of step %s has no value for %s in its field values", item.item_id, step.pk, name)
    return values


def _photo_params(step: GenerationStep, swept: dict[str, Any]) -> dict[str, Any]:
    """The step's parameters as a photo's recipe shows them: readable values, no internal ids."""
    if "workflow_id" in step.parameters:
        recipe = {key: step.parameters[key] for key in _WORKFLOW_RECIPE if key in step.parameters}
        recipe["values"] = {**recipe.get("values", {}), **swept}
        return {**recipe, "session": step.session_id, "step": step.position}
    params = {key: value for key, value in step.parameters.items() if not key.endswith("_id") and key != "seed"}
    params.pop("vae_key", None)
    vae_name = params.pop("vae_name", "")
    if vae_name:
        params["vae"] = vae_name
    return {**params, "session": step.session_id, "step": step.position}


def _register(step: GenerationStep, item: QueueItem) -> Photo:
    index = step.item_ids.index(item.item_id)
    swept = _swept_values(step, item)
    seed = swept.get(step.parameters.get("seed_field", ""), item.seed)
    if seed is None:
        # A workflow's fixed seed is the same for every run; the studio's graphs count up from the first.
        seed = step.seed if "workflow_id" in step.parameters else (step.seed or 0) + index
    prompt = swept.get(step.parameters.get("prompt_field", ""), step.prompt)
    photo, created = photo_services.generated_photo_register(
        owner_id=step.session.owner_id,
        invoke_id=item.image_name or "",
        prompt=prompt,
        negative_prompt=step.negative_prompt,
        params=_photo_params(step, swept),
        seed=seed,
        model_key=step.model_key,
        model_hash=step.model_hash,
        model_name=step.model_name,
        source_image_id=step.parameters.get("init_photo_id"),
    )
    StepAlternative.objects.get_or_create(photo=photo, defaults={"step": step, "item_id": item.item_id, "index": index})
    if created and step.parameters.get("album_id"):
        # A workflow's board field was set to an album: its images are filed there.
        try:
            album_services.album_add_photos(
                album_id=step.parameters["album_id"], owner=step.session.owner_id, photo_ids=[photo.pk]
            )
        except AppError as exc:
            logger.warning("Could not add %s to album %s: %s", photo.pk, step.parameters["album_id"], exc.message)
    return photo


def _thumbnail(backend_url: str, name: str) -> bytes | None:
    try:
        return manager.invokeai_client(backend_url).thumbnail(name)
    except AppError:
        return None  # one is made from the image instead


def _download(backend_url: str, photo: Photo) -> photo_services.PreparedImage | AppError:
    """The image and InvokeAI's thumbnail of it; the PNG carries InvokeAI's metadata in its text chunks.

    Both at once: an InvokeAI busy with the next image is slow to answer each (hundreds of milliseconds), and
    an image's wait to be seen is what the events listener is there to cut.
    """
    client = manager.invokeai_client(backend_url)
    thumbnail_download = _executor(_THUMBNAILS).submit(_thumbnail, backend_url, photo.invoke_id)
    try:
        data = client.image(photo.invoke_id)
    except AppError as exc:
        return exc
    thumbnail = thumbnail_download.result()
    try:
        return photo_services.generated_image_prepare(data=data, name=photo.invoke_id, thumbnail=thumbnail)
    except AppError as exc:
        return exc


def _download_all(backend_url: str, photos: Sequence[Photo]) -> Iterator[photo_services.PreparedImage | AppError]:
    """Each photo's download, in order, as soon as it is ready: the first is stored while the others download."""
    if len(photos) == 1:
        return iter([_download(backend_url, photos[0])])
    return _executor().map(lambda photo: _download(backend_url, photo), photos)


@dataclass(frozen=True)
class Retrieved:
    stored: int
    # The server did not answer: its other images need not be tried this round.
    unreachable: bool


def _retrieve(step: GenerationStep, photos: Sequence[Photo]) -> Retrieved:
    """Download and store `photos` of `step` from the InvokeAI it ran on."""
    stored = 0
    unreachable = False
    for photo, result in zip(photos, _download_all(step.backend_url, photos), strict=True):
        if isinstance(result, AppError):
            logger.warning("Download of %s (step %s) failed: %s", photo.invoke_id, step.pk, result.message)
            photo_services.generated_photo_retrieval_failed(photo_id=photo.pk, error=result.message)
            unreachable = unreachable or isinstance(result, InvokeAIConnectionError)
            continue
        relative = storage.generated_variant_path(step.session_id, step.pk, photo.pk)
        try:
            if photo_services.generated_photo_store(photo_id=photo.pk, image=result, relative=relative):
                stored += 1
        except OSError as exc:
            logger.exception("Could not write %s", relative)
            photo_services.generated_photo_retrieval_failed(
                photo_id=photo.pk, error=f"The image could not be written to the photo store: {exc}."
            )
        except storage.StoreUnavailable as exc:
            # A retry stores it once the bucket answers again.
            photo_services.generated_photo_retrieval_failed(photo_id=photo.pk, error=exc.message)
    if stored:
        images_generated.send(sender=GenerationStep, count=stored, backend_url=step.backend_url)
        step_counts_refresh(step_id=step.pk)
    return Retrieved(stored=stored, unreachable=unreachable)


def _processed_control_keep(step: GenerationStep, index: int, name: str) -> Photo | None:
    """Download and store the image InvokeAI's preprocessor made of ControlNet `index`'s control image, as a
    `control` photo of the step's owner made from that control image; None if it could not be had now."""
    control = step.parameters["controlnets"][index - 1]
    client = manager.invokeai_client(step.backend_url)
    try:
        image = photo_services.generated_image_prepare(data=client.image(name), name=name)
    except AppError as exc:
        logger.warning("Processed control image %s (step %s) not kept: %s", name, step.pk, exc.message)
        return None
    photo, _ = photo_services.generated_photo_register(
        owner_id=step.session.owner_id,
        invoke_id=name,
        prompt="",
        negative_prompt="",
        params={"preprocessor": control["preprocessor"], "session": step.session_id, "step": step.position},
        seed=None,
        model_key=control["key"],
        model_hash="",
        model_name=control.get("name", ""),
        source_image_id=control.get("photo_id"),
        image_category=Photo.Category.CONTROL,
    )
    if photo.owner_id != step.session.owner_id:
        return None
    relative = storage.generated_variant_path(step.session_id, step.pk, photo.pk)
    try:
        photo_services.generated_photo_store(photo_id=photo.pk, image=image, relative=relative)
    except OSError:
        logger.exception("Could not write %s", relative)
        return None
    return photo


def _processed_controls_keep(step: GenerationStep, items: Sequence[QueueItem]) -> None:
    """Keep each preprocessed control image of the step once (the first item that made it), and link it from
    the step's ControlNets and its images' recipes. Every item of a batch preprocesses the same image."""
    controls = step.parameters.get("controlnets") or []
    kept: dict[int, str] = {}
    for index, control in enumerate(controls, start=1):
        if not control.get("preprocessor") or control.get("processed_photo_id"):
            continue
        node = graphs.preprocessor_node(index)
        name = next((item.images[node] for item in items if node in item.images), None)
        photo = _processed_control_keep(step, index, name) if name else None
        if photo is not None:
            kept[index] = str(photo.pk)
    if not kept:
        return
    with transaction.atomic():
        locked = GenerationStep.objects.select_for_update().get(pk=step.pk)
        controls = [
            {**control, "processed_photo_id": kept[index]} if index in kept else control
            for index, control in enumerate(locked.parameters.get("controlnets") or [], start=1)
        ]
        step.parameters = {**locked.parameters, "controlnets": controls}
        GenerationStep.objects.filter(pk=step.pk).update(parameters=step.parameters)
        # Images registered before (from an event) show it in their recipe too.
        for photo in Photo.objects.filter(step_alternative__step=step).select_for_update():
            photo.generation_params = {**photo.generation_params, "controlnets": controls}
            photo.save(update_fields=["generation_params"])


def items_store(*, step: GenerationStep, items: Sequence[QueueItem]) -> int:
    """Store the images of completed `items` (each must have an image name); return how many were stored now.

    A ControlNet's preprocessed control image is kept first, so the images' recipes link to it.
    """
    _processed_controls_keep(step, items)
    photos = [_register(step, item) for item in items]
    waiting = [photo for photo in photos if photo.retrieval_status == Photo.RetrievalStatus.PENDING]
    return _retrieve(step, waiting).stored if waiting else 0


def step_counts_refresh(*, step_id: int) -> None:
    """Recount the step's downloaded images (they can arrive after the step has finished, through retries)."""
    retrieved = StepAlternative.objects.filter(
        step_id=step_id, photo__retrieval_status=Photo.RetrievalStatus.COMPLETED
    ).count()
    GenerationStep.objects.filter(pk=step_id).update(images_retrieved=retrieved)


def retry_delay(attempts: int) -> timedelta:
    """How long after its `attempts`-th failure a download is tried again: doubling from the base."""
    return timedelta(seconds=settings.RETRIEVAL_RETRY_BACKOFF * 2 ** max(0, attempts - 1))


def next_retry_at(photo: Photo) -> datetime | None:
    """When the retry task will try this photo again; None if it will not (done, or out of attempts)."""
    if photo.retrieval_status != Photo.RetrievalStatus.FAILED or photo.last_retrieval_attempt is None:
        return None
    if photo.retrieval_attempts >= settings.RETRIEVAL_MAX_ATTEMPTS:
        return None
    return photo.last_retrieval_attempt + retry_delay(photo.retrieval_attempts)


def _due(now: datetime) -> list[StepAlternative]:
    stalled = now - STALLED_AFTER
    candidates = (
        StepAlternative.objects.filter(
            Q(
                photo__retrieval_status=Photo.RetrievalStatus.FAILED,
                photo__retrieval_attempts__lt=settings.RETRIEVAL_MAX_ATTEMPTS,
            )
            | Q(photo__retrieval_status=Photo.RetrievalStatus.PENDING, photo__last_retrieval_attempt__lt=stalled)
            | Q(
                photo__retrieval_status=Photo.RetrievalStatus.PENDING,
                photo__last_retrieval_attempt=None,
                photo__created_at__lt=stalled,
            )
        )
        .select_related("photo", "step")
        .order_by("photo__last_retrieval_attempt")[:_RETRY_BATCH]
    )
    due = []
    for alternative in candidates:
        retry_at = next_retry_at(alternative.photo)
        if alternative.photo.retrieval_status == Photo.RetrievalStatus.PENDING or (retry_at and retry_at <= now):
            due.append(alternative)
    return due


def retrievals_retry_due(*, now: datetime | None = None) -> int:
    """Try again every download whose backoff has passed; return how many images were stored."""
    by_step: dict[int, list[StepAlternative]] = defaultdict(list)
    for alternative in _due(now or timezone.now()):
        by_step[alternative.step_id].append(alternative)
    stored = 0
    unreachable: set[str] = set()
    for alternatives in by_step.values():
        step = alternatives[0].step
        if step.backend_url in unreachable:
            # Each of its images would wait out the connection timeout again; they are tried next round.
            continue
        result = _retrieve(step, [alternative.photo for alternative in alternatives])
        stored += result.stored
        if result.unreachable:
            unreachable.add(step.backend_url)
    return stored


def photo_retrieval_retry(*, photo_id: uuid.UUID | str, owner: Owner) -> Photo:
    """The Retry button: a fresh set of attempts for one of the owner's failed downloads, and the first one now."""
    photo = photo_selectors.photo_get(photo_id=photo_id, owner=owner, include_deleted=True)
    alternative = StepAlternative.objects.select_related("step").filter(photo=photo).first()
    if alternative is None:
        raise Conflict(
            "Only a generated photo whose download from InvokeAI failed can be retried.",
            code="nothing_to_retry",
            details={"retrieval_status": photo.retrieval_status},
        )
    photo = photo_services.generated_photo_retrieval_reset(photo_id=photo.pk)
    _retrieve(alternative.step, [photo])
    photo.refresh_from_db()
    return photo


def step_retrievals_retry(*, step_id: int) -> int:
    """Retry every unfinished download of a step now, with fresh attempts; return how many were stored."""
    step = GenerationStep.objects.get(pk=step_id)
    waiting = StepAlternative.objects.filter(step=step).exclude(photo__retrieval_status=Photo.RetrievalStatus.COMPLETED)
    photos = [
        photo_services.generated_photo_retrieval_reset(photo_id=photo_id)
        for photo_id in waiting.values_list("photo_id", flat=True)
    ]
    return _retrieve(step, photos).stored if photos else 0
