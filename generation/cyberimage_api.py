"""CyberImage's API, answered the way CyberImage's own page and scripts read it.

A thin layer over the studio's services and selectors: a CyberImage job is a one-step session, an image is a
photo. The field names are CyberImage's (its Flask routes and its page's `main.js`); only their values are this
app's. Every path is served under `/cyberimage/api/`; those that do not collide with the app's own API (all but
`models`) under `/api/` too. URLs in the answers keep the prefix the request came in on.

Authentication is the API's own (a token header or a session, CSRF for a session's writes): CyberImage itself
sends no credentials, so its clients are given a token (README, "CyberImage's clients").
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.http import HttpResponseBase
from django.urls import re_path
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backends import manager
from backends.invokeai import graphs
from backends.signals import user_activity
from gallery_project.errors import AppError, InvalidInput
from gallery_project.pagination import MAX_OFFSET
from gallery_project.permissions import owned_by, signed_in
from photos import selectors as photo_selectors
from photos import services as photo_services
from photos.api import FileAnswers, serve_photo_variant
from photos.models import Photo

from . import models_cache, selectors, services
from .models import CachedModel, GenerationStep, StepAlternative

PREFIX = "/cyberimage/api"
SOURCE = "invokeai"
PROVIDER = "InvokeAI"

# CyberImage's clients poll until `completed` or `failed`: a cancelled step is a failed job to them.
_STATUS: dict[str, str] = {
    GenerationStep.Status.PENDING: "pending",
    GenerationStep.Status.RUNNING: "processing",
    GenerationStep.Status.COMPLETED: "completed",
    GenerationStep.Status.FAILED: "failed",
    GenerationStep.Status.CANCELLED: "failed",
}
# `get_image?size=`: CyberImage's page asks `small` for its grid and `medium` for a preview.
_SIZES = {"": "original", "original": "original", "large": "original", "medium": "display", "small": "thumbnail"}
MAX_PER_PAGE = 50
_RECENT = timedelta(hours=24)


def _base(request: Request) -> str:
    return PREFIX if request.path.startswith(f"{PREFIX}/") else "/api"


def _job_counts(counts: dict[str, int]) -> dict[str, int]:
    """Step counts by status as CyberImage's queue counts jobs (cancelled ones are failed)."""
    jobs = dict.fromkeys(("pending", "processing", "completed", "failed"), 0)
    for step_status, count in counts.items():
        jobs[_STATUS[step_status]] += count
    return {**jobs, "total": sum(jobs.values())}


def _settings(params: dict[str, Any], *, num_images: int, seed: int | None, negative_prompt: str) -> dict[str, Any]:
    """A step's or photo's parameters under CyberImage's settings names."""
    values: dict[str, Any] = {
        "num_images": num_images,
        "num_inference_steps": params.get("steps"),
        "guidance_scale": params.get("guidance", params.get("cfg_scale")),
        "height": params.get("height"),
        "width": params.get("width"),
        "seed": seed,
        "scheduler": params.get("scheduler"),
        "type": "image",
    }
    if negative_prompt:
        values["negative_prompt"] = negative_prompt
    return values


def _metadata(photo: Photo, alternative: StepAlternative | None, step: GenerationStep | None) -> dict[str, Any]:
    """An image's metadata as CyberImage stores it beside each image."""
    return {
        "model_id": photo.model_name,
        "prompt": photo.generation_prompt,
        "negative_prompt": photo.generation_negative_prompt or None,
        "settings": _settings(
            photo.generation_params,
            num_images=step.batch_size if step else 1,
            seed=photo.seed,
            negative_prompt=photo.generation_negative_prompt,
        ),
        "generation_time": photo.created_at.timestamp(),
        "image_number": alternative.index + 1 if alternative else 1,
        "total_images": step.batch_size if step else 1,
        "type": "image",
        "source": SOURCE,
        "job_id": str(step.pk) if step else None,
        "seed": photo.seed,
        "width": photo.width,
        "height": photo.height,
    }


def _image(
    request: Request, photo: Photo, alternative: StepAlternative | None, step: GenerationStep | None
) -> dict[str, Any]:
    url = f"{_base(request)}/get_image/{photo.pk}"
    return {
        "id": str(photo.pk),
        "job_id": str(step.pk) if step else None,
        # CyberImage's is a path under its image folder; here it is the image's URL, which clients can fetch.
        "file_path": url,
        "url": url,
        "thumbnail_url": f"{url}?size=small",
        "preview_url": f"{url}?size=medium",
        "created_at": photo.created_at,
        "metadata": _metadata(photo, alternative, step),
    }


# --- GET models ---


def _model_ids(models: list[CachedModel]) -> dict[str, CachedModel]:
    """Models keyed by the id CyberImage shows and sends back: the name, or the key for names used twice."""
    names = Counter(model.name for model in models)
    return {model.name if names[model.name] == 1 else model.key: model for model in models}


def _model(model: CachedModel) -> dict[str, Any]:
    low, high = graphs.GUIDANCE_RANGE if model.base == "flux" else graphs.CFG_RANGE
    return {
        "key": model.key,
        "name": model.name,
        "description": model.description or f"{models_cache.BASE_LABELS[model.base]} model in InvokeAI",
        "type": "image",
        "source": SOURCE,
        "provider": PROVIDER,
        "repo": model.source,
        "base": model.base,
        "is_favorite": model.is_favorite,
        "step_config": {
            **models_cache.model_step_options(model).as_dict(),
            "guidance": {"min": low, "max": high, "step": 0.5, "default": models_cache.model_guidance_default(model)},
        },
    }


class ModelsView(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT, summary="CyberImage: the models to generate with")
    def get(self, request: Request) -> Response:
        models = _model_ids(list(models_cache.generation_models()))
        preference = selectors.preference_get(user=request.user)
        last_used = next(
            (name for name, model in models.items() if preference and model.key == preference.model_key), None
        )
        return Response(
            {
                "models": {name: _model(model) for name, model in models.items()},
                "default": last_used or next(iter(models), None),
            }
        )


# --- POST generate ---


class SettingsSerializer(serializers.Serializer):
    """CyberImage's settings object, typed: a width of "abc" or 10**6 images is a 400 with the field's name."""

    num_images = serializers.IntegerField(required=False, source="batch_size")
    num_inference_steps = serializers.IntegerField(required=False, source="steps")
    guidance_scale = serializers.FloatField(required=False, source="cfg_scale")
    width = serializers.IntegerField(required=False)
    height = serializers.IntegerField(required=False)
    seed = serializers.IntegerField(required=False)
    scheduler = serializers.CharField(required=False)
    negative_prompt = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    type = serializers.ChoiceField(
        choices=["image"], required=False, error_messages={"invalid_choice": "Only image generation is offered here."}
    )

    def validate_num_images(self, value: int) -> int:
        if not 1 <= value <= settings.MAX_BATCH_SIZE:
            raise serializers.ValidationError(f"num_images must be between 1 and {settings.MAX_BATCH_SIZE}.")
        return value


class GenerateSerializer(serializers.Serializer):
    prompt = serializers.CharField(max_length=5000)
    model_id = serializers.CharField(required=False, max_length=255, help_text="A model id from models, or a key.")
    model = serializers.CharField(required=False, max_length=255, help_text="Another name for `model_id`.")
    negative_prompt = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, max_length=5000, default=""
    )
    settings = SettingsSerializer(required=False, help_text="CyberImage's settings object.")
    # The studio's flat names, for scripts written against this app: they win over `settings`.
    width = serializers.IntegerField(required=False)
    height = serializers.IntegerField(required=False)
    steps = serializers.IntegerField(required=False)
    cfg_scale = serializers.FloatField(required=False)
    scheduler = serializers.CharField(required=False)
    seed = serializers.IntegerField(required=False)
    batch_size = serializers.IntegerField(required=False, min_value=1)

    _FLAT = ("width", "height", "steps", "cfg_scale", "scheduler", "seed", "batch_size")

    def to_request(self) -> services.StepRequest:
        data = self.validated_data
        name = data.get("model_id") or data.get("model")
        if not name:
            raise serializers.ValidationError({"model_id": "Name the model (an id from GET models)."})
        model = models_cache.model_find(name=name)
        chosen = dict(data.get("settings", {}))
        negative_prompt = data["negative_prompt"] or chosen.pop("negative_prompt", "")
        chosen.pop("negative_prompt", None)
        chosen.pop("type", None)
        if model.base == "flux":
            # CyberImage's page sends its one negative prompt box to every model and its FLUX pipeline ignores it;
            # the studio's API refuses it for FLUX, so it is dropped here as CyberImage would.
            negative_prompt = ""
            if "cfg_scale" in chosen:
                # CyberImage's guidance_scale is what FLUX calls guidance; its CFG scale stays at the model's default.
                chosen["guidance"] = chosen.pop("cfg_scale")
        values = {**chosen, **{key: data[key] for key in self._FLAT if key in data}}
        return services.StepRequest(
            prompt=data["prompt"], negative_prompt=negative_prompt, model_key=model.key, **values
        )


class GenerateView(APIView):
    @extend_schema(request=GenerateSerializer, responses={202: OpenApiTypes.OBJECT}, summary="CyberImage: a new job")
    def post(self, request: Request) -> Response:
        form = GenerateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        step_request = form.to_request()
        # Refused (bad parameters, no InvokeAI to send to) before a session is made for it.
        services.step_validate(owner=request.user, request=step_request)
        user = signed_in(request.user)
        session = services.session_create(owner=user, title=step_request.prompt[:80])
        step = services.step_create(session_id=session.pk, owner=request.user, request=step_request)
        services.preference_remember(user=user, model_key=step.model_key, steps=step.parameters.get("steps"))
        status_url = f"{_base(request)}/status/{step.pk}"
        body: dict[str, object] = {
            "job_id": str(step.pk),
            "session_id": session.pk,
            "status": _STATUS[step.status],
            "num_images": step.batch_size,
            "status_url": status_url,
            # A cancel can overtake the request that makes the step: then the step says what became of it.
            "message": step.error_message
            if step.is_finished
            else f"Generating {step.batch_size} image(s) with {step.model_name}.",
        }
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": status_url})


# --- GET status/{job_id} ---


def _status_message(step: GenerationStep, done: int, position: int | None) -> str:
    if step.status == GenerationStep.Status.PENDING:
        return "Sending the job to InvokeAI..."
    if step.status == GenerationStep.Status.RUNNING:
        waiting = f" (queue position {position})" if position and position > 1 else ""
        return f"Generating image {min(done + 1, step.batch_size)} of {step.batch_size}{waiting}..."
    if step.status == GenerationStep.Status.COMPLETED:
        failed = f"; {step.images_failed} failed" if step.images_failed else ""
        return f"Generated {step.images_retrieved} of {step.batch_size} image(s){failed}."
    return _error_message(step, done)


def _error_message(step: GenerationStep, done: int) -> str:
    if step.status == GenerationStep.Status.CANCELLED:
        reason = step.error_message or "The job was cancelled."
        return f"{reason} {done} of {step.batch_size} image(s) had been made." if done else reason
    return step.error_message or "The job failed."


class JobStatusView(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT, summary="CyberImage: a job's status and images")
    def get(self, request: Request, job_id: str) -> Response:
        user_activity.send(sender=GenerationStep)
        step = selectors.step_with_alternatives(step_id=job_id, owner=request.user)
        done = len(step.item_results)
        progress = selectors.step_progress(step=step)
        position = selectors.step_queue_position(step=step)
        estimate = None
        if not step.is_finished:
            per_image = selectors.step_timings(owner=request.user, model_key=step.model_key).seconds_per_image
            estimate = round(per_image * (step.batch_size - done), 1) if per_image is not None else None
        failed = _STATUS[step.status] == "failed"
        images = [
            _image(request, alternative.photo, alternative, step)
            for alternative in step.alternatives.all()
            if alternative.photo.is_available and not alternative.photo.is_deleted
        ]
        return Response(
            {
                "id": str(step.pk),
                "job_id": str(step.pk),
                "session_id": step.session_id,
                "status": _STATUS[step.status],
                "status_message": _status_message(step, done, position),
                # CyberImage's page reads a number here; the app's own step API has the whole progress object.
                "progress": progress.percent,
                "queue_position": position,
                "estimated_processing_time_seconds": estimate,
                "error_message": _error_message(step, done) if failed else None,
                "message": _error_message(step, done) if failed else f"{done} of {step.batch_size} image(s) finished.",
                "model_id": step.model_name,
                "prompt": step.prompt,
                "negative_prompt": step.negative_prompt or None,
                "settings": _settings(
                    step.parameters, num_images=step.batch_size, seed=step.seed, negative_prompt=step.negative_prompt
                ),
                "num_images": step.batch_size,
                "images_completed": step.images_retrieved,
                "images_failed": step.images_failed,
                "created_at": step.created_at,
                "started_at": step.started_at,
                "completed_at": step.completed_at,
                "live_items": [asdict(item) for item in progress.items],
                "images": images,
            }
        )


# --- images: get_image/{id}, image/{id}/metadata, DELETE image/{id}, gallery ---


def _live_photo(request: Request, image_id: str) -> Photo:
    # Deleted is gone for CyberImage's clients, as in CyberImage (the app's own API still reaches the trash).
    return photo_selectors.photo_get(photo_id=image_id, owner=request.user)


def _step_of(photo: Photo) -> tuple[StepAlternative | None, GenerationStep | None]:
    alternative = selectors.alternatives_of_photos(photo_ids=[photo.pk]).get(photo.pk)
    return alternative, alternative.step if alternative else None


class GetImageView(FileAnswers):
    @extend_schema(
        parameters=[OpenApiParameter("size", str, enum=["small", "medium", "original"], required=False)],
        responses={(200, "image/*"): OpenApiTypes.BINARY},
        summary="CyberImage: an image's file (`size=small`: its thumbnail)",
    )
    def get(self, request: Request, image_id: str) -> HttpResponseBase:
        size = request.query_params.get("size", "")
        if size not in _SIZES:
            raise InvalidInput("size must be small, medium or original.", code="invalid_parameter")
        return serve_photo_variant(request, _live_photo(request, image_id), _SIZES[size])


class ImageMetadataView(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT, summary="CyberImage: an image's metadata")
    def get(self, request: Request, image_id: str) -> Response:
        photo = _live_photo(request, image_id)
        return Response({"id": str(photo.pk), **_metadata(photo, *_step_of(photo))})


class ImageView(FileAnswers):
    """`GET image/{id}` is the file (this app's addition, kept for scripts); `DELETE` moves it to the trash."""

    @extend_schema(responses={(200, "image/*"): OpenApiTypes.BINARY}, summary="An image's original file")
    def get(self, request: Request, image_id: str) -> HttpResponseBase:
        return serve_photo_variant(request, _live_photo(request, image_id), "original")

    @extend_schema(responses=OpenApiTypes.OBJECT, summary="CyberImage: delete an image (to the trash)")
    def delete(self, request: Request, image_id: str) -> Response:
        photo_services.photo_delete(photo_id=_live_photo(request, image_id).pk, owner=request.user)
        return Response(
            {
                "status": "success",
                "message": f"Image deleted: it stays in the trash for {settings.TRASH_DAYS} days, to be restored.",
            }
        )


class GalleryQuerySerializer(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, max_value=MAX_OFFSET // MAX_PER_PAGE, default=1)
    per_page = serializers.IntegerField(min_value=1, max_value=MAX_PER_PAGE, required=False)
    limit = serializers.IntegerField(
        min_value=1, max_value=MAX_PER_PAGE, required=False, help_text="CyberImage's API name for `per_page`."
    )


class GalleryView(APIView):
    @extend_schema(parameters=[GalleryQuerySerializer], responses=OpenApiTypes.OBJECT, summary="CyberImage: gallery")
    def get(self, request: Request) -> Response:
        query = GalleryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        page_number = query.validated_data["page"]
        per_page = query.validated_data.get("per_page") or query.validated_data.get("limit") or 20
        page = photo_selectors.photo_list(
            owner=request.user, generated=True, limit=per_page, offset=(page_number - 1) * per_page
        )
        alternatives = selectors.alternatives_of_photos(photo_ids=[photo.pk for photo in page.items])
        images = []
        for photo in page.items:
            alternative = alternatives.get(photo.pk)
            image = _image(request, photo, alternative, alternative.step if alternative else None)
            images.append(
                {
                    **image,
                    "prompt": photo.generation_prompt,
                    "model_id": photo.model_name,
                    "settings": image["metadata"]["settings"],
                    "media_type": "image",
                }
            )
        return Response(
            {
                "images": images,
                "page": page_number,
                "per_page": per_page,
                "limit": per_page,
                "total": page.total,
                "total_pages": -(-page.total // per_page),
                "has_more": page.total > page_number * per_page,
            }
        )


# --- GET queue ---


class QueueView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("detailed", bool, required=False)],
        responses=OpenApiTypes.OBJECT,
        summary="CyberImage: the queue's counts (`detailed=true`: the last 24 hours too)",
    )
    def get(self, request: Request) -> Response:
        # The account's own jobs: other accounts' prompts are theirs. InvokeAI's counts are everyone's work.
        counts = _job_counts(selectors.step_status_counts(owner=request.user))
        steps = list(owned_by(selectors.steps_in_flight(), request.user, via="session__owner"))
        body: dict[str, Any] = {
            **counts,
            "queue_size": counts["pending"] + counts["processing"],
            "jobs": [
                {
                    "job_id": str(step.pk),
                    "session_id": step.session_id,
                    "status": _STATUS[step.status],
                    "progress": step.progress,
                    "prompt": step.prompt,
                    "model_id": step.model_name,
                    "backend_url": step.backend_url,
                }
                for step in steps
            ],
        }
        if request.query_params.get("detailed", "false").lower() == "true":
            body.update(self._detailed(request, counts))
        try:
            queue = manager.invokeai_client().queue_status()
        except AppError as exc:
            body["invokeai"] = None
            body["invokeai_error"] = exc.message
        else:
            body["invokeai"] = asdict(queue)
        return Response(body)

    def _detailed(self, request: Request, counts: dict[str, int]) -> dict[str, Any]:
        since = timezone.now() - _RECENT
        by_model = selectors.step_status_counts_by_model(owner=request.user, since=since)
        seconds = selectors.step_timings(owner=request.user, since=since, sample=200).seconds_per_step
        ended = counts["completed"] + counts["failed"]
        return {
            "recent_24h": _job_counts(selectors.step_status_counts(owner=request.user, since=since)),
            "avg_processing_time_seconds": round(seconds or 0, 2),
            "models": {name: _job_counts(model_counts) for name, model_counts in by_model.items()},
            "failure_rate": round(counts["failed"] / ended * 100, 2) if ended else 0,
        }


_UUID = r"(?P<image_id>[0-9a-fA-F-]{32,36})"

# Served under both prefixes.
urlpatterns = [
    re_path(r"^generate/?$", GenerateView.as_view(), name="cyberimage-generate"),
    re_path(r"^status/(?P<job_id>\d+)/?$", JobStatusView.as_view(), name="cyberimage-status"),
    re_path(rf"^get_image/{_UUID}/?$", GetImageView.as_view(), name="cyberimage-get-image"),
    re_path(rf"^image/{_UUID}/metadata/?$", ImageMetadataView.as_view(), name="cyberimage-image-metadata"),
    re_path(rf"^image/{_UUID}/?$", ImageView.as_view(), name="cyberimage-image"),
    re_path(r"^gallery/?$", GalleryView.as_view(), name="cyberimage-gallery"),
    re_path(r"^queue/?$", QueueView.as_view(), name="cyberimage-queue"),
]
# `/api/models` is the app's own model list; CyberImage's shape of it is only under the prefix.
prefixed_urlpatterns = [
    re_path(r"^models/?$", ModelsView.as_view(), name="cyberimage-models"),
    *urlpatterns,
]


def schema_endpoints(endpoints: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """drf-spectacular's preprocessing hook: a view served under both prefixes is documented (and fuzzed) once,
    under `/api/`; the README says the prefix serves them all."""

    def twin(path: str, method: str, callback: Any) -> tuple[str, str, Any]:
        return path.replace(f"{PREFIX}/", "/api/", 1), method, getattr(callback, "cls", callback)

    plain = {twin(path, method, callback) for path, _, method, callback in endpoints if path.startswith("/api/")}
    return [
        (path, regex, method, callback)
        for path, regex, method, callback in endpoints
        if not path.startswith(f"{PREFIX}/") or twin(path, method, callback) not in plain
    ]
