"""A workflow form as JSON, for the API and the studio page's script alike."""

from __future__ import annotations

from typing import Any

from .form import FormElement, FormField


def field_dict(form_field: FormField) -> dict[str, Any]:
    template = form_field.template
    return {
        "name": form_field.name,
        "node_id": form_field.ref.node_id,
        "field_name": form_field.ref.field_name,
        "type": form_field.type,
        "label": form_field.label,
        "description": form_field.description,
        "default": form_field.default,
        "required": template.required,
        "minimum": template.minimum,
        "maximum": template.maximum,
        "multiple_of": template.multiple_of,
        "options": list(template.options),
        "model_types": list(template.model_types),
        "model_bases": list(template.model_bases),
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
