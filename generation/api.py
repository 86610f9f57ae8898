"""The generation API: the model cache, the studio's sessions and steps, and CyberImage's script surface.

Thin views: parse with a serializer, call a service or selector, render. Errors are the services' AppErrors.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.http import HttpResponseBase
from django.urls import re_path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backends import manager
from backends.signals import user_activity
from gallery_project.errors import AppError
from gallery_project.permissions import IsStaff, owned_by, signed_in
from photos import selectors as photo_selectors
from photos.api import PhotoViewSet, serve_photo_file
from photos.models import Photo
from photos.serializers import PhotoSerializer

from . import models_cache, retrieval, selectors, services
from .models import CachedModel, GenerationSession, GenerationStep
from .serializers import (
    CachedModelSerializer,
    ModelListQuerySerializer,
    ModelUpdateSerializer,
    RefreshResultSerializer,
    RetriedSerializer,
    SessionCreateSerializer,
    SessionDetailSerializer,
    SessionListQuerySerializer,
    SessionSerializer,
    SessionUpdateSerializer,
    StepAcceptedSerializer,
    StepCreateSerializer,
    StepSelectSerializer,
    StepSerializer,
    photo_url,
)


class CachedModelViewSet(viewsets.GenericViewSet):
    serializer_class = CachedModelSerializer
    queryset = CachedModel.objects.none()
    lookup_field = "key"

    def get_permissions(self):
        # Everyone reads the model list to generate; what it holds and how it is set up is the staff's.
        if self.action in ("list", "retrieve"):
            return super().get_permissions()
        return [*super().get_permissions(), IsStaff()]

    @extend_schema(parameters=[ModelListQuerySerializer])
    def list(self, request: Request) -> Response:
        query = ModelListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        models = models_cache.model_list(
            model_type=query.validated_data["type"] or None,
            base=query.validated_data["base"] or None,
            include_unavailable=query.validated_data["include_unavailable"],
        )
        return Response(CachedModelSerializer(models, many=True).data)

    def retrieve(self, request: Request, key: str) -> Response:
        return Response(CachedModelSerializer(models_cache.model_get(key=key)).data)

    @extend_schema(request=ModelUpdateSerializer)
    def partial_update(self, request: Request, key: str) -> Response:
        form = ModelUpdateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        model = models_cache.model_update(key=key, **form.validated_data)
        return Response(CachedModelSerializer(model).data)

    @extend_schema(request=None, responses=RefreshResultSerializer)
    @action(detail=False, methods=["post"])
    def refresh(self, request: Request) -> Response:
        return Response(RefreshResultSerializer(models_cache.models_refresh()).data)


# --- the studio: sessions and steps (spec section 5.2) ---


def _step_body(request: Request, step_id: int | str) -> dict[str, Any]:
    return StepSerializer(selectors.step_with_alternatives(step_id=step_id, owner=request.user)).data


def _remember(request: Request, step: GenerationStep) -> None:
    services.preference_remember(
        user=signed_in(request.user), model_key=step.model_key, steps=step.parameters.get("steps")
    )


class GenerationSessionViewSet(viewsets.GenericViewSet):
    serializer_class = SessionSerializer
    queryset = GenerationSession.objects.none()
    lookup_value_regex = r"\d+"

    @extend_schema(parameters=[SessionListQuerySerializer])
    def list(self, request: Request) -> Response:
        query = SessionListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        sessions = selectors.session_list(owner=request.user, **query.validated_data)
        return Response(SessionSerializer(sessions, many=True).data)

    @extend_schema(request=SessionCreateSerializer, responses={201: SessionDetailSerializer})
    def create(self, request: Request) -> Response:
        form = SessionCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        session = services.session_create(
            owner=signed_in(request.user),
            source_photo_id=form.validated_data.get("source_image_id"),
            title=form.validated_data["title"],
        )
        return Response(SessionDetailSerializer(session).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=SessionDetailSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(SessionDetailSerializer(selectors.session_get(session_id=pk, owner=request.user)).data)

    @extend_schema(request=SessionUpdateSerializer, responses=SessionDetailSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        form = SessionUpdateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        session = services.session_update(session_id=int(pk), owner=request.user, **form.validated_data)
        return Response(SessionDetailSerializer(session).data)

    @extend_schema(request=StepCreateSerializer, responses={202: StepAcceptedSerializer})
    @action(detail=True, methods=["post"])
    def steps(self, request: Request, pk: str) -> Response:
        form = StepCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        step = services.step_create(session_id=int(pk), owner=request.user, request=form.to_request())
        _remember(request, step)
        body = StepAcceptedSerializer(
            {**_step_body(request, step.pk), "status_url": f"/api/generation/steps/{step.pk}/status"}
        ).data
        # 202: the images are still being made; the status URL follows them.
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": str(body["status_url"])})


class GenerationStepViewSet(viewsets.GenericViewSet):
    serializer_class = StepSerializer
    queryset = GenerationStep.objects.none()
    lookup_value_regex = r"\d+"

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(_step_body(request, pk))

    @extend_schema(responses=StepSerializer)
    @action(detail=True, methods=["get"])
    def status(self, request: Request, pk: str) -> Response:
        user_activity.send(sender=GenerationStep)
        return Response(_step_body(request, pk))

    @extend_schema(request=StepSelectSerializer, responses=StepSerializer)
    @action(detail=True, methods=["post"])
    def select(self, request: Request, pk: str) -> Response:
        form = StepSelectSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        services.alternative_select(step_id=int(pk), owner=request.user, photo_id=form.validated_data["image_id"])
        return Response(_step_body(request, pk))

    @extend_schema(request=None, responses=RetriedSerializer)
    @action(detail=True, methods=["post"], url_path="retry-retrievals")
    def retry_retrievals(self, request: Request, pk: str) -> Response:
        step = selectors.step_get(step_id=pk, owner=request.user)
        stored = retrieval.step_retrievals_retry(step_id=step.pk)
        return Response({"stored": stored, "step": _step_body(request, step.pk)})

    @extend_schema(request=None, responses=StepSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        step = services.step_cancel(step_id=int(pk), owner=request.user)
        return Response(_step_body(request, step.pk))


class PhotoRetrievalViewSet(viewsets.GenericViewSet):
    """`POST /api/photos/{id}/retry/`: lives here because downloading again needs the step the photo came from."""

    serializer_class = PhotoSerializer
    queryset = Photo.objects.none()
    lookup_value_regex = PhotoViewSet.lookup_value_regex

    @extend_schema(request=None, responses={200: PhotoSerializer, 409: OpenApiResponse(description="Nothing to retry")})
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str) -> Response:
        return Response(PhotoSerializer(retrieval.photo_retrieval_retry(photo_id=pk, owner=request.user)).data)


# --- CyberImage's simple surface, for scripts: one call makes a one-step session ---

_CYBERIMAGE_STATUS: dict[str, str] = {
    GenerationStep.Status.PENDING: "pending",
    GenerationStep.Status.RUNNING: "processing",
    GenerationStep.Status.COMPLETED: "completed",
    GenerationStep.Status.FAILED: "failed",
    GenerationStep.Status.CANCELLED: "cancelled",
}


class CyberImageSettingsSerializer(serializers.Serializer):
    """CyberImage's settings object: typed like the flat fields, so a size of "abc" is a 400, not a crash."""

    num_images = serializers.IntegerField(required=False, source="batch_size")
    num_inference_steps = serializers.IntegerField(required=False, source="steps")
    guidance_scale = serializers.FloatField(required=False, source="cfg_scale")
    width = serializers.IntegerField(required=False)
    height = serializers.IntegerField(required=False)
    seed = serializers.IntegerField(required=False)
    scheduler = serializers.CharField(required=False)


class GenerateSerializer(serializers.Serializer):
    prompt = serializers.CharField(max_length=5000)
    model = serializers.CharField(required=False, help_text="A model key or name from /api/models/.")
    model_id = serializers.CharField(required=False, help_text="CyberImage's name for `model`.")
    negative_prompt = serializers.CharField(required=False, allow_blank=True, allow_null=True, default="")
    settings = CyberImageSettingsSerializer(required=False, help_text="CyberImage's settings object.")
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
        name = data.get("model") or data.get("model_id")
        if not name:
            raise serializers.ValidationError({"model": "Name the model (a key or name from /api/models/)."})
        model = models_cache.model_find(name=name)
        # The flat fields win over the same values in `settings`.
        values = {**data.get("settings", {}), **{key: data[key] for key in self._FLAT if key in data}}
        return services.StepRequest(
            prompt=data["prompt"], negative_prompt=data["negative_prompt"] or "", model_key=model.key, **values
        )


class GenerateView(APIView):
    @extend_schema(request=GenerateSerializer, responses={202: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        form = GenerateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        step_request = form.to_request()
        # Refused (bad parameters, no InvokeAI to send to) before a session is made for it.
        services.step_validate(owner=request.user, request=step_request)
        session = services.session_create(owner=signed_in(request.user), title=step_request.prompt[:80])
        step = services.step_create(session_id=session.pk, owner=request.user, request=step_request)
        _remember(request, step)
        body: dict[str, object] = {
            "job_id": str(step.pk),
            "session_id": session.pk,
            "status": _CYBERIMAGE_STATUS[step.status],
            "num_images": len(step.item_ids),
            "status_url": f"/api/status/{step.pk}",
            # A cancel can overtake the request that makes the step: then the step says what became of it.
            "message": step.error_message
            if step.is_finished
            else f"Generating {len(step.item_ids)} image(s) with {step.model_name}.",
        }
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": str(body["status_url"])})


class JobStatusView(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, job_id: str) -> Response:
        user_activity.send(sender=GenerationStep)
        step = selectors.step_with_alternatives(step_id=job_id, owner=request.user)
        done = len(step.item_results)
        images = [
            {
                "id": str(alternative.photo_id),
                "url": f"/api/image/{alternative.photo_id}",
                "thumbnail_url": photo_url(alternative.photo_id, "thumbnail"),
                "seed": alternative.photo.seed,
                "created_at": alternative.photo.created_at,
                "metadata": {"model_id": step.model_name, "prompt": step.prompt, "settings": step.parameters},
            }
            for alternative in step.alternatives.all()
            if alternative.photo.is_available
        ]
        return Response(
            {
                "id": str(step.pk),
                "job_id": str(step.pk),
                "session_id": step.session_id,
                "status": _CYBERIMAGE_STATUS[step.status],
                "model_id": step.model_name,
                "prompt": step.prompt,
                "negative_prompt": step.negative_prompt or None,
                "settings": step.parameters,
                "created_at": step.created_at,
                "started_at": step.started_at,
                "completed_at": step.completed_at,
                "message": step.error_message or f"{done} of {len(step.item_ids)} image(s) finished.",
                "progress": {
                    "completed": step.status == GenerationStep.Status.COMPLETED,
                    "failed": step.status == GenerationStep.Status.FAILED,
                    "percent": step.progress,
                    "step": done,
                    "total_steps": len(step.item_ids),
                },
                "images": images,
            }
        )


class JobImageView(APIView):
    @extend_schema(responses={(200, "image/png"): OpenApiTypes.BINARY})
    def get(self, request: Request, image_id: str) -> HttpResponseBase:
        photo = photo_selectors.photo_get(photo_id=image_id, owner=request.user, include_deleted=True)
        return serve_photo_file(request, photo, photo.local_storage_path, photo.mime_type, "original")


class QueueView(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        # Our own steps: other accounts' prompts are theirs. InvokeAI's counts are everyone's work.
        steps = list(owned_by(selectors.steps_in_flight(), request.user, via="session__owner"))
        body: dict[str, Any] = {
            "pending": sum(step.status == GenerationStep.Status.PENDING for step in steps),
            "processing": sum(step.status == GenerationStep.Status.RUNNING for step in steps),
            "jobs": [
                {
                    "job_id": str(step.pk),
                    "session_id": step.session_id,
                    "status": _CYBERIMAGE_STATUS[step.status],
                    "progress": step.progress,
                    "prompt": step.prompt,
                    "backend_url": step.backend_url,
                }
                for step in steps
            ],
        }
        try:
            queue = manager.invokeai_client().queue_status()
        except AppError as exc:
            body["invokeai"] = None
            body["invokeai_error"] = exc.message
        else:
            body["invokeai"] = asdict(queue)
        return Response(body)


cyberimage_urlpatterns = [
    re_path(r"^generate/?$", GenerateView.as_view(), name="cyberimage-generate"),
    re_path(r"^status/(?P<job_id>\d+)/?$", JobStatusView.as_view(), name="cyberimage-status"),
    re_path(r"^image/(?P<image_id>[0-9a-fA-F-]{32,36})/?$", JobImageView.as_view(), name="cyberimage-image"),
    re_path(r"^queue/?$", QueueView.as_view(), name="cyberimage-queue"),
]
