"""The workflow converter: workflow + form values -> enqueue_batch body, as InvokeAI's web UI builds it.

The fixtures are three default workflows that ran on a real 6.14.2 with their form values and the bodies the
UI's procedure made (copied from the shared InvokeAI notes). With INVOKEAI_TEST_URL, every default workflow of
that server is also converted and compared with the reference converter of those notes, when they are present.
"""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from backends.invokeai import workflows
from backends.invokeai.client import InvokeAIClient
from backends.invokeai.errors import WorkflowError
from testing import fake_invokeai

FIXTURES = Path(__file__).parent / "fixtures" / "workflows"
SLUGS = ("text_to_image_sd15", "text_to_image_sd15_lora", "text_to_image_sdxl")
REAL_URL = os.environ.get("INVOKEAI_TEST_URL", "")
REFERENCE = Path("/work/shared/invokeai/tools/workflow_to_batch.py")


def _load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture(scope="module")
def templates() -> dict[str, workflows.NodeTemplate]:
    return workflows.templates_from_openapi(fake_invokeai.openapi())


def _normal_form(workflow: dict[str, Any]) -> dict[str, Any]:
    """The workflow with its form's element ids replaced by their place in the form (the UI's are random)."""
    workflow = copy.deepcopy(workflow)
    order = [element["id"] for _, element in workflows.form_elements(workflow)]
    names = {element_id: f"element-{index}" for index, element_id in enumerate(order)}
    text = json.dumps(workflow["form"])
    for old, new in names.items():
        text = text.replace(old, new)
    workflow["form"] = json.loads(text)
    return workflow


def _comparable(body: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(body)
    body["batch"]["graph"].pop("id")
    body["batch"]["workflow"] = _normal_form(body["batch"]["workflow"])
    return body


@pytest.mark.parametrize("slug", SLUGS)
def test_the_bodies_that_ran_on_invokeai(slug, templates):
    workflow = _load(f"{slug}.workflow.json")
    values = _load(f"{slug}.form_values.json")
    expected = _load(f"{slug}.enqueue_batch.json")

    body = workflows.batch_body(workflow, values, templates)

    assert _comparable(body) == _comparable(expected)
    assert "id" not in body["batch"]["workflow"]
    assert body["batch"]["origin"] == "workflows" and body["batch"]["destination"] == "gallery"
    # The workflow as stored is not changed by converting it.
    assert workflow == _load(f"{slug}.workflow.json")


def test_a_form_is_built_from_the_exposed_fields_in_order_and_stays_the_same(templates):
    workflow = _load("text_to_image_sd15_lora.workflow.json")
    migrated = workflows.migrate(workflow, templates)

    assert migrated["meta"]["version"] == "4.0.0"
    assert [ref.name for ref in workflows.form_fields(migrated)] == [
        f"{item['nodeId']}.{item['fieldName']}" for item in workflow["exposedFields"]
    ]
    assert workflows.migrate(workflow, templates)["form"] == migrated["form"]


def test_exposed_fields_missing_from_a_form_are_appended(templates):
    migrated = workflows.migrate(_load("text_to_image_sd15.workflow.json"), templates)
    first = workflows.form_fields(migrated)
    root = migrated["form"]["elements"][migrated["form"]["rootElementId"]]
    dropped = root["data"]["children"].pop(0)
    del migrated["form"]["elements"][dropped]

    again = workflows.migrate(migrated, templates)

    assert set(workflows.form_fields(again)) == set(first)
    assert workflows.form_fields(again)[-1] == first[0]


def test_a_rand_int_seed_is_found_as_the_seed_source(templates):
    body = workflows.batch_body(_load("text_to_image_sd15.workflow.json"), {}, templates)
    graph = body["batch"]["graph"]

    (source,) = workflows.seed_sources(graph)
    assert graph["nodes"][source]["type"] == "rand_int"
    (output,) = workflows.output_nodes(graph, templates)
    assert graph["nodes"][output]["type"] == "l2i"


def _edge(edge_id: str, source: str, source_handle: str, target: str, target_handle: str) -> dict[str, Any]:
    return {
        "id": edge_id,
        "type": "default",
        "source": source,
        "target": target,
        "sourceHandle": source_handle,
        "targetHandle": target_handle,
    }


def _tiny_workflow(**extra: Any) -> dict[str, Any]:
    """A hand-made 4.0.0 workflow: an integer through a connector into a noise node, and a notes node."""

    def invocation(node_id: str, node_type: str, **inputs: Any) -> dict[str, Any]:
        return {
            "id": node_id,
            "type": "invocation",
            "position": {"x": 0, "y": 0},
            "data": {
                "id": node_id,
                "type": node_type,
                "version": "1.0.0",
                "label": "",
                "isIntermediate": True,
                "useCache": True,
                "inputs": {name: {"name": name, "label": "", "value": value} for name, value in inputs.items()},
            },
        }

    workflow = {
        "name": "tiny",
        "meta": {"version": "4.0.0", "category": "user"},
        "exposedFields": [{"nodeId": "n", "fieldName": "width"}],
        "nodes": [
            invocation("i", "integer", value=7),
            {"id": "c", "type": "connector", "data": {}, "position": {"x": 0, "y": 0}},
            invocation("n", "noise", seed=1, width=64, height=64),
            {"id": "note", "type": "notes", "data": {"notes": "hello"}, "position": {"x": 0, "y": 0}},
        ],
        "edges": [
            _edge("e1", "i", "value", "c", "in"),
            _edge("e2", "c", "out", "n", "seed"),
            {"id": "e3", "type": "collapsed", "source": "i", "target": "n"},
        ],
        "form": None,
        "id": "user-1",
    }
    workflow.update(extra)
    return workflow


def test_connectors_are_followed_and_fed_inputs_dropped(templates):
    body = workflows.batch_body(_tiny_workflow(), {"n.width": 128}, templates, runs=3, batch_id="b-1")
    graph = body["batch"]["graph"]

    assert set(graph["nodes"]) == {"i", "n"}
    assert graph["edges"] == [
        {"source": {"node_id": "i", "field": "value"}, "destination": {"node_id": "n", "field": "seed"}}
    ]
    assert "seed" not in graph["nodes"]["n"] and graph["nodes"]["n"]["width"] == 128
    assert body["batch"]["runs"] == 3 and body["batch"]["batch_id"] == "b-1"
    embedded = body["batch"]["workflow"]
    assert [node["id"] for node in embedded["nodes"]] == ["i", "c", "n", "note"]
    assert embedded["edges"][2] == {"id": "e3", "type": "collapsed", "source": "i", "target": "n"}


def test_batch_nodes_become_batch_data(templates):
    workflow = _tiny_workflow()
    workflow["nodes"].append(
        {
            "id": "b",
            "type": "invocation",
            "data": {"type": "integer_batch", "inputs": {"integers": {"name": "integers", "value": [64, 128]}}},
        }
    )
    workflow["edges"].append(_edge("e4", "b", "value", "n", "height"))

    body = workflows.batch_body(workflow, {}, templates)

    assert "b" not in body["batch"]["graph"]["nodes"]
    assert body["batch"]["data"] == [[{"node_path": "n", "field_name": "height", "items": [64, 128]}]]


def test_a_removed_node_type_is_named_and_the_editor_is_suggested(templates):
    workflow = _tiny_workflow()
    workflow["nodes"][0]["data"].update(type="canny_image_processor", label="Canny")

    with pytest.raises(WorkflowError) as error:
        workflows.batch_body(workflow, {}, templates)

    assert error.value.code == "workflow_outdated"
    assert "Canny (canny_image_processor, node i)" in error.value.message
    assert "InvokeAI's workflow editor" in error.value.message


@pytest.mark.parametrize(
    "broken",
    [
        [],
        {"nodes": [], "edges": []},
        {"nodes": "x", "edges": [], "meta": {"version": "4.0.0"}},
        {"nodes": [{"id": "a", "type": "invocation", "data": {}}], "edges": [], "meta": {"version": "4.0.0"}},
        {"nodes": [], "edges": [{"source": 1}], "meta": {"version": "4.0.0"}},
        {"nodes": [], "edges": [], "meta": {"version": "4.0.0"}, "exposedFields": [{"nodeId": 3}]},
    ],
)
def test_what_is_not_a_workflow_is_refused_with_a_reason(broken, templates):
    with pytest.raises(WorkflowError, match="This is not an InvokeAI workflow"):
        workflows.migrate(broken, templates)


def test_old_versions_are_refused(templates):
    with pytest.raises(WorkflowError, match="save it again"):
        workflows.migrate(_tiny_workflow(meta={"version": "2.0.0"}), templates)


def test_only_form_fields_can_be_set(templates):
    migrated = workflows.migrate(_tiny_workflow(), templates)
    with pytest.raises(WorkflowError, match="not a field of this workflow's form"):
        workflows.values_set(migrated, {"n.height": 8})
    with pytest.raises(WorkflowError, match="not a field name"):
        workflows.values_set(migrated, {"nodot": 8})


def test_templates_type_the_inputs(templates):
    noise = templates["noise"].inputs
    assert (noise["width"].type, noise["width"].multiple_of, noise["seed"].maximum) == ("integer", 8, 4294967295)
    model = templates["main_model_loader"].inputs["model"]
    assert (model.type, model.model_types, model.model_bases) == ("model", ("main",), ("sd-1", "sd-2"))
    assert templates["l2i"].inputs["board"].type == "board"
    assert templates["denoise_latents"].inputs["scheduler"].type == "enum"
    assert "euler" in templates["denoise_latents"].inputs["scheduler"].options
    assert templates["lora_loader"].inputs["weight"].type == "float"
    assert templates["compel"].inputs["prompt"].type == "string"
    assert workflows.templates_from_openapi({"components": {"schemas": {"x": {"class": "invocation"}}}}) == {}
    assert workflows.templates_from_openapi([1]) == {}


# --- against a real InvokeAI ---


def _reference() -> Any:
    if not REFERENCE.exists():
        pytest.skip("the shared InvokeAI notes (the reference converter) are not on this machine")
    sys.path.insert(0, str(REFERENCE.parent))
    try:
        import workflow_to_batch
    finally:
        sys.path.remove(str(REFERENCE.parent))
    return workflow_to_batch


@pytest.mark.invokeai
@pytest.mark.skipif(not REAL_URL, reason="set INVOKEAI_TEST_URL to run against a real InvokeAI")
def test_every_default_workflow_converts_as_the_reference_does():
    reference = _reference()
    client = InvokeAIClient(REAL_URL, connect_timeout=5, read_timeout=60)
    templates = client.node_templates()
    reference_templates = reference.load_templates(REAL_URL)
    defaults = client.list_workflows(categories=["default"])
    assert len(defaults) >= 20
    refused = []
    for summary in defaults:
        workflow = client.get_workflow(summary.workflow_id)
        assert workflow is not None
        try:
            expected = reference.build_enqueue_body(workflow, {}, reference_templates)
        except (ValueError, NotImplementedError) as exc:
            with pytest.raises(WorkflowError):
                workflows.batch_body(workflow, {}, templates)
            refused.append((summary.name, str(exc)))
            continue
        assert _comparable(workflows.batch_body(workflow, {}, templates)) == _comparable(expected), summary.name
    # The defaults that use preprocessors 6.14 removed are refused by both.
    assert any("canny_image_processor" in reason for _, reason in refused)
    assert client.get_workflow("default_no-such-workflow") is None
