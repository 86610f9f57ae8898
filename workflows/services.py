"""Workflows: importing them (a file, pasted JSON, or the connected InvokeAI's library), and running one as a
step of a studio session.

A run is checked before anything is recorded: the node types against the server's templates (a workflow that
uses removed nodes is refused, naming them), each value against its field (type, bounds, options; a model by
its type and base in the model cache; an image as one of the owner's photos; a board as "auto", "none" or one
of the owner's albums), and every required input the graph leaves empty. Then it is one step like any other
(`generation.services.step_start`): same progress, cancel, retrieval and gallery. The step records the workflow,
the values set and the nodes its image and seed come from, so each image's recipe can name them.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from albums.models import Album
from backends import manager
from backends.invokeai import workflows as wf
from backends.invokeai.client import InvokeAIClient, WorkflowSummary
from backends.invokeai.errors import ModelError, WorkflowError
from gallery_project.errors import AppError, InvalidInput, NotFound
from gallery_project.permissions import Owner, owned_by
from generation import inputs, models_cache
from generation import services as generation_services
from generation.models import CachedModel, GenerationStep
from photos import selectors as photo_selectors
from photos.models import Photo

from . import form as forms
from .models import Workflow
from .selectors import workflow_document, workflow_get

# InvokeAI's own defaults are 10 to 60 KB; a workflow a thousand times larger is no workflow.
MAX_DOCUMENT_BYTES = 5 << 20
# The server's node templates change only when it is upgraded; its schema is 1.7 MB to fetch and read.
TEMPLATES_TTL = 300.0
MAX_RUNS = 100
# Placeholder image names while checking a run; the real ones exist once the photos are uploaded.
_NOT_YET_UPLOADED = "not-yet-uploaded.png"

_templates: dict[str, tuple[float, dict[str, wf.NodeTemplate]]] = {}
_templates_lock = threading.Lock()


# --- the server's node templates ---


def node_templates(*, client: InvokeAIClient | None = None) -> dict[str, wf.NodeTemplate]:
    """The node types of the InvokeAI in use, read from its schema at most every TEMPLATES_TTL seconds."""
    client = client or manager.invokeai_client()
    with _templates_lock:
        cached = _templates.get(client.base_url)
        if cached and time.monotonic() - cached[0] < TEMPLATES_TTL:
            return cached[1]
    templates = client.node_templates()
    with _templates_lock:
        _templates[client.base_url] = (time.monotonic(), templates)
    return templates


def node_templates_forget() -> None:
    """Read the templates afresh next time (after an InvokeAI upgrade, and between tests)."""
    with _templates_lock:
        _templates.clear()


# --- import ---


def _parsed(document: object) -> tuple[str, dict[str, Any]]:
    """The document (text, bytes, or already parsed JSON) as text and as an object, if it is a workflow."""
    if not isinstance(document, str | bytes):
        text = json.dumps(document, ensure_ascii=False)
    elif isinstance(document, bytes):
        try:
            text = document.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise WorkflowError("This file is not text: an InvokeAI workflow is a JSON file.") from None
    else:
        text = document
    if len(text.encode()) > MAX_DOCUMENT_BYTES:
        raise WorkflowError(
            f"This workflow is larger than {MAX_DOCUMENT_BYTES >> 20} MB; InvokeAI's workflows are far smaller.",
            code="too_large",
        )
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        raise WorkflowError("This is not JSON: export the workflow from InvokeAI's workflow editor.") from None
    if isinstance(parsed, dict) and isinstance(parsed.get("workflow"), dict | str) and "nodes" not in parsed:
        # A library record ({workflow_id, ..., workflow}) or an image's /workflow answer: the workflow inside.
        inner = parsed["workflow"]
        return _parsed(inner) if isinstance(inner, str) else (json.dumps(inner, ensure_ascii=False), inner)
    return text, wf.check_shape(parsed)


def workflow_import(
    *,
    owner: User,
    document: object,
    source: str = Workflow.Source.PASTE,
    invokeai_workflow_id: str = "",
    invokeai_version: str = "",
) -> Workflow:
    """Store a workflow as it is; refused (with the reason) if it is not one the app can read."""
    text, parsed = _parsed(document)
    wf.migrate(parsed, {})  # refuses versions the app does not read
    tags = parsed.get("tags")
    now = timezone.now()
    return Workflow.objects.create(
        owner=owner,
        name=(str(parsed.get("name") or "").strip() or "Untitled workflow")[:255],
        description=str(parsed.get("description") or ""),
        tags=(", ".join(str(tag) for tag in tags) if isinstance(tags, list) else str(tags or ""))[:1000],
        author=str(parsed.get("author") or "")[:255],
        schema_version=str(parsed["meta"]["version"])[:20],
        invokeai_version=invokeai_version[:50],
        source=source,
        invokeai_workflow_id=invokeai_workflow_id[:255],
        document=text,
        created_at=now,
        updated_at=now,
    )


def workflow_from_image(*, owner: User, document: dict[str, Any]) -> tuple[Workflow, dict[str, Any]] | None:
    """The owner's workflow for one embedded in an InvokeAI image (imported once, then found again by its text),
    and the values its form held when the image was made; None if it is not a workflow the app reads."""
    try:
        text, parsed = _parsed(document)
        migrated = wf.migrate(parsed, {})
    except WorkflowError:
        return None
    workflow = Workflow.objects.filter(owner=owner, source=Workflow.Source.IMAGE, document=text).first()
    if workflow is None:
        workflow = workflow_import(owner=owner, document=text, source=Workflow.Source.IMAGE)
    values = {}
    for ref in wf.form_fields(migrated):
        value = (wf.node_input(migrated, ref) or {}).get("value")
        if value is not None:
            # A model as the recipes of workflow runs keep it: its key and name.
            is_model = isinstance(value, dict) and "key" in value
            values[ref.name] = {"key": value["key"], "name": value.get("name")} if is_model else value
    return workflow, values


def library_list() -> list[WorkflowSummary]:
    """The connected InvokeAI's library: its default workflows and its users' own."""
    return manager.invokeai_client().list_workflows()


def workflow_import_from_library(*, owner: User, invokeai_workflow_id: str) -> Workflow:
    """Copy a workflow of the connected InvokeAI's library into the app."""
    client = manager.invokeai_client()
    document = client.get_workflow(invokeai_workflow_id)
    if document is None:
        raise NotFound(
            f"InvokeAI at {client.base_url} has no workflow {invokeai_workflow_id}.",
            code="workflow_not_found",
            details={"invokeai_workflow_id": invokeai_workflow_id},
        )
    return workflow_import(
        owner=owner,
        document=document,
        source=Workflow.Source.LIBRARY,
        invokeai_workflow_id=invokeai_workflow_id,
        invokeai_version=client.connect(),
    )


def workflow_update(
    *, workflow_id: int | str, owner: Owner, name: str | None = None, description: str | None = None
) -> Workflow:
    """Rename or describe a workflow in the app; its document (what is exported and run) stays as imported."""
    workflow = workflow_get(workflow_id=workflow_id, owner=owner)
    fields: dict[str, Any] = {"updated_at": timezone.now()}
    if name is not None:
        if not name.strip():
            raise InvalidInput("A workflow needs a name.", code="invalid_parameter", details={"field": "name"})
        fields["name"] = name.strip()[:255]
    if description is not None:
        fields["description"] = description
    Workflow.objects.filter(pk=workflow.pk).update(**fields)
    return workflow_get(workflow_id=workflow.pk, owner=owner)


def workflow_delete(*, workflow_id: int | str, owner: Owner) -> None:
    """Delete a workflow; the photos it made keep their recipes."""
    workflow_get(workflow_id=workflow_id, owner=owner).delete()


# --- its form ---


@dataclass(frozen=True)
class WorkflowForm:
    form: forms.Form
    # Nodes the server does not have: the form shows, the workflow cannot run.
    missing: tuple[wf.MissingNode, ...]
    # Why the server's templates could not be read (the form's types are then unknown), else "".
    templates_error: str = ""


def workflow_form(*, workflow: Workflow, templates: Mapping[str, wf.NodeTemplate] | None = None) -> WorkflowForm:
    """The workflow's form, typed by the connected InvokeAI's templates (all unknown if it does not answer)."""
    error = ""
    if templates is None:
        try:
            templates = node_templates()
        except AppError as exc:
            error, templates = exc.message, {}
    migrated = wf.migrate(workflow_document(workflow), templates)
    missing = tuple(wf.missing_node_types(migrated, templates)) if templates else ()
    return WorkflowForm(form=forms.form_build(migrated, templates), missing=missing, templates_error=error)


# --- running it ---

# The field types InvokeAI's batch data can carry (`BatchDatum.items`: text, numbers and images).
SWEEPABLE: tuple[wf.FieldType, ...] = ("string", "integer", "float", "enum", "image")


@dataclass(frozen=True)
class _Value:
    """One value of the form, checked."""

    # What goes into the workflow: a model as its full identifier, an image by its name once uploaded.
    graph: Any
    # What the recipe shows: a model as its key and name, an image as a photo id.
    recorded: Any
    model: CachedModel | None = None
    photo: Photo | None = None
    album_id: str = ""


@dataclass(frozen=True)
class _Resolved:
    values: dict[str, _Value]
    # The fields a batch goes over, each with its list of values.
    sweeps: dict[str, list[_Value]]

    def graph_values(self) -> dict[str, Any]:
        return {name: value.graph for name, value in self.values.items()}

    def sweep_items(self) -> dict[str, list[Any]]:
        return {name: [value.graph for value in items] for name, items in self.sweeps.items()}

    @property
    def main_field(self) -> str:
        """The field the main model is set in ("" if none): its model names the step."""
        return next((name for name, v in self.values.items() if v.model and v.model.type == "main"), "")

    @property
    def album_id(self) -> str:
        return next((value.album_id for value in self.values.values() if value.album_id), "")


def _refused(form_field: forms.FormField, message: str, *, code: str = "invalid_parameter") -> WorkflowError:
    return WorkflowError(f"{form_field.label}: {message}", code=code, details={"field": form_field.name})


def _model_checked(form_field: forms.FormField, model: CachedModel) -> CachedModel:
    """`model` if it is of a type and base the field takes."""
    template = form_field.template
    if template.model_types and model.type not in template.model_types:
        raise ModelError(
            f"{form_field.label}: {model.name} is a {model.type} model; this field takes "
            f"{' or '.join(template.model_types)} models.",
            code="wrong_model_type",
            details={"field": form_field.name},
        )
    if template.model_bases and model.base not in template.model_bases:
        raise ModelError(
            f"{form_field.label}: {model.name} is a {model.base} model; this field takes "
            f"{' or '.join(template.model_bases)} models.",
            code="wrong_model_base",
            details={"field": form_field.name},
        )
    return model


def _model_value(form_field: forms.FormField, key: str) -> CachedModel:
    try:
        model = models_cache.model_get(key=key)
    except NotFound:
        raise _refused(
            form_field,
            f"no model with key {key} is installed (refresh the models from InvokeAI).",
            code="model_not_found",
        ) from None
    return _model_checked(form_field, model)


def _model_at_send(form_field: forms.FormField, model: CachedModel, client: InvokeAIClient) -> CachedModel:
    """The field's model as InvokeAI has it now (still installed, perhaps under a new key), of the right kind."""
    try:
        verified = models_cache.model_verify(key=model.key, client=client)
    except (ModelError, NotFound) as exc:
        raise ModelError(
            f"{form_field.label}: {exc.message}", code=exc.code, details={**exc.details, "field": form_field.name}
        ) from None
    return _model_checked(form_field, verified)


def _photo_value(form_field: forms.FormField, photo_id: str, owner: Owner) -> Photo:
    try:
        photo = photo_selectors.photo_get(photo_id=photo_id, owner=owner)
    except (NotFound, ValueError):
        raise _refused(form_field, f"there is no photo {photo_id} in your gallery.") from None
    if not photo.is_available:
        raise _refused(form_field, f"photo {photo_id} is not downloaded yet; choose it once it is in the gallery.")
    return photo


def _album_exists(album_id: str, owner: Owner) -> bool:
    try:
        return owned_by(Album.objects.all(), owner).filter(pk=uuid.UUID(str(album_id))).exists()
    except ValueError:
        return False


def _value(form_field: forms.FormField, raw: Any, owner: Owner) -> _Value:
    value = forms.value_check(form_field, raw)
    if form_field.type == "model":
        model = _model_value(form_field, value)
        return _Value(model.identifier.as_field(), {"key": model.key, "name": model.name}, model=model)
    if form_field.type == "image":
        photo = _photo_value(form_field, value, owner)
        return _Value({"image_name": _NOT_YET_UPLOADED}, value, photo=photo)
    if form_field.type == "board" and value not in forms.BOARD_CHOICES:
        if not _album_exists(value, owner):
            raise _refused(form_field, f"there is no album {value}.")
        # InvokeAI keeps the images off its boards; the app files them in the album.
        return _Value("none", value, album_id=str(value))
    return _Value(value, value)


def _sweep(form_field: forms.FormField, items: Any, owner: Owner) -> list[_Value]:
    """The list of values a batch goes over in `form_field`, each checked as a value of the field."""
    if form_field.type not in SWEEPABLE:
        raise _refused(
            form_field, f"a batch goes over text, number, choice or image fields; this is a {form_field.type} field."
        )
    if not isinstance(items, list) or not items:
        raise _refused(form_field, "a batch over a field needs a list of values.")
    if len(items) > MAX_RUNS:
        raise _refused(form_field, f"a batch goes over at most {MAX_RUNS} values.")
    checked = []
    for index, item in enumerate(items):
        try:
            checked.append(_value(form_field, item, owner))
        except WorkflowError as exc:
            raise WorkflowError(
                f"{exc.message} (value {index + 1} of the batch)",
                code=exc.code,
                details={**exc.details, "index": index},
            ) from None
    return checked


def _resolve(form: forms.Form, values: Mapping[str, Any], batch: Mapping[str, Any], owner: Owner) -> _Resolved:
    checked = {name: _value(form.field(name), raw, owner) for name, raw in values.items()}
    sweeps = {}
    for name, items in batch.items():
        form_field = form.field(name)
        if name in values:
            raise _refused(form_field, "give it a value or a list of values for a batch, not both.")
        sweeps[name] = _sweep(form_field, items, owner)
    return _Resolved(checked, sweeps)


def _missing_required(filled: dict[str, Any], templates: Mapping[str, wf.NodeTemplate]) -> list[str]:
    """The required inputs that neither a value nor an edge fills, as "<label> (<node>)"."""
    graph = wf.graph_build(filled, templates)
    fed = {(edge["destination"]["node_id"], edge["destination"]["field"]) for edge in graph["edges"]}
    labels = {node["id"]: str(node["data"].get("label") or "") for node in filled["nodes"] if "data" in node}
    missing = []
    for node_id, node in graph["nodes"].items():
        for name, template in templates[node["type"]].inputs.items():
            if not template.required or name in wf.NODE_ATTRIBUTES or (node_id, name) in fed:
                continue
            if node.get(name) is None and template.default is None:
                node_name = labels.get(node_id) or templates[node["type"]].title
                missing.append(f"{template.title or name} of {node_name}")
    return missing


def _prompt_field(form: forms.Form, resolved: _Resolved) -> tuple[str, str]:
    """The field a person would call the prompt (the first text field named like one) and its text, if set."""
    for form_field in form.fields:
        if form_field.type == "string" and "prompt" in form_field.ref.field_name:
            if form_field.name in resolved.sweeps:
                text = resolved.sweeps[form_field.name][0].recorded
            else:
                given = resolved.values.get(form_field.name)
                text = given.recorded if given else form_field.default
            if isinstance(text, str) and text.strip():
                return form_field.name, text.strip()
    return "", ""


def workflow_run(
    *,
    workflow_id: int | str,
    owner: User,
    values: Mapping[str, Any],
    batch: Mapping[str, Any] | None = None,
    runs: int = 1,
    session_id: int | None = None,
) -> GenerationStep:
    """Run the workflow with `values` (`{"<nodeId>.<fieldName>": value}`) `runs` times, as one step of
    `session_id` (or of a new session named after the workflow); with a `batch` (`{"<nodeId>.<fieldName>":
    [value, ...]}`), once for every combination of its fields' values, times `runs`. Everything is checked
    first (see the module), and the models and photos once more as the batch is sent."""
    workflow = workflow_get(workflow_id=workflow_id, owner=owner)
    if not 1 <= runs <= MAX_RUNS:
        raise InvalidInput(f"runs must be 1 to {MAX_RUNS}.", code="invalid_parameter", details={"field": "runs"})
    session = generation_services.active_session_get(session_id=session_id, owner=owner) if session_id else None
    client = manager.invokeai_client()
    templates = node_templates(client=client)
    document = workflow_document(workflow)
    migrated = wf.migrate(document, templates)
    missing_nodes = wf.missing_node_types(migrated, templates)
    if missing_nodes:
        raise wf.missing_nodes_error(missing_nodes)
    form = forms.form_build(migrated, templates)
    resolved = _resolve(form, values, batch or {}, owner)
    sweeps = resolved.sweep_items()
    filled = wf.values_set(migrated, {**resolved.graph_values(), **{name: items[0] for name, items in sweeps.items()}})
    if missing := _missing_required(filled, templates):
        raise WorkflowError(
            f"Set these before running: {'; '.join(missing)}.", code="missing_values", details={"missing": missing}
        )
    trial = wf.batch_body(document, resolved.graph_values(), templates, runs=runs, sweeps=sweeps)
    images = wf.images_made(trial["batch"])
    if images > MAX_RUNS:
        raise InvalidInput(
            f"This run would make {images} images; at most {MAX_RUNS} at once. Give the batch fewer values or "
            "fewer runs.",
            code="invalid_parameter",
            details={"field": "batch", "images": images},
        )
    graph = trial["batch"]["graph"]
    outputs = wf.output_nodes(graph, templates)
    if not outputs:
        raise WorkflowError(
            "This workflow saves no image to the gallery: give its last image node 'Save to gallery' (not "
            "intermediate) in InvokeAI's editor.",
            code="workflow_no_output",
        )
    seed_sources = wf.seed_sources(graph)
    seed_fields = [ref.name for ref in wf.seed_inputs(graph)]
    swept_seed = next((name for name in seed_fields if name in sweeps), "")
    prompt_field, prompt = _prompt_field(form, resolved)
    parameters: dict[str, Any] = {
        "workflow_id": workflow.pk,
        "workflow": workflow.name,
        "values": {name: value.recorded for name, value in resolved.values.items()},
        "runs": runs,
        "output_node": outputs[0],
        "seed_node": seed_sources[0] if seed_sources else "",
    }
    if resolved.sweeps:
        parameters["batch"] = {name: [value.recorded for value in items] for name, items in resolved.sweeps.items()}
    if swept_seed:
        # Each image's seed is the batch's value it ran with.
        parameters["seed_field"] = swept_seed
    elif seed_fields:
        parameters["seed"] = graph["nodes"][wf.FieldRef.parse(seed_fields[0]).node_id]["seed"]
    if prompt_field in sweeps:
        parameters["prompt_field"] = prompt_field
    if resolved.album_id:
        parameters["album_id"] = resolved.album_id
    main = resolved.values[resolved.main_field].model if resolved.main_field else None
    row = generation_services.StepRow(
        prompt=prompt or workflow.name,
        negative_prompt="",
        parameters=parameters,
        model_key=main.key if main else "",
        model_hash=main.hash if main else "",
        model_name=main.name if main else "",
        batch_size=images,
    )

    def prepare(client: InvokeAIClient, step: GenerationStep) -> generation_services.PreparedBatch:
        """The batch as sent: every model checked with InvokeAI again, every photo again and uploaded (once)."""
        uploaded: dict[Any, dict[str, str]] = {}

        def sent(name: str, value: _Value) -> Any:
            form_field = form.field(name)
            if value.model is not None:
                return _model_at_send(form_field, value.model, client).identifier.as_field()
            if value.photo is None:
                return value.graph
            photo = _photo_value(form_field, str(value.photo.pk), owner)
            if photo.pk not in uploaded:
                scale = min(1.0, inputs.MAX_INPUT_SIDE / max(photo.width, photo.height, 1))
                width, height = max(1, round(photo.width * scale)), max(1, round(photo.height * scale))
                data = inputs.input_image(photo=photo, width=width, height=height)
                image = client.upload_image(data=data, filename="input.png", category="user", is_intermediate=True)
                uploaded[photo.pk] = {"image_name": image.image_name}
            return uploaded[photo.pk]

        graph_values = {name: sent(name, value) for name, value in resolved.values.items()}
        sweeps = {name: [sent(name, value) for value in items] for name, items in resolved.sweeps.items()}
        body = wf.batch_body(document, graph_values, node_templates(client=client), runs=runs, sweeps=sweeps)
        main_field = resolved.main_field
        # The names InvokeAI gave the swept photos: an image's recipe finds its photo by them.
        sent_images = {name: sweeps[name] for name in sweeps if form.field(name).type == "image"}
        return generation_services.PreparedBatch(
            body=body,
            model_key=graph_values[main_field]["key"] if main_field else "",
            parameters={"batch_sent": sent_images} if sent_images else {},
        )

    with transaction.atomic():
        if session is None:
            session = generation_services.session_create(owner=owner, title=workflow.name)
    return generation_services.step_start(session=session, owner=owner, row=row, prepare=prepare)
