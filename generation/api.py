"""The generation API: the model cache and the studio's sessions and steps (CyberImage's is in cyberimage_api).

Thin views: parse with a serializer, call a service or selector, render. Errors are the services' AppErrors.
"""

from __future__ import annotations

from typing import Any

from django.http import FileResponse, HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from backends.signals import user_activity
from gallery_project.errors import NotFound
from gallery_project.permissions import IsStaff, signed_in
from photos import storage
from photos.api import PhotoViewSet
from photos.models import Photo
from photos.serializers import PhotoSerializer

from . import model_installs, models_cache, presets, retrieval, selectors, services
from .models import CachedModel, GenerationSession, GenerationStep, ModelInstall, Preset
from .serializers import (
    CachedModelSerializer,
    InstallCreateSerializer,
    ModelInstallSerializer,
    ModelListQuerySerializer,
    ModelUpdateSerializer,
    PresetSerializer,
    RefreshResultSerializer,
    RetriedSerializer,
    SessionCreateSerializer,
    SessionDetailSerializer,
    SessionListQuerySerializer,
    SessionSerializer,
    SessionUpdateSerializer,
    StepAcceptedSerializer,
    StepCheckSerializer,
    StepCreateSerializer,
    StepSelectSerializer,
    StepSerializer,
)


class CachedModelViewSet(viewsets.GenericViewSet):
    serializer_class = CachedModelSerializer
    queryset = CachedModel.objects.none()
    lookup_field = "key"

    def get_permissions(self):
        # Everyone reads the model list to generate; what it holds and how it is set up is the staff's.
        if self.action in ("list", "retrieve", "components"):
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

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, key: str) -> Response:
        """Uninstall the model from InvokeAI; 409 while a preset or a running step uses it."""
        model_installs.model_uninstall(key=key)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def components(self, request: Request, key: str) -> Response:
        """The models of the main model's base, by type (vae, lora, embedding, controlnet, ..., refiner)."""
        components = models_cache.model_components(key=key)
        return Response({kind: CachedModelSerializer(models, many=True).data for kind, models in components.items()})

    @extend_schema(request=None, responses=RefreshResultSerializer)
    @action(detail=False, methods=["post"])
    def refresh(self, request: Request) -> Response:
        return Response(RefreshResultSerializer(models_cache.models_refresh()).data)


class ModelInstallViewSet(viewsets.GenericViewSet):
    """Installs into the InvokeAI in use: start one, watch it (each read asks InvokeAI how it is doing)."""

    serializer_class = ModelInstallSerializer
    queryset = ModelInstall.objects.none()
    lookup_value_regex = r"\d+"

    def get_permissions(self):
        return [*super().get_permissions(), IsStaff()]

    def list(self, request: Request) -> Response:
        installs = model_installs.install_list(owner=request.user)[:50]
        return Response(ModelInstallSerializer(installs, many=True).data)

    @extend_schema(request=InstallCreateSerializer, responses={202: ModelInstallSerializer})
    def create(self, request: Request) -> Response:
        form = InstallCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        install = model_installs.install_start(owner=signed_in(request.user), **form.validated_data)
        return Response(ModelInstallSerializer(install).data, status=status.HTTP_202_ACCEPTED)

    def retrieve(self, request: Request, pk: str) -> Response:
        install = model_installs.install_get(install_id=pk, owner=request.user)
        install = model_installs.install_poll(install_id=install.pk)
        return Response(ModelInstallSerializer(install).data)


class PresetViewSet(viewsets.GenericViewSet):
    """Your presets: a main model with its components and defaults, checked against the model cache."""

    serializer_class = PresetSerializer
    queryset = Preset.objects.none()
    lookup_value_regex = r"\d+"

    def list(self, request: Request) -> Response:
        listed = list(presets.preset_list(owner=request.user))
        context = {"problems": presets.presets_problems(listed)}
        return Response(PresetSerializer(listed, many=True, context=context).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(PresetSerializer(presets.preset_get(preset_id=pk, owner=request.user)).data)

    @extend_schema(responses={201: PresetSerializer})
    def create(self, request: Request) -> Response:
        form = PresetSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        preset = presets.preset_create(owner=signed_in(request.user), **form.values())
        return Response(PresetSerializer(preset).data, status=status.HTTP_201_CREATED)

    def _update(self, request: Request, pk: str, *, partial: bool) -> Response:
        form = PresetSerializer(data=request.data, partial=partial)
        form.is_valid(raise_exception=True)
        # PUT replaces the whole preset: what it leaves out is unset.
        values = form.values() if partial else {**presets.FIELDS, **form.values()}
        preset = presets.preset_update(preset_id=int(pk), owner=request.user, **values)
        return Response(PresetSerializer(preset).data)

    def update(self, request: Request, pk: str) -> Response:
        return self._update(request, pk, partial=False)

    def partial_update(self, request: Request, pk: str) -> Response:
        return self._update(request, pk, partial=True)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, pk: str) -> Response:
        presets.preset_delete(preset_id=int(pk), owner=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- the studio: sessions and steps (spec section 5.2) ---


def _step_body(request: Request, step_id: int | str) -> dict[str, Any]:
    return StepSerializer(selectors.step_with_alternatives(step_id=step_id, owner=request.user)).data


def step_accepted(request: Request, step: GenerationStep) -> Response:
    """202 with the step: its images are still being made, and its status URL follows them."""
    body = StepAcceptedSerializer(
        {
            **_step_body(request, step.pk),
            "status_url": f"/api/generation/steps/{step.pk}/status",
            "warnings": step.parameters.get("warnings", []),
        }
    ).data
    return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": str(body["status_url"])})


def _remember(request: Request, step: GenerationStep) -> None:
    services.preference_remember(
        user=signed_in(request.user), model_key=step.model_key, steps=step.parameters.get("steps")
    )


STEP_EXAMPLES = [
    OpenApiExample(
        "SD 1.5 with two LoRAs, an embedding and clip skip",
        request_only=True,
        value={
            "prompt": "a lighthouse at dusk, <tiny-sd1-ti>",
            "negative_prompt": "blurry",
            "model_key": "<key of an sd-1 main model>",
            "loras": [{"key": "<lora key>", "weight": 0.75}, {"key": "<another lora key>"}],
            "clip_skip": 1,
            "seamless": {"x": True, "y": False},
        },
    ),
    OpenApiExample(
        "SDXL with its refiner",
        request_only=True,
        value={
            "prompt": "a lighthouse at dusk",
            "model_key": "<key of an sdxl main model>",
            "refiner": {
                "key": "<key of an sdxl-refiner model>",
                "start": 0.8,
                "steps": 20,
                "cfg_scale": 7.5,
                "scheduler": "euler",
                "aesthetic_score": 6,
                "negative_aesthetic_score": 2.5,
            },
        },
    ),
    OpenApiExample(
        "A canny ControlNet from a gallery photo",
        request_only=True,
        value={
            "prompt": "a lighthouse at dusk",
            "model_key": "<key of an sd-1 main model>",
            "controlnets": [
                {
                    "key": "<controlnet key>",
                    "photo_id": "<photo id>",
                    "preprocessor": "canny_edge_detection",
                    "weight": 1.0,
                    "begin": 0.0,
                    "end": 1.0,
                    "control_mode": "balanced",
                    "resize_mode": "just_resize",
                }
            ],
        },
    ),
    OpenApiExample(
        "Outpaint 64 px to the right of a photo",
        request_only=True,
        value={
            "prompt": "the rest of the coast",
            "model_key": "<key of a main model>",
            "mode": "outpaint",
            "init_photo_id": "<photo id>",
            "outpaint": {"left": 0, "right": 64, "top": 0, "bottom": 0, "infill": "tile"},
        },
    ),
    OpenApiExample(
        "Outpaint a photo to 16:9 (the padding is worked out, centred)",
        request_only=True,
        value={
            "prompt": "the rest of the coast",
            "model_key": "<key of a main model>",
            "mode": "outpaint",
            "init_photo_id": "<photo id>",
            "outpaint": {"aspect_ratio": "16:9", "infill": "tile"},
        },
    ),
    OpenApiExample(
        "Upscale a photo",
        request_only=True,
        value={"mode": "upscale", "init_photo_id": "<photo id>", "upscaler_key": "<spandrel model key>"},
    ),
    OpenApiExample(
        "FLUX schnell (no negative prompt; sizes in multiples of 16)",
        request_only=True,
        value={
            "prompt": "a lighthouse at dusk",
            "model_key": "<key of a flux main model>",
            "width": 256,
            "height": 256,
        },
    ),
]


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

    @extend_schema(request=StepCreateSerializer, responses={202: StepAcceptedSerializer}, examples=STEP_EXAMPLES)
    @action(detail=True, methods=["post"])
    def steps(self, request: Request, pk: str) -> Response:
        form = StepCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        step = services.step_create(session_id=int(pk), owner=request.user, request=form.to_request())
        _remember(request, step)
        return step_accepted(request, step)


RUNNING_STEP_EXAMPLE = OpenApiExample(
    "A running step: its second image denoising (step 5 of 8), the first made",
    response_only=True,
    value={
        "id": 42,
        "status": "running",
        "progress": {
            "percent": 31,
            "images_finished": 1,
            "images_total": 4,
            "items": [
                {
                    "item_id": 118,
                    "index": 1,
                    "percent": 62,
                    "message": "Denoising",
                    "preview_url": "/api/generation/steps/42/previews/118?v=1767225600123",
                }
            ],
        },
        "items": [{"item_id": 117, "status": "completed", "seed": 1234, "image_name": "<InvokeAI image name>"}],
        "images_retrieved": 1,
        "images_failed": 0,
        "status_url": "/api/generation/steps/42/status",
    },
)


class GenerationStepViewSet(viewsets.GenericViewSet):
    serializer_class = StepSerializer
    queryset = GenerationStep.objects.none()
    lookup_value_regex = r"\d+"

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(_step_body(request, pk))

    @extend_schema(
        request=StepCreateSerializer,
        responses={200: StepCheckSerializer},
        examples=STEP_EXAMPLES,
        description="Check a step's body as POST …/sessions/{id}/steps/ would, recording and sending nothing: 400 "
        "naming the field it would refuse, else its warnings (an <embedding> in a prompt that matches no installed "
        "embedding of the model's base, which InvokeAI would read as plain text without a word).",
    )
    @action(detail=False, methods=["post"])
    def check(self, request: Request) -> Response:
        form = StepCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        warnings = services.step_validate(owner=request.user, request=form.to_request())
        return Response(StepCheckSerializer({"warnings": warnings}).data)

    @extend_schema(responses=StepSerializer, examples=[RUNNING_STEP_EXAMPLE])
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

    @extend_schema(responses={(200, "image/jpeg"): OpenApiTypes.BINARY, 404: OpenApiResponse(description="No preview")})
    @action(detail=True, methods=["get"], url_path=r"previews/(?P<item_id>\d{1,18})")
    def preview(self, request: Request, pk: str, item_id: str) -> HttpResponseBase:
        """The latest denoising preview of a running item (`progress.items[].preview_url`)."""
        step = selectors.step_get(step_id=pk, owner=request.user)
        try:
            handle, _ = storage.open_stream(storage.preview_path(step.pk, int(item_id)))
        except FileNotFoundError:
            raise NotFound(
                "This item has no preview: it has not started denoising, or it has finished.", code="no_preview"
            ) from None
        response = FileResponse(handle, content_type="image/jpeg")
        # Each preview has its own URL (`?v=`); an old one may be kept a little while.
        response["Cache-Control"] = "private, max-age=60"
        response["X-Content-Type-Options"] = "nosniff"
        return response

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
