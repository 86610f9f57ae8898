from django.contrib import admin

from gallery_project.permissions import OwnedAdmin

from .models import Workflow


@admin.register(Workflow)
class WorkflowAdmin(OwnedAdmin):
    list_display = ["name", "source", "schema_version", "invokeai_workflow_id", "created_at"]
    list_filter = ["source", "schema_version"]
    search_fields = ["name", "description", "tags", "author", "invokeai_workflow_id"]
    readonly_fields = ["document", "schema_version", "invokeai_version", "source", "invokeai_workflow_id", "created_at"]
    fields = ["name", "description", "tags", "author", "owner", *readonly_fields]
