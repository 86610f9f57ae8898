"""InvokeAI workflows (the node editor's JSON) to `enqueue_batch` bodies, the way InvokeAI 6.14's web UI does it.

A workflow is a React Flow document: `nodes` (`invocation`, `notes`, `connector`), `edges` (`default`, or
`collapsed` ones that only draw), `exposedFields` and, from workflow version 4.0.0, a `form` made in the form
builder. The UI's procedure (EXTRAS §7, decoded from its bundle: buildNodesGraph, buildWorkflow,
useEnqueueWorkflows, validateWorkflow) is what InvokeAI expects, so the app follows it step by step:

1. `migrate`: 3.0.0 becomes 4.0.0 (a version bump), and a workflow without a valid form gets one built from its
   exposed fields, in order; exposed fields the form lacks are appended to its root.
2. `form_fields`: the exposed inputs are the form's `node-field` elements, depth first.
3. `values_set`: form values go into `nodes[i].data.inputs[field].value`; that is all the form does.
4. `graph_build`: invocation nodes (not batch or generator nodes), with the inputs the server's templates know
   and that have a value; `default` edges between kept nodes, through connectors; inputs fed by an edge dropped.
5. `batch_body`: the graph, the workflow as `buildWorkflow` trims it (without its id), origin `workflows`,
   destination `gallery`, and the batch nodes' items as `data`; a sweep of form fields over lists of values
   (the studio's "batch over a field") adds one more group per field, so their values multiply.

The server's node templates come from its `/openapi.json` (`templates_from_openapi`). Everything here is pure:
no network, no database.
"""

from __future__ import annotations

import copy
import hashlib
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import WorkflowError

ORIGIN = "workflows"
DESTINATION = "gallery"
SUPPORTED_VERSIONS = ("3.0.0", "4.0.0")
BATCH_NODE_FIELDS = {"image_batch": "images", "string_batch": "strings", "integer_batch": "integers"}
BATCH_NODE_FIELDS["float_batch"] = "floats"
# Generator nodes feed batch nodes; the UI evaluates them in the browser, the server cannot run them.
GENERATOR_SUFFIX = "_generator"
# The top-level keys `buildWorkflow` keeps in the copy it embeds in the batch.
EMBEDDED_KEYS = ("name", "author", "description", "version", "contact", "tags", "notes", "exposedFields", "meta")
NODE_ATTRIBUTES = frozenset({"id", "type", "is_intermediate", "use_cache"})

FieldType = Literal["string", "integer", "float", "boolean", "enum", "model", "image", "board", "color", "unknown"]
_REF_TYPES: dict[str, FieldType] = {
    "ModelIdentifierField": "model",
    "ImageField": "image",
    "BoardField": "board",
    "ColorField": "color",
}
_JSON_TYPES: dict[str, FieldType] = {"string": "string", "integer": "integer", "number": "float", "boolean": "boolean"}


# --- the server's node templates ---


@dataclass(frozen=True)
class InputTemplate:
    """One input of a node type, as the server's schema declares it."""

    name: str
    type: FieldType
    title: str = ""
    description: str = ""
    required: bool = False
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    multiple_of: float | None = None
    options: tuple[str, ...] = ()
    model_types: tuple[str, ...] = ()
    model_bases: tuple[str, ...] = ()
    # "connection": only an edge can feed it; "direct": only a value; "any": either.
    input: str = "any"
    # A list of values (a collection), whatever its item type.
    is_list: bool = False


@dataclass(frozen=True)
class NodeTemplate:
    type: str
    title: str = ""
    version: str = ""
    output: str = ""
    inputs: Mapping[str, InputTemplate] = field(default_factory=dict)


def _refs(schema: Any) -> Iterator[str]:
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str):
            yield ref.rsplit("/", 1)[-1]
        for value in schema.values():
            yield from _refs(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _refs(value)


def _variants(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The non-null alternatives of a property (`anyOf: [X, null]` is an optional X)."""
    alternatives = schema.get("anyOf") or schema.get("oneOf") or schema.get("allOf")
    if not isinstance(alternatives, list):
        return [schema]
    return [item for item in alternatives if isinstance(item, dict) and item.get("type") != "null"]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(item for item in value if isinstance(item, str)) if isinstance(value, list) else ()


def _input_template(name: str, schema: dict[str, Any], required: bool) -> InputTemplate:
    variants = _variants(schema)
    kind: FieldType = "unknown"
    is_list = False
    options: tuple[str, ...] = ()
    bounds = {**schema}
    if len(variants) == 1:
        variant = variants[0]
        bounds = {**variant, **schema}
        is_list = variant.get("type") == "array"
        ref = next(_refs(variant), "")
        if ref in _REF_TYPES and not is_list:
            kind = _REF_TYPES[ref]
        elif isinstance(variant.get("enum"), list) and not is_list:
            kind, options = "enum", tuple(str(option) for option in variant["enum"])
        elif isinstance(variant.get("const"), str):
            kind, options = "enum", (variant["const"],)
        elif not is_list and not ref:
            kind = _JSON_TYPES.get(str(variant.get("type")), "unknown")
    return InputTemplate(
        name=name,
        type=kind,
        title=str(schema.get("title") or ""),
        description=str(schema.get("description") or ""),
        required=bool(schema.get("orig_required", required)),
        default=schema.get("default"),
        minimum=_number(bounds.get("minimum", bounds.get("exclusiveMinimum"))),
        maximum=_number(bounds.get("maximum", bounds.get("exclusiveMaximum"))),
        multiple_of=_number(bounds.get("multipleOf")),
        options=options,
        model_types=_strings(schema.get("ui_model_type")),
        model_bases=_strings(schema.get("ui_model_base")),
        input=str(schema.get("input") or "any"),
        is_list=is_list,
    )


def templates_from_openapi(openapi: Any) -> dict[str, NodeTemplate]:
    """The node types an InvokeAI server has, from its `/openapi.json`: the schemas of class `invocation`."""
    schemas = openapi.get("components", {}).get("schemas", {}) if isinstance(openapi, dict) else {}
    if not isinstance(schemas, dict):
        raise ValueError("components.schemas is not an object")
    templates: dict[str, NodeTemplate] = {}
    for schema in schemas.values():
        if not isinstance(schema, dict) or schema.get("class") != "invocation":
            continue
        properties = schema.get("properties")
        if not isinstance(properties, dict) or not isinstance(properties.get("type"), dict):
            continue
        node_type = properties["type"].get("const") or properties["type"].get("default")
        if not isinstance(node_type, str):
            continue
        required = set(schema.get("required") or ())
        inputs = {
            name: _input_template(name, prop, name in required)
            for name, prop in properties.items()
            if isinstance(prop, dict) and name not in ("id", "type")
        }
        templates[node_type] = NodeTemplate(
            type=node_type,
            title=str(schema.get("title") or node_type),
            version=str(schema.get("version") or ""),
            output=next(_refs(schema.get("output")), ""),
            inputs=inputs,
        )
    return templates


# --- reading a workflow ---


@dataclass(frozen=True)
class FieldRef:
    node_id: str
    field_name: str

    @property
    def name(self) -> str:
        return f"{self.node_id}.{self.field_name}"

    @classmethod
    def parse(cls, name: str) -> FieldRef:
        node_id, dot, field_name = name.rpartition(".")
        if not dot or not node_id or not field_name:
            raise WorkflowError(
                f"{name!r} is not a field name: fields are named <nodeId>.<fieldName>.", details={"field": name}
            )
        return cls(node_id, field_name)


@dataclass(frozen=True)
class MissingNode:
    node_id: str
    node_type: str
    label: str


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise WorkflowError(f"This is not an InvokeAI workflow: {message}.")


def check_shape(workflow: Any) -> dict[str, Any]:
    """`workflow` if it has the shape of a workflow (what an editor export or the library holds), else a
    `WorkflowError` saying what is wrong."""
    _require(isinstance(workflow, dict), "it is not a JSON object")
    _require(isinstance(workflow.get("name", ""), str), "its name is not text")
    _require(isinstance(workflow.get("nodes"), list), "it has no list of nodes")
    _require(isinstance(workflow.get("edges"), list), "it has no list of edges")
    meta = workflow.get("meta")
    _require(isinstance(meta, dict) and isinstance(meta.get("version"), str), "it has no meta.version")
    for node in workflow["nodes"]:
        _require(isinstance(node, dict) and isinstance(node.get("id"), str), "a node has no id")
        _require(isinstance(node.get("data", {}), dict), f"node {node['id']} has no data")
        if node.get("type") == "invocation":
            data = node.get("data")
            _require(isinstance(data, dict) and isinstance(data.get("type"), str), f"node {node['id']} has no type")
            _require(isinstance(data.get("inputs", {}), dict), f"node {node['id']}'s inputs are not an object")
            for value in data.get("inputs", {}).values():
                _require(isinstance(value, dict), f"an input of node {node['id']} is not an object")
    for edge in workflow["edges"]:
        _require(
            isinstance(edge, dict) and isinstance(edge.get("source"), str) and isinstance(edge.get("target"), str),
            "an edge has no source or target",
        )
    exposed = workflow.get("exposedFields", [])
    _require(isinstance(exposed, list), "exposedFields is not a list")
    for item in exposed:
        _require(
            isinstance(item, dict) and isinstance(item.get("nodeId"), str) and isinstance(item.get("fieldName"), str),
            "an exposed field has no nodeId and fieldName",
        )
    return workflow  # type: ignore[no-any-return]


def _nodes(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {node["id"]: node for node in workflow["nodes"]}


def _invocations(workflow: dict[str, Any]) -> Iterator[dict[str, Any]]:
    return (node for node in workflow["nodes"] if node.get("type") == "invocation")


def _executable(node: dict[str, Any]) -> bool:
    if node.get("type") != "invocation":
        return False
    node_type = node["data"]["type"]
    return node_type not in BATCH_NODE_FIELDS and not node_type.endswith(GENERATOR_SUFFIX)


def missing_node_types(workflow: dict[str, Any], templates: Mapping[str, NodeTemplate]) -> list[MissingNode]:
    """The nodes whose type the server does not have (InvokeAI removed several preprocessors in 6.x)."""
    return [
        MissingNode(node["id"], node["data"]["type"], str(node["data"].get("label") or ""))
        for node in _invocations(workflow)
        if _executable(node) and node["data"]["type"] not in templates
    ]


def _stable_id(prefix: str, *parts: str) -> str:
    # The UI picks random ids; derived ones make a migrated form the same every time it is built.
    return f"{prefix}-{hashlib.sha256('/'.join(parts).encode()).hexdigest()[:10]}"


def _valid_form(form: Any) -> bool:
    return (
        isinstance(form, dict)
        and isinstance(form.get("elements"), dict)
        and isinstance(form.get("rootElementId"), str)
        and isinstance(form["elements"].get(form["rootElementId"]), dict)
        and all(isinstance(element, dict) for element in form["elements"].values())
    )


def _field_identifier(element: dict[str, Any]) -> FieldRef | None:
    if element.get("type") != "node-field":
        return None
    identifier = (element.get("data") or {}).get("fieldIdentifier") or {}
    node_id, field_name = identifier.get("nodeId"), identifier.get("fieldName")
    return FieldRef(node_id, field_name) if isinstance(node_id, str) and isinstance(field_name, str) else None


def migrate(workflow: dict[str, Any], templates: Mapping[str, NodeTemplate]) -> dict[str, Any]:
    """A copy of `workflow` at version 4.0.0 with a form holding every exposed field the server can show."""
    workflow = copy.deepcopy(check_shape(workflow))
    version = workflow["meta"]["version"]
    if version not in SUPPORTED_VERSIONS:
        raise WorkflowError(
            f"This workflow is version {version}; the app reads versions {' and '.join(SUPPORTED_VERSIONS)}. "
            "Open it in InvokeAI's workflow editor and save it again.",
            details={"version": version},
        )
    workflow["meta"]["version"] = "4.0.0"
    form: dict[str, Any] = workflow.get("form") or {}
    if not _valid_form(form):
        root = _stable_id("container", workflow.get("name", ""), "root")
        form = {
            "rootElementId": root,
            "elements": {root: {"id": root, "type": "container", "data": {"layout": "column", "children": []}}},
        }
    root_element = form["elements"][form["rootElementId"]]
    root_element.setdefault("data", {}).setdefault("children", [])
    present = {ref for element in form["elements"].values() if (ref := _field_identifier(element))}
    node_types = {node["id"]: node["data"]["type"] for node in _invocations(workflow)}
    for exposed in workflow.get("exposedFields", []):
        ref = FieldRef(exposed["nodeId"], exposed["fieldName"])
        template = templates.get(node_types.get(ref.node_id, ""))
        # A field its node's template lacks is dropped, as the UI does; a node of a type the server lacks (or
        # templates not read) keeps its fields, shown as unknown: a workflow with such a node cannot run anyway.
        if ref in present or ref.node_id not in node_types or (template and ref.field_name not in template.inputs):
            continue
        element_id = _stable_id("node-field", ref.node_id, ref.field_name)
        form["elements"][element_id] = {
            "id": element_id,
            "type": "node-field",
            "parentId": root_element["id"],
            "data": {"fieldIdentifier": {"nodeId": ref.node_id, "fieldName": ref.field_name}, "showDescription": False},
        }
        root_element["data"]["children"].append(element_id)
        present.add(ref)
    workflow["form"] = form
    return workflow


def form_elements(workflow: dict[str, Any]) -> Iterator[tuple[int, dict[str, Any]]]:
    """The form's elements depth first from its root, with their depth (the root is 0); a migrated workflow."""
    form = workflow["form"]
    seen: set[str] = set()

    def walk(element_id: Any, depth: int) -> Iterator[tuple[int, dict[str, Any]]]:
        element = form["elements"].get(element_id) if isinstance(element_id, str) else None
        if element is None or element_id in seen:
            return  # a dangling or cyclic child, which the UI skips too
        seen.add(element_id)
        yield depth, element
        if element.get("type") == "container":
            for child in (element.get("data") or {}).get("children") or []:
                yield from walk(child, depth + 1)

    yield from walk(form["rootElementId"], 0)


def form_fields(workflow: dict[str, Any]) -> list[FieldRef]:
    """The exposed inputs in the form's order (of a migrated workflow)."""
    return [ref for _, element in form_elements(workflow) if (ref := _field_identifier(element))]


def node_input(workflow: dict[str, Any], ref: FieldRef) -> dict[str, Any] | None:
    node = _nodes(workflow).get(ref.node_id)
    if node is None or node.get("type") != "invocation":
        return None
    value = node["data"].get("inputs", {}).get(ref.field_name)
    return value if isinstance(value, dict) else None


def node_type_of(workflow: dict[str, Any], node_id: str) -> str:
    node = _nodes(workflow).get(node_id)
    return str(node["data"]["type"]) if node and node.get("type") == "invocation" else ""


def values_set(workflow: dict[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the (migrated) workflow with `values` (`{"<nodeId>.<fieldName>": value}`) written into its
    nodes. Only the form's fields can be set: anything else is the workflow's own, as its author left it."""
    workflow = copy.deepcopy(workflow)
    exposed = set(form_fields(workflow))
    nodes = _nodes(workflow)
    for name, value in values.items():
        ref = FieldRef.parse(name)
        if ref not in exposed:
            raise WorkflowError(f"{name} is not a field of this workflow's form.", details={"field": name})
        inputs = nodes[ref.node_id]["data"].setdefault("inputs", {})
        inputs.setdefault(ref.field_name, {"name": ref.field_name, "label": ""})["value"] = value
    return workflow


# --- the graph ---


def _connector_source(connector_id: str, nodes: dict[str, Any], edges: list[Any]) -> tuple[str, str] | None:
    """The invocation output a connector (a reroute dot) passes on, through any chain of connectors."""
    seen: set[str] = set()
    while connector_id not in seen:
        seen.add(connector_id)
        edge = next((e for e in edges if e.get("type") == "default" and e["target"] == connector_id), None)
        source = nodes.get(edge["source"]) if edge else None
        if edge is None or source is None:
            return None
        if source.get("type") != "connector":
            return (edge["source"], edge.get("sourceHandle") or "") if source.get("type") == "invocation" else None
        connector_id = source["id"]
    return None


def _board_value(value: Any, auto_board_id: str | None) -> tuple[bool, Any]:
    """(keep, value) of a board input: "auto" or nothing is the auto-add board, "none" no board at all."""
    if value in (None, "", "auto"):
        return (True, {"board_id": auto_board_id}) if auto_board_id and auto_board_id != "none" else (False, None)
    return (False, None) if value == "none" else (True, value)


def graph_build(
    workflow: dict[str, Any], templates: Mapping[str, NodeTemplate], *, auto_board_id: str | None = None
) -> dict[str, Any]:
    """The graph InvokeAI runs, from a migrated workflow whose values are set."""
    missing = missing_node_types(workflow, templates)
    if missing:
        raise missing_nodes_error(missing)
    nodes = _nodes(workflow)
    graph_nodes: dict[str, dict[str, Any]] = {}
    for node in workflow["nodes"]:
        if not _executable(node):
            continue
        data = node["data"]
        template = templates[data["type"]]
        inputs: dict[str, Any] = {}
        for name, value in data.get("inputs", {}).items():
            input_template = template.inputs.get(name)
            if input_template is None or name in NODE_ATTRIBUTES:
                continue  # the UI drops a field its template lacks ("Field template not found")
            if input_template.type == "board":
                keep, board = _board_value(value.get("value"), auto_board_id)
                if keep:
                    inputs[name] = board
            elif "value" in value:
                inputs[name] = value["value"]
        graph_nodes[node["id"]] = {
            "type": data["type"],
            "id": node["id"],
            **inputs,
            "use_cache": data.get("useCache", True),
            "is_intermediate": data.get("isIntermediate", True),
        }
    links: dict[tuple[str, str, str, str], None] = {}
    for edge in workflow["edges"]:
        target = nodes.get(edge["target"])
        source = nodes.get(edge["source"])
        if edge.get("type") != "default" or target is None or source is None or edge["target"] not in graph_nodes:
            continue
        origin: tuple[str, str] | None = (edge["source"], edge.get("sourceHandle") or "")
        if source.get("type") == "connector":
            origin = _connector_source(source["id"], nodes, workflow["edges"])
        if origin is None or origin[0] not in graph_nodes or not origin[1] or not edge.get("targetHandle"):
            continue  # edges from batch nodes become the batch's data instead
        links[(origin[0], origin[1], edge["target"], edge["targetHandle"])] = None
    edges = [
        {"source": {"node_id": s, "field": sf}, "destination": {"node_id": d, "field": df}} for s, sf, d, df in links
    ]
    for edge in edges:
        graph_nodes[edge["destination"]["node_id"]].pop(edge["destination"]["field"], None)
    return {"id": str(uuid.uuid4()), "nodes": graph_nodes, "edges": edges}


def missing_nodes_error(missing: list[MissingNode]) -> WorkflowError:
    named = ", ".join(f"{node.label or node.node_type} ({node.node_type}, node {node.node_id})" for node in missing)
    return WorkflowError(
        f"This workflow uses node types this InvokeAI does not have: {named}. They were removed or renamed in "
        "this version of InvokeAI: the workflow needs updating in InvokeAI's workflow editor.",
        code="workflow_outdated",
        details={"nodes": [{"node_id": n.node_id, "type": n.node_type} for n in missing]},
    )


def batch_data(workflow: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """The batch nodes' items as `batch.data`: one axis per ungrouped node, zipped within a batch group."""
    groups: dict[str, list[dict[str, Any]]] = {}
    data: list[list[dict[str, Any]]] = []
    for node in _invocations(workflow):
        node_type = node["data"]["type"]
        if node_type not in BATCH_NODE_FIELDS:
            continue
        items_field = BATCH_NODE_FIELDS[node_type]
        node_id = node["id"]
        if any(e["target"] == node_id and e.get("targetHandle") == items_field for e in workflow["edges"]):
            raise WorkflowError(
                f"Batch node {node_id} takes its items from a generator node, which only InvokeAI's own editor "
                "runs; give it a list of items instead.",
                details={"node_id": node_id},
            )
        inputs = node["data"].get("inputs", {})
        items = (inputs.get(items_field) or {}).get("value") or []
        handle = "image" if node_type == "image_batch" else "value"
        datums = [
            {"node_path": e["target"], "field_name": e["targetHandle"], "items": items}
            for e in workflow["edges"]
            if e["source"] == node_id and e.get("sourceHandle") == handle
        ]
        group = (inputs.get("batch_group_id") or {}).get("value", "None")
        if group == "None":
            if datums:
                data.append(datums)
        else:
            groups.setdefault(str(group), []).extend(datums)
    data.extend(group for group in groups.values() if group)
    return data


def sweep_refused(graph: dict[str, Any], ref: FieldRef) -> str:
    """Why the form field `ref` cannot be swept by batch data in `graph` ("" if it can): InvokeAI substitutes
    into a graph node's own input, so the node must run and no edge may feed the input."""
    if ref.node_id not in graph["nodes"]:
        return "its node does not run as part of the graph"
    if any(edge["destination"] == {"node_id": ref.node_id, "field": ref.field_name} for edge in graph["edges"]):
        return "a connection in the workflow feeds it"
    return ""


def images_made(batch: Mapping[str, Any]) -> int:
    """How many sessions a batch makes: its runs times the length of each group of its data."""
    count = int(batch.get("runs", 1))
    for group in batch.get("data") or []:
        count *= len(group[0]["items"]) if group else 1
    return count


def embedded_workflow(workflow: dict[str, Any]) -> dict[str, Any]:
    """The copy of the workflow a batch carries (InvokeAI stores it with each image), as `buildWorkflow` trims
    it: known top-level keys, nodes as {id, type, data, position}, edges without UI state, and no id."""
    embedded = {key: copy.deepcopy(workflow[key]) for key in EMBEDDED_KEYS if key in workflow}
    embedded["form"] = copy.deepcopy(workflow.get("form"))
    embedded["nodes"] = [
        {key: copy.deepcopy(node[key]) for key in ("id", "type", "data", "position") if key in node}
        for node in workflow["nodes"]
        if node.get("type") in ("invocation", "notes", "connector")
    ]
    edges = []
    for edge in workflow["edges"]:
        if edge.get("type") == "default" and edge.get("sourceHandle") and edge.get("targetHandle"):
            keys: tuple[str, ...] = ("id", "type", "source", "target", "sourceHandle", "targetHandle", "hidden")
        elif edge.get("type") == "collapsed":
            keys = ("id", "type", "source", "target")
        else:
            continue
        edges.append({key: edge[key] for key in keys if key in edge})
    embedded["edges"] = edges
    return embedded


def batch_body(
    workflow: dict[str, Any],
    values: Mapping[str, Any],
    templates: Mapping[str, NodeTemplate],
    *,
    runs: int = 1,
    sweeps: Mapping[str, Sequence[Any]] | None = None,
    auto_board_id: str | None = None,
    batch_id: str | None = None,
) -> dict[str, Any]:
    """The `enqueue_batch` body that runs `workflow` with the form's `values`, `runs` times, once for every
    combination of the `sweeps` (`{"<nodeId>.<fieldName>": [value, ...]}`, the first the outermost loop)."""
    sweeps = sweeps or {}
    for name, items in sweeps.items():
        if not items:
            raise WorkflowError(f"{name}: a batch over a field needs at least one value.", details={"field": name})
    # The graph holds each swept field's first value (InvokeAI substitutes the others), so it is whole as sent.
    filled = values_set(migrate(workflow, templates), {**values, **{name: items[0] for name, items in sweeps.items()}})
    graph = graph_build(filled, templates, auto_board_id=auto_board_id)
    data = batch_data(filled)
    for name, items in sweeps.items():
        ref = FieldRef.parse(name)
        if reason := sweep_refused(graph, ref):
            raise WorkflowError(f"{name} cannot take a list of values: {reason}.", details={"field": name})
        data.append([{"node_path": ref.node_id, "field_name": ref.field_name, "items": list(items)}])
    batch: dict[str, Any] = {
        "graph": graph,
        "workflow": embedded_workflow(filled),
        "runs": runs,
        "origin": ORIGIN,
        "destination": DESTINATION,
    }
    if data:
        batch["data"] = data
    if batch_id:
        batch["batch_id"] = batch_id
    return {"batch": batch, "prepend": False}


# --- what a finished item holds ---


def output_nodes(graph: dict[str, Any], templates: Mapping[str, NodeTemplate]) -> list[str]:
    """The graph's nodes whose images land in the gallery: non-intermediate nodes that output an image."""
    return [
        node_id
        for node_id, node in graph["nodes"].items()
        if not node.get("is_intermediate", True)
        and (templates.get(node["type"]) or NodeTemplate(node["type"])).output == "ImageOutput"
    ]


def seed_sources(graph: dict[str, Any]) -> list[str]:
    """The nodes whose output feeds a `seed` input: a seed they make (rand_int) is in the item's results only."""
    return sorted({edge["source"]["node_id"] for edge in graph["edges"] if edge["destination"]["field"] == "seed"})


def seed_inputs(graph: dict[str, Any]) -> list[FieldRef]:
    """The `seed` inputs set to a value in the graph itself (no edge feeds them)."""
    return [FieldRef(node_id, "seed") for node_id, node in graph["nodes"].items() if isinstance(node.get("seed"), int)]
