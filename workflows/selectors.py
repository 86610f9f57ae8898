"""Reads of workflows, for their owner: another account's workflow is not found."""

from __future__ import annotations

import json
from typing import Any

from django.db.models import QuerySet

from gallery_project.errors import NotFound
from gallery_project.permissions import Owner, owned_by

from .models import Workflow


def workflow_list(*, owner: Owner) -> QuerySet[Workflow]:
    return owned_by(Workflow.objects.all(), owner).order_by("name", "id")


def workflow_get(*, workflow_id: int | str, owner: Owner) -> Workflow:
    try:
        return owned_by(Workflow.objects.all(), owner).get(pk=int(workflow_id))
    except (Workflow.DoesNotExist, ValueError):
        raise NotFound("This workflow does not exist.", details={"workflow_id": str(workflow_id)}) from None


def workflow_document(workflow: Workflow) -> dict[str, Any]:
    """The workflow JSON as an object (import checked that it is one)."""
    document: dict[str, Any] = json.loads(workflow.document)
    return document
