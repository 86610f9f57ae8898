from __future__ import annotations

from dataclasses import asdict
from typing import Any

from rest_framework import serializers

from .forms_serialized import element_dict, field_dict
from .models import Workflow
from .services import WorkflowForm


class WorkflowSerializer(serializers.ModelSerializer):
    studio_url = serializers.SerializerMethodField()

    class Meta:
        model = Workflow
        fields = [
            "id",
            "name",
            "description",
            "tags",
            "author",
            "schema_version",
            "invokeai_version",
            "source",
            "invokeai_workflow_id",
            "created_at",
            "updated_at",
            "studio_url",
        ]
        read_only_fields = fields

    def get_studio_url(self, workflow: Workflow) -> str:
        return f"/studio/workflows/{workflow.pk}/"


class WorkflowDetailSerializer(WorkflowSerializer):
    """A workflow with its form (pass it as context `form`): `fields` in the form's order, `layout` as the form
    builder arranged them, the node types the server lacks, and why the form is untyped if it could not be."""

    def to_representation(self, instance: Workflow) -> dict[str, Any]:
        data = dict(super().to_representation(instance))
        form: WorkflowForm = self.context["form"]
        data["fields"] = [field_dict(item) for item in form.form.fields]
        data["layout"] = element_dict(form.form.root)
        data["missing_nodes"] = [asdict(node) for node in form.missing]
        data["templates_error"] = form.templates_error
        return data


class WorkflowCreateSerializer(serializers.Serializer):
    workflow = serializers.JSONField(required=False, help_text="The workflow JSON (an object, or its text).")
    invokeai_workflow_id = serializers.CharField(
        required=False, max_length=255, help_text="Import this workflow from the connected InvokeAI's library."
    )
    file = serializers.FileField(required=False, help_text="A workflow file exported from InvokeAI's editor.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = [key for key in ("workflow", "invokeai_workflow_id", "file") if attrs.get(key) is not None]
        if len(given) != 1:
            raise serializers.ValidationError("Give one of workflow, invokeai_workflow_id or file.")
        return attrs


class WorkflowUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, max_length=255)
    description = serializers.CharField(required=False, allow_blank=True)


class LibraryWorkflowSerializer(serializers.Serializer):
    workflow_id = serializers.CharField()
    name = serializers.CharField()
    category = serializers.CharField()
    description = serializers.CharField()
    tags = serializers.CharField()


class WorkflowRunSerializer(serializers.Serializer):
    values = serializers.DictField(
        child=serializers.JSONField(),
        required=False,
        default=dict,
        help_text='The form\'s values by field name ("<nodeId>.<fieldName>"): a model field takes a model key, an '
        "image field a photo id, a board field auto, none or an album id. Fields left out keep the workflow's own.",
    )
    batch = serializers.DictField(
        child=serializers.JSONField(),
        required=False,
        default=dict,
        help_text="Fields to go over, each with its list of values (text, number, choice or image fields): the "
        "workflow runs once for every combination of them (the first field the outer loop), times runs. Each "
        "image's recipe has the values it was made with. A field is either in values or here.",
    )
    runs = serializers.IntegerField(
        required=False, default=1, min_value=1, help_text="Times the whole batch runs (at most 100 images in all)."
    )
    session_id = serializers.IntegerField(required=False, allow_null=True, default=None)
