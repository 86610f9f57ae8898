"""A workflow's form as the studio shows it: InvokeAI's form-builder layout, each field typed by the server.

Pure: given a migrated workflow and the server's node templates, `form_build` gives the element tree
(containers with their row or column layout, headings, text, dividers and node fields, in the form's order) and
the fields in order; `value_check` checks one value against its field's type, bounds and options. Looking models
and photos up is the services' part.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from backends.invokeai import workflows as wf
from backends.invokeai.errors import WorkflowError

# Element types of InvokeAI's form builder; anything else is shown as an unknown element, never dropped.
ELEMENT_KINDS = ("container", "heading", "text", "divider", "node-field")
BOARD_CHOICES = ("auto", "none")


@dataclass(frozen=True)
class FormField:
    """One input of the form: the node field it sets, how the workflow labels it, the value it holds now, and
    the server's template of that input (its type, bounds, options and model kinds)."""

    ref: wf.FieldRef
    # An input of type "unknown" when the server has no such node type or input (or its templates are unread).
    template: wf.InputTemplate
    label: str
    description: str = ""
    # The value the workflow holds now (its author's default, or the last values set).
    default: Any = None
    node_type: str = ""

    @property
    def name(self) -> str:
        return self.ref.name

    @property
    def type(self) -> wf.FieldType:
        return self.template.type

    @property
    def read_only(self) -> bool:
        return self.type == "unknown"


@dataclass(frozen=True)
class FormElement:
    id: str
    kind: str
    layout: str = "column"
    content: str = ""
    field: FormField | None = None
    children: tuple[FormElement, ...] = ()


@dataclass(frozen=True)
class Form:
    root: FormElement
    fields: tuple[FormField, ...] = field(default_factory=tuple)

    def field(self, name: str) -> FormField:
        found = next((item for item in self.fields if item.name == name), None)
        if found is None:
            raise WorkflowError(f"{name} is not a field of this workflow's form.", details={"field": name})
        return found


def _default(value: Any, kind: wf.FieldType) -> Any:
    if kind == "model" and isinstance(value, dict):
        return value.get("key")
    return value


def _field(workflow: dict[str, Any], ref: wf.FieldRef, templates: Mapping[str, wf.NodeTemplate]) -> FormField:
    node_type = wf.node_type_of(workflow, ref.node_id)
    node_template = templates.get(node_type)
    found = node_template.inputs.get(ref.field_name) if node_template else None
    template = found or wf.InputTemplate(name=ref.field_name, type="unknown")
    node_input = wf.node_input(workflow, ref) or {}
    return FormField(
        ref=ref,
        template=template,
        label=str(node_input.get("label") or "") or template.title or ref.field_name,
        description=str(node_input.get("description") or "") or template.description,
        default=_default(node_input.get("value"), template.type),
        node_type=node_type,
    )


def form_build(workflow: dict[str, Any], templates: Mapping[str, wf.NodeTemplate]) -> Form:
    """The form of a migrated workflow (`backends.invokeai.workflows.migrate`)."""
    elements = workflow["form"]["elements"]
    fields: list[FormField] = []
    seen: set[str] = set()

    def build(element_id: str) -> FormElement | None:
        element = elements.get(element_id)
        if not isinstance(element, dict) or element_id in seen:
            return None
        seen.add(element_id)
        kind = str(element.get("type") or "")
        data: dict[str, Any] = element["data"] if isinstance(element.get("data"), dict) else {}
        if kind == "node-field":
            identifier = data.get("fieldIdentifier") or {}
            ref = wf.FieldRef(str(identifier.get("nodeId", "")), str(identifier.get("fieldName", "")))
            form_field = _field(workflow, ref, templates)
            fields.append(form_field)
            return FormElement(id=element_id, kind=kind, field=form_field)
        children = tuple(
            child
            for child_id in (data.get("children") or [] if kind == "container" else [])
            if isinstance(child_id, str) and (child := build(child_id)) is not None
        )
        return FormElement(
            id=element_id,
            kind=kind if kind in ELEMENT_KINDS else "unknown",
            layout="row" if data.get("layout") == "row" else "column",
            content=str(data.get("content") or ""),
            children=children,
        )

    root = build(workflow["form"]["rootElementId"])
    assert root is not None  # migrate() made sure the root exists
    return Form(root=root, fields=tuple(fields))


def _refuse(form_field: FormField, message: str) -> WorkflowError:
    return WorkflowError(f"{form_field.label}: {message}", code="invalid_parameter", details={"field": form_field.name})


def _number(form_field: FormField, value: Any) -> float:
    template = form_field.template
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _refuse(form_field, "this needs a number.")
    if form_field.type == "integer" and not float(value).is_integer():
        raise _refuse(form_field, "this needs a whole number.")
    if template.minimum is not None and value < template.minimum:
        raise _refuse(form_field, f"at least {template.minimum:g}.")
    if template.maximum is not None and value > template.maximum:
        raise _refuse(form_field, f"at most {template.maximum:g}.")
    if template.multiple_of and not (value / template.multiple_of).is_integer():
        raise _refuse(form_field, f"a multiple of {template.multiple_of:g}.")
    return value


def value_check(form_field: FormField, value: Any) -> Any:
    """`value` for `form_field` as a graph takes it, if its type allows; models and images are left to the
    caller (they are looked up), their reference only checked for shape."""
    kind = form_field.type
    if kind == "unknown":
        raise _refuse(form_field, "the studio cannot set a field of this type; change it in InvokeAI's editor.")
    if kind == "string":
        if not isinstance(value, str):
            raise _refuse(form_field, "this needs text.")
        return value
    if kind == "integer":
        return int(_number(form_field, value))
    if kind == "float":
        return float(_number(form_field, value))
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _refuse(form_field, "this needs true or false.")
        return value
    if kind == "enum":
        if value not in form_field.template.options:
            raise _refuse(form_field, f"one of {', '.join(form_field.template.options)}.")
        return value
    if kind == "color":
        channels = ("r", "g", "b", "a")
        if not isinstance(value, dict) or set(value) != set(channels):
            raise _refuse(form_field, "a colour is {r, g, b, a}, each 0 to 255.")
        for channel in channels:
            level = value[channel]
            if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 255:
                raise _refuse(form_field, "a colour is {r, g, b, a}, each 0 to 255.")
        return {channel: value[channel] for channel in channels}
    if kind == "board":
        if value in BOARD_CHOICES or (isinstance(value, str) and value):
            return value
        raise _refuse(form_field, "auto, none, or an album id.")
    # model and image: a key or a photo id, looked up by the caller.
    if not isinstance(value, str) or not value:
        raise _refuse(form_field, "this needs a model key." if kind == "model" else "this needs a photo id.")
    return value
