"""A workflow form as JSON, for the API and the studio page's script alike."""

from __future__ import annotations

from typing import Any

from .form import FormElement, FormField


def field_dict(form_field: FormField) -> dict[str, Any]:
    return {
        "name": form_field.name,
        "node_id": form_field.node_id,
        "field_name": form_field.field_name,
        "type": form_field.type,
        "label": form_field.label,
        "description": form_field.description,
        "default": form_field.default,
        "required": form_field.required,
        "minimum": form_field.minimum,
        "maximum": form_field.maximum,
        "multiple_of": form_field.multiple_of,
        "options": list(form_field.options),
        "model_types": list(form_field.model_types),
        "model_bases": list(form_field.model_bases),
        "read_only": form_field.read_only,
    }


def element_dict(element: FormElement) -> dict[str, Any]:
    body: dict[str, Any] = {"id": element.id, "type": element.kind}
    if element.kind == "container":
        body["layout"] = element.layout
        body["children"] = [element_dict(child) for child in element.children]
    elif element.kind in ("heading", "text"):
        body["content"] = element.content
    elif element.field is not None:
        body["field"] = element.field.name
    return body
