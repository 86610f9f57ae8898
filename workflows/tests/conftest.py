"""Fixtures for the workflow tests: the fake InvokeAI with its models cached and InvokeAI's default workflows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from generation import models_cache
from generation.tests.conftest import enqueued, follow, gallery_photo, real  # noqa: F401  (fixtures used here too)
from testing.fake_invokeai import lora_models
from workflows import services

FIXTURES = Path(__file__).resolve().parents[2] / "backends" / "tests" / "fixtures" / "workflows"
SD15 = "text_to_image_sd15"
SD15_LORA = "text_to_image_sd15_lora"


def workflow_json(slug: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{slug}.workflow.json").read_text())


def exposed(slug: str, field_name: str) -> str:
    """The form name of the exposed field `field_name` of a default workflow."""
    workflow = workflow_json(slug)
    item = next(item for item in workflow["exposedFields"] if item["fieldName"] == field_name)
    return f"{item['nodeId']}.{field_name}"


def resize_workflow() -> dict[str, Any]:
    """One image node saved to the gallery, its image and size in the form."""
    inputs = {
        "image": {"name": "image", "label": "Photo", "value": None},
        "width": {"name": "width", "label": "", "value": 64},
        "height": {"name": "height", "label": "", "value": 64},
    }
    node = {
        "id": "resize",
        "type": "invocation",
        "data": {
            "id": "resize",
            "type": "img_resize",
            "version": "1.2.2",
            "label": "",
            "isIntermediate": False,
            "useCache": True,
            "inputs": inputs,
        },
        "position": {"x": 0, "y": 0},
    }
    exposed_fields = [{"nodeId": "resize", "fieldName": name} for name in inputs]
    return {
        "name": "workflows2 resize",
        "meta": {"version": "3.0.0", "category": "user"},
        "nodes": [node],
        "edges": [],
        "exposedFields": exposed_fields,
    }


@pytest.fixture(autouse=True)
def _fresh_templates():
    # Each test has its own fake InvokeAI on its own port; cached templates of another would be stale anyway.
    services.node_templates_forget()
    yield
    services.node_templates_forget()


@pytest.fixture
def invokeai(use_fake_invokeai, settings):
    settings.MODEL_DEFINITIONS = {}
    use_fake_invokeai.install_models(lora_models())
    models_cache.models_refresh()
    return use_fake_invokeai
