"""The backend API: status, mode, pod start and stop, session history. Thin: parse, call a service, render.

Staff only, but for the status, which every account reads in brief (gallery_project.permissions).
"""

from __future__ import annotations

from django.urls import re_path
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from gallery_project.permissions import IsStaff, is_staff

from . import pods, selectors, services
from .serializers import (
    BackendCreateSerializer,
    BackendSerializer,
    BackendStatusBriefSerializer,
    BackendStatusSerializer,
    BackendUpdateSerializer,
    ModeResultSerializer,
    ModeSerializer,
    PageQuerySerializer,
    PodSessionPageSerializer,
    PodSessionSerializer,
    PodStartSerializer,
)


def _session_body(session) -> dict:
    return PodSessionSerializer(session, context={"now": timezone.now()}).data


class BackendStatusApi(APIView):
    @extend_schema(
        responses=BackendStatusSerializer,
        description="For staff; other accounts get only whether generating can work now (BackendStatusBrief).",
    )
    def get(self, request: Request) -> Response:
        serializer = BackendStatusSerializer if is_staff(request.user) else BackendStatusBriefSerializer
        return Response(serializer(selectors.backend_status()).data)


class StaffApi(APIView):
    permission_classes = [*APIView.permission_classes, IsStaff]


class BackendModeApi(StaffApi):
    @extend_schema(request=ModeSerializer, responses=ModeResultSerializer)
    def post(self, request: Request) -> Response:
        form = ModeSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        message = services.backend_mode_set(mode=form.validated_data["mode"])
        return Response(BackendStatusSerializer(selectors.backend_status()).data | {"message": message})


class PodStartApi(StaffApi):
    @extend_schema(
        request=PodStartSerializer,
        responses={
            202: PodSessionSerializer,
            409: OpenApiResponse(description="No API key, a pod already active, or the budget spent"),
            503: OpenApiResponse(description="No capacity (details.alternatives lists other GPU types)"),
        },
    )
    def post(self, request: Request) -> Response:
        form = PodStartSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        session = pods.pod_start(**form.validated_data)
        return Response(_session_body(session), status=status.HTTP_202_ACCEPTED)


class PodStopApi(StaffApi):
    @extend_schema(request=None, responses={202: PodSessionSerializer, 409: OpenApiResponse(description="No pod")})
    def post(self, request: Request) -> Response:
        session = pods.pod_stop()
        code = status.HTTP_200_OK if not session.is_active else status.HTTP_202_ACCEPTED
        return Response(_session_body(session), status=code)


class PodSessionStopApi(StaffApi):
    @extend_schema(
        request=None,
        responses={
            202: PodSessionSerializer,
            200: PodSessionSerializer,
            404: OpenApiResponse(description="No such pod session"),
            409: OpenApiResponse(description="That pod is already stopped (or its start failed)"),
        },
        description="Stop one pod of several (`backend/pod/stop` stops the latest). 202 while RunPod has not "
        "confirmed the stop, 200 once it has.",
    )
    def post(self, request: Request, session_id: str) -> Response:
        session = pods.pod_stop(session_id=int(session_id))
        code = status.HTTP_200_OK if not session.is_active else status.HTTP_202_ACCEPTED
        return Response(_session_body(session), status=code)


class PodSessionListApi(StaffApi):
    @extend_schema(parameters=[PageQuerySerializer], responses=PodSessionPageSerializer)
    def get(self, request: Request) -> Response:
        query = PageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        sessions, total = selectors.pod_session_list(**query.validated_data)
        body = {"items": sessions, "total": total, **query.validated_data}
        return Response(PodSessionPageSerializer(body, context={"now": timezone.now()}).data)


class BackendListApi(StaffApi):
    @extend_schema(responses=BackendSerializer(many=True), description="The added InvokeAI backends.")
    def get(self, request: Request) -> Response:
        return Response(BackendSerializer(selectors.backend_list(), many=True).data)

    @extend_schema(
        request=BackendCreateSerializer,
        responses={
            201: BackendSerializer,
            400: OpenApiResponse(description="A URL the app does not send requests to, or no name"),
            409: OpenApiResponse(description="That URL is already a backend"),
        },
        description="Add an InvokeAI that takes new steps beside the one in use; its status is checked at once.",
    )
    def post(self, request: Request) -> Response:
        form = BackendCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        backend = services.backend_add(**form.validated_data)
        return Response(BackendSerializer(backend).data, status=status.HTTP_201_CREATED)


class BackendDetailApi(StaffApi):
    @extend_schema(responses=BackendSerializer)
    def get(self, request: Request, backend_id: str) -> Response:
        return Response(BackendSerializer(services.backend_get(backend_id=int(backend_id))).data)

    @extend_schema(
        request=BackendUpdateSerializer,
        responses=BackendSerializer,
        description="Rename it, or stop (`enabled: false`) sending it new steps; its running steps finish there.",
    )
    def patch(self, request: Request, backend_id: str) -> Response:
        form = BackendUpdateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        backend = services.backend_update(backend_id=int(backend_id), **form.validated_data)
        return Response(BackendSerializer(backend).data)

    @extend_schema(responses={204: None}, description="Steps already sent to it are still followed there.")
    def delete(self, request: Request, backend_id: str) -> Response:
        services.backend_remove(backend_id=int(backend_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    re_path(r"^backends/?$", BackendListApi.as_view(), name="backend-list"),
    re_path(r"^backends/(?P<backend_id>[0-9]{1,18})/?$", BackendDetailApi.as_view(), name="backend-detail"),
    re_path(r"^backend/status/?$", BackendStatusApi.as_view(), name="backend-status"),
    re_path(r"^backend/mode/?$", BackendModeApi.as_view(), name="backend-mode"),
    re_path(r"^backend/pod/start/?$", PodStartApi.as_view(), name="backend-pod-start"),
    re_path(r"^backend/pod/stop/?$", PodStopApi.as_view(), name="backend-pod-stop"),
    re_path(r"^backend/pod-sessions/?$", PodSessionListApi.as_view(), name="backend-pod-sessions"),
    re_path(
        r"^backend/pod-sessions/(?P<session_id>[0-9]{1,18})/stop/?$",
        PodSessionStopApi.as_view(),
        name="backend-pod-session-stop",
    ),
]
