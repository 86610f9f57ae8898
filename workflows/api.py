"""`/api/workflows/`: import (JSON, a file, or from the connected InvokeAI's library), read with the form,
rename, delete, export unchanged, and run as a studio step (202, like a step of the studio's own form)."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from gallery_project.permissions import signed_in
from generation.api import step_accepted
from generation.serializers import StepAcceptedSerializer

from . import selectors, services
from .models import Workflow
from .serializers import (
    LibraryWorkflowSerializer,
    WorkflowCreateSerializer,
    WorkflowDetailSerializer,
    WorkflowRunSerializer,
    WorkflowSerializer,
    WorkflowUpdateSerializer,
)

RUN_EXAMPLES = [
    OpenApiExample(
        "Text to Image - SD1.5, twice",
        request_only=True,
        value={
            "values": {
                "<model nodeId>.model": "<key of an sd-1 main model>",
                "<prompt nodeId>.prompt": "a lighthouse at dusk",
                "<noise nodeId>.width": 512,
            },
            "runs": 2,
        },
    ),
    OpenApiExample(
        "A batch over two prompts and three widths (six images)",
        request_only=True,
        value={
            "values": {"<model nodeId>.model": "<key of an sd-1 main model>"},
            "batch": {
                "<prompt nodeId>.prompt": ["a lighthouse at dusk", "a lighthouse at dawn"],
                "<noise nodeId>.width": [448, 512, 576],
            },
        },
    ),
]


def _detail(workflow: Workflow) -> dict[str, object]:
    return WorkflowDetailSerializer(workflow, context={"form": services.workflow_form(workflow=workflow)}).data


class WorkflowViewSet(viewsets.GenericViewSet):
    serializer_class = WorkflowSerializer
    queryset = Workflow.objects.none()
    lookup_value_regex = r"\d+"
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def list(self, request: Request) -> Response:
        return Response(WorkflowSerializer(selectors.workflow_list(owner=request.user), many=True).data)

    @extend_schema(request=WorkflowCreateSerializer, responses={201: WorkflowDetailSerializer})
    def create(self, request: Request) -> Response:
        form = WorkflowCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        owner = signed_in(request.user)
        data = form.validated_data
        if data.get("invokeai_workflow_id"):
            workflow = services.workflow_import_from_library(
                owner=owner, invokeai_workflow_id=data["invokeai_workflow_id"]
            )
        elif data.get("file") is not None:
            # One byte more than allowed is enough for the import to refuse a file as too large.
            document = data["file"].read(services.MAX_DOCUMENT_BYTES + 1)
            workflow = services.workflow_import(owner=owner, document=document, source=Workflow.Source.FILE)
        else:
            workflow = services.workflow_import(owner=owner, document=data["workflow"], source=Workflow.Source.PASTE)
        return Response(_detail(workflow), status=status.HTTP_201_CREATED)

    @extend_schema(responses=WorkflowDetailSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(_detail(selectors.workflow_get(workflow_id=pk, owner=request.user)))

    @extend_schema(request=WorkflowUpdateSerializer, responses=WorkflowDetailSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        form = WorkflowUpdateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        workflow = services.workflow_update(workflow_id=pk, owner=request.user, **form.validated_data)
        return Response(_detail(workflow))

    def destroy(self, request: Request, pk: str) -> Response:
        services.workflow_delete(workflow_id=pk, owner=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={(200, "application/json"): dict})
    @action(detail=True, methods=["get"])
    def export(self, request: Request, pk: str) -> HttpResponse:
        """The workflow file as it was imported, to open again in InvokeAI's editor."""
        workflow = selectors.workflow_get(workflow_id=pk, owner=request.user)
        response = HttpResponse(workflow.document, content_type="application/json; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="workflow-{workflow.pk}.json"'
        return response

    @extend_schema(responses=LibraryWorkflowSerializer(many=True))
    @action(detail=False, methods=["get"])
    def library(self, request: Request) -> Response:
        """The connected InvokeAI's workflows (its defaults and its users' own), to import by id."""
        return Response(LibraryWorkflowSerializer(services.library_list(), many=True).data)

    @extend_schema(request=WorkflowRunSerializer, responses={202: StepAcceptedSerializer}, examples=RUN_EXAMPLES)
    @action(detail=True, methods=["post"])
    def run(self, request: Request, pk: str) -> Response:
        """Run the workflow as a studio step: its form's `values`, `runs` times, or a `batch` over fields' values.
        Any value its field refuses is a 400 naming the field (`details.field`), before anything is sent."""
        form = WorkflowRunSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        step = services.workflow_run(
            workflow_id=pk,
            owner=signed_in(request.user),
            values=form.validated_data["values"],
            batch=form.validated_data["batch"],
            runs=form.validated_data["runs"],
            session_id=form.validated_data["session_id"],
        )
        return step_accepted(request, step)
