"""The workflow pages: the list with its import form, and one page per workflow with its form as InvokeAI's
form builder laid it out. Running it starts a studio session step and goes to the session's page, where it
runs, is cancelled and lands in the gallery like any step."""

from __future__ import annotations

import re
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from albums.selectors import album_list
from gallery_project.errors import AppError, InvalidInput
from gallery_project.permissions import signed_in
from generation import models_cache
from photos import selectors as photo_selectors

from . import selectors, services
from .form import FormElement, FormField
from .models import Workflow

TEMPLATE = "workflows/list.html"
_COLOR = re.compile(r"^#([0-9a-fA-F]{2})([0-9a-fA-F]{2})([0-9a-fA-F]{2})$")


def _library(request: HttpRequest) -> tuple[list[Any], str]:
    try:
        return services.library_list(), ""
    except AppError as exc:
        return [], exc.message


def _list_page(request: HttpRequest, *, error: str = "", status: int = 200) -> HttpResponse:
    library, library_error = _library(request)
    context = {
        "workflows": selectors.workflow_list(owner=request.user),
        "library": library,
        "library_error": library_error,
        "error": error,
    }
    return render(request, TEMPLATE, context, status=status)


@require_http_methods(["GET", "POST"])
def workflow_list(request: HttpRequest) -> HttpResponse:
    """The owner's workflows, and importing one (a file, pasted JSON, or from InvokeAI's library)."""
    if request.method == "GET":
        return _list_page(request)
    owner = signed_in(request.user)
    try:
        if request.FILES.get("file"):
            document = request.FILES["file"].read(services.MAX_DOCUMENT_BYTES + 1)
            workflow = services.workflow_import(owner=owner, document=document, source=Workflow.Source.FILE)
        elif request.POST.get("invokeai_workflow_id"):
            workflow = services.workflow_import_from_library(
                owner=owner, invokeai_workflow_id=request.POST["invokeai_workflow_id"]
            )
        elif request.POST.get("document", "").strip():
            workflow = services.workflow_import(owner=owner, document=request.POST["document"])
        else:
            raise InvalidInput("Choose a workflow file, paste one, or pick one of InvokeAI's.")
    except AppError as exc:
        return _list_page(request, error=exc.message, status=exc.status)
    return redirect("workflows:page", pk=workflow.pk)


def _choices(request: HttpRequest, form_field: FormField) -> list[tuple[str, str]]:
    if form_field.type == "model":
        models = models_cache.model_list()
        if form_field.template.model_types:
            models = models.filter(type__in=form_field.template.model_types)
        if form_field.template.model_bases:
            models = models.filter(base__in=form_field.template.model_bases)
        return [(model.key, f"{model.name} · {model.base}") for model in models]
    if form_field.type == "board":
        return [("auto", "InvokeAI's auto-add board"), ("none", "No board")] + [
            (str(album.pk), f"Album: {album.name}") for album in album_list(owner=request.user)
        ]
    return [(option, option) for option in form_field.template.options]


def _shown_value(form_field: FormField, value: Any) -> Any:
    if form_field.type == "color" and isinstance(value, dict):
        return "#{:02x}{:02x}{:02x}".format(*(int(value.get(channel, 0)) for channel in "rgb"))
    if form_field.type == "model" and isinstance(value, dict):
        return value.get("key", "")
    if value is None:
        return ""
    return value


def _picked_photo(form_field: FormField, value: Any, shown_photos: set[str]) -> str:
    """The id of the photo an image field shows as chosen; none for a value the picker cannot show (such as the
    InvokeAI image a workflow was saved with, which a run keeps when the field is left empty)."""
    return str(value) if form_field.type == "image" and str(value) in shown_photos else ""


def _tree(element: FormElement, fields: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The form's elements for the template, each node field with its input's value and choices."""
    return {
        "kind": element.kind,
        "layout": element.layout,
        "content": element.content,
        "entry": fields[element.field.name] if element.field else None,
        "children": [_tree(child, fields) for child in element.children],
    }


def _page(
    request: HttpRequest,
    workflow: Workflow,
    *,
    values: dict[str, Any],
    batch: dict[str, list[Any]] | None = None,
    error: str = "",
    runs: int = 1,
    status: int = 200,
) -> HttpResponse:
    form = services.workflow_form(workflow=workflow)
    batch = batch or {}
    # An image field shows the chosen photos' thumbnails from the gallery picker: only photos that can be shown.
    shown_photos = photo_selectors.available_photo_ids(
        owner=request.user,
        photo_ids=[
            str(value)
            for item in form.form.fields
            if item.type == "image"
            for value in [values.get(item.name, item.default), *batch.get(item.name, [])]
        ],
    )
    fields = {
        item.name: {
            "field": item,
            "value": _shown_value(item, values.get(item.name, item.default)),
            "choices": _choices(request, item) if item.type in ("model", "board", "enum") else [],
            "photo": _picked_photo(item, values.get(item.name, item.default), shown_photos),
            "sweepable": item.type in services.SWEEPABLE,
            "batch": [str(value) for value in batch.get(item.name, [])],
            "picked": [str(value) for value in batch.get(item.name, []) if str(value) in shown_photos],
            "batch_text": "\n".join(str(value) for value in batch.get(item.name, [])),
        }
        for item in form.form.fields
    }
    context = {
        "workflow": workflow,
        "form": form,
        "root": _tree(form.form.root, fields),
        "error": error,
        "runs": runs,
        "max_runs": services.MAX_RUNS,
    }
    return render(request, "workflows/workflow.html", context, status=status)


def _values_from_photo(request: HttpRequest, workflow: Workflow) -> dict[str, Any]:
    """The values a photo this workflow made was run with ("Open in the studio")."""
    photo_id = request.GET.get("photo")
    if not photo_id:
        return {}
    photo = photo_selectors.photo_get(photo_id=photo_id, owner=request.user)
    if photo.generation_params.get("workflow_id") != workflow.pk:
        return {}
    values = dict(photo.generation_params.get("values") or {})
    # A model is recorded as its key and name; the form takes the key.
    return {
        name: value["key"] if isinstance(value, dict) and "key" in value else value for name, value in values.items()
    }


def _number(item: FormField, raw: str) -> Any:
    try:
        return int(raw) if item.type == "integer" else float(raw)
    except ValueError:
        return raw  # refused with the field's label by the run


def _batch_posted(request: HttpRequest, item: FormField) -> list[Any]:
    """The several values given for a field ("Several values…"): chosen options, or one per line."""
    name = f"batch:{item.name}"
    if item.type in ("enum", "image"):
        return [value for value in request.POST.getlist(name) if value]
    lines = [line.strip() for line in request.POST.get(name, "").splitlines()]
    given = [line for line in lines if line]
    return [_number(item, line) for line in given] if item.type in ("integer", "float") else given


def _posted(request: HttpRequest, form_fields: tuple[FormField, ...]) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """The form's values and its batch as the run takes them; a field left empty keeps the workflow's own
    value, and a field given several values is swept over them instead of taking its single one."""
    values: dict[str, Any] = {}
    batch: dict[str, list[Any]] = {}
    for item in form_fields:
        if item.read_only:
            continue
        if item.type in services.SWEEPABLE and (several := _batch_posted(request, item)):
            batch[item.name] = several
            continue
        if item.type == "boolean":
            values[item.name] = item.name in request.POST
            continue
        raw = request.POST.get(item.name, "")
        if raw == "" and item.type != "string":
            continue
        if item.type in ("integer", "float"):
            values[item.name] = _number(item, raw)
        elif item.type == "color":
            match = _COLOR.match(raw)
            values[item.name] = (
                {"r": int(match[1], 16), "g": int(match[2], 16), "b": int(match[3], 16), "a": 255} if match else raw
            )
        else:
            values[item.name] = raw
    return values, batch


@require_GET
def workflow_page(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = selectors.workflow_get(workflow_id=pk, owner=request.user)
    return _page(request, workflow, values=_values_from_photo(request, workflow))


@require_POST
def workflow_run(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = selectors.workflow_get(workflow_id=pk, owner=request.user)
    form = services.workflow_form(workflow=workflow)
    values, batch = _posted(request, form.form.fields)
    try:
        runs = int(request.POST.get("runs") or 1)
        step = services.workflow_run(
            workflow_id=workflow.pk, owner=signed_in(request.user), values=values, batch=batch, runs=runs
        )
    except ValueError:
        return _page(request, workflow, values=values, batch=batch, error="Runs must be a whole number.", status=400)
    except AppError as exc:
        return _page(request, workflow, values=values, batch=batch, error=exc.message, runs=1, status=exc.status)
    return redirect(reverse("studio:session", args=[step.session_id]))


@require_POST
def workflow_delete(request: HttpRequest, pk: int) -> HttpResponse:
    services.workflow_delete(workflow_id=pk, owner=request.user)
    return redirect("workflows:list")
