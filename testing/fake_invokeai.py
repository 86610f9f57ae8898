"""A fake InvokeAI 6.14 HTTP server for tests: real sockets, the real server's answers, a clock tests control.

It is a small WSGI app (werkzeug, a dev dependency) served on 127.0.0.1 in a thread. It behaves like the real
server wherever the client depends on it, and the client's test module runs against both to keep it so:

* enqueue bodies are validated the way InvokeAI does: each node against the server's own schema
  (`fake_invokeai_schema.json`, trimmed from its `/openapi.json`: model identifiers need all five fields, sizes are
  multiples of 8...), then the graph (node ids, edge ends and fields, cycles, edge types) and the batch data
  (zipped lengths, item types, targets), answering FastAPI's 422 `{"detail": [{"type", "loc", "msg"}]}`;
* answers have the shapes recorded from a live 6.14.2 (descending `item_ids`, `items_by_ids` leaving out
  missing items, the web UI's HTML for unknown GET paths, ...);
* items move pending -> in_progress -> completed on `clock` (each takes `seconds_per_item`), one at a time;
  completed items carry `session.results` and `prepared_source_mapping` for every node, and every image-making
  node saves a real PNG (with `invokeai_metadata` and `invokeai_graph` text chunks) and a WebP thumbnail;
  an item whose graph names a model key not installed fails with "Unknown model <key>", as on the real server.

It also serves InvokeAI's Socket.IO events at `/ws/socket.io` (python-socketio over websocket, `subscribe_queue`,
the login token in multiuser mode) with the real payloads: `queue_item_status_changed` as items start and
finish, `invocation_progress` at each denoising step (the graph's `steps`, spread over the first
DENOISE_SHARE of an item's time) with a small JPEG preview that changes each step, `invocation_complete` of the
output node, and `queue_items_canceled` for a bulk cancel (6.14: no per-item events then, but for the running
item). `events_sent` records them; `duplicate_events()` sends each twice as 6.13 does in single-user mode (the
second progress copy without its image), `drop_events()` loses some, `disconnect_sockets()` drops every
connection, `emit_event()` and `emit_raw()` send whatever a hostile server would. Events are sent as the clock
passes each moment, within TICK seconds.

Faults to inject: `refuse_connections()`, `fail_requests()` (e.g. 500s), `hang_requests()` (an answer later
than any read timeout), `hold_requests()` (a request held, before or after the server acts on it, until the test
releases it: for races), `rewrite_answers()` (a hostile server's answer in place of the real one), `fail_items()`,
`vanish()`, `restart()` (in-progress items become canceled, install job ids start again from 0),
`reinstall_model()` (same hash, new key), and multiuser mode with logins and refreshed tokens. `patchmatch` is
what `/api/v1/app/patchmatch_status` says (None: the route is missing, as on servers before 6.9).

Model installs behave as EXTRAS.md recorded them: `add_model_file()` puts a file on the fake host (a model of any
config, a non-model file, or one the probe cannot identify), `add_download()` a URL that downloads on `clock`; a
path that is not there is 409, a Hugging Face id 500 (offline), a duplicate and a non-model file jobs in `error`
with InvokeAI's reason, an unidentified one a completed job of type `unknown`; the 204 endpoints answer 500 to
clients that accept gzip (after acting).
"""

from __future__ import annotations

import base64
import copy
import io
import itertools
import json
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import socketio
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from PIL import Image, PngImagePlugin
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

SCHEMA_PATH = Path(__file__).with_name("fake_invokeai_schema.json")
# The models list of a live 6.14.2 with the peer's tiny models of every kind (`GET /api/v2/models/`), paths
# rewritten under <fake>.
RECORDED_MODELS_PATH = Path(__file__).with_name("fake_invokeai_models.json")
VERSION = "6.14.2"
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
_HTML = "<!doctype html><html><head><title>Invoke - Community Edition</title></head><body></body></html>"
_NODE_ATTRIBUTES = ("id", "type", "is_intermediate", "use_cache")
_SYSTEM_USER = {"user_id": "system", "user_display_name": "System", "user_email": "system@system.invokeai"}
# Denoising takes this share of an item's time; decoding and saving the image the rest.
DENOISE_SHARE = 0.8
# How often the events are brought up to the clock while a socket is connected.
TICK = 0.05


# --- the schema ---


def trim_openapi(openapi: dict[str, Any], node_types: Iterable[str], *, version: str) -> dict[str, Any]:
    """Keep, from a live server's /openapi.json, the schemas of `node_types` and all they refer to."""
    schemas = openapi["components"]["schemas"]
    by_type = {
        schema["properties"]["type"]["const"]: name
        for name, schema in schemas.items()
        if schema.get("class") == "invocation"
    }
    kept: set[str] = set()

    def keep(name: str) -> None:
        if name not in kept:
            kept.add(name)
            visit(schemas[name])

    def visit(value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if key == "$ref":
                    keep(inner.rsplit("/", 1)[-1])
                else:
                    visit(inner)
        elif isinstance(value, list):
            for inner in value:
                visit(inner)

    for node_type in node_types:
        if node_type not in by_type:
            raise ValueError(f"InvokeAI {version} has no node type '{node_type}'")
        keep(by_type[node_type])
    return {
        "invokeai_version": version,
        # Every tag the server knows, so an unknown one is refused as the server refuses it.
        "node_types": sorted(by_type),
        "components": {"schemas": {name: schemas[name] for name in sorted(kept)}},
    }


@cache
def _schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@cache
def _invocations() -> dict[str, str]:
    """Node type -> the name of its invocation schema, for the types the trimmed schema keeps."""
    return {
        schema["properties"]["type"]["const"]: name
        for name, schema in _schema()["components"]["schemas"].items()
        if schema.get("class") == "invocation"
    }


def node_types_in_schema() -> list[str]:
    """The node types whose schemas the fake has (and can validate)."""
    return sorted(_invocations())


@cache
def openapi() -> dict[str, Any]:
    """The fake's `/openapi.json`: the trimmed schemas in full, every other node type of the real server as a
    stub with only its type (enough to tell which node types exist)."""
    schema = _schema()
    every_type = {
        tag: {"properties": {"type": {"const": tag}}, "class": "invocation"}
        for tag in schema["node_types"]
        if tag not in _invocations()
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Invoke - Community Edition", "version": "1.0.0"},
        "components": {
            "schemas": {
                **{f"Untrimmed_{tag}": value for tag, value in every_type.items()},
                **schema["components"]["schemas"],
            }
        },
    }


def _validator(schema_name: str) -> Draft202012Validator:
    return Draft202012Validator({**_schema(), "$ref": f"#/components/schemas/{schema_name}"})


def _component(name: str) -> dict[str, Any]:
    return _schema()["components"]["schemas"][name]


def _input_fields(node_type: str) -> dict[str, Any]:
    return _component(_invocations()[node_type])["properties"]


def _output_schema(node_type: str) -> dict[str, Any]:
    return _component(_component(_invocations()[node_type])["output"]["$ref"].rsplit("/", 1)[-1])


def _enum(name: str) -> list[str]:
    return _component(name)["enum"]


# --- validation, in InvokeAI's words ---


class Invalid(Exception):
    """A 422: `errors` are FastAPI's `detail` entries."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors)
        self.errors = errors


def _value_error(loc: list[Any], message: str, value: Any = None) -> Invalid:
    return Invalid([{"type": "value_error", "loc": loc, "msg": f"Value error, {message}", "input": value}])


def _pydantic_error(error: ValidationError, loc: list[Any]) -> dict[str, Any]:
    """Translate a jsonschema error into the entry pydantic would have written for it."""
    while error.context:
        # For `X | None` pydantic reports what is wrong with the X, not that the value is not null.
        branches = [e for e in error.context if (e.validator, e.validator_value) != ("type", "null")]
        error = best_match(branches or error.context)
    where = [*loc, *error.absolute_path]
    kind, value, given = error.validator, error.validator_value, error.instance
    if kind == "required":
        missing = next(name for name in value if name not in given)
        return {"type": "missing", "loc": [*where, missing], "msg": "Field required", "input": given}
    if kind == "type":
        words = {"integer": "a valid integer", "number": "a valid number", "string": "a valid string"}
        words |= {"boolean": "a valid boolean", "object": "a valid dictionary", "array": "a valid list"}
        name = {"object": "dict", "array": "list", "number": "float", "integer": "int", "string": "string"}
        error_type, message = f"{name.get(value, value)}_type", f"Input should be {words.get(value, value)}"
    elif kind == "enum":
        error_type, message = "enum", "Input should be " + " or ".join(repr(option) for option in value)
    else:
        error_type, message = {
            "multipleOf": ("multiple_of", f"Input should be a multiple of {value}"),
            "minimum": ("greater_than_equal", f"Input should be greater than or equal to {value}"),
            "maximum": ("less_than_equal", f"Input should be less than or equal to {value}"),
            "exclusiveMinimum": ("greater_than", f"Input should be greater than {value}"),
            "exclusiveMaximum": ("less_than", f"Input should be less than {value}"),
            "const": ("literal_error", f"Input should be {value!r}"),
        }.get(kind, (kind, error.message))
    return {"type": error_type, "loc": where, "msg": message, "input": given}


def _signature(schema: dict[str, Any]) -> set[str]:
    """A field's accepted types, coarsely: "Any", type names, refs, and "list[...]" of those."""
    if "$ref" in schema:
        return {schema["$ref"].rsplit("/", 1)[-1]}
    if "anyOf" in schema:
        return set().union(*(_signature(option) for option in schema["anyOf"]))
    kind = schema.get("type")
    if kind is None:
        return {"Any"}
    if kind == "array":
        items = _signature(schema.get("items", {}))
        return {"Any"} if "Any" in items else {f"list[{name}]" for name in items}
    return set() if kind == "null" else {kind}


def _compatible(source: set[str], destination: set[str]) -> bool:
    """InvokeAI's are_connection_types_compatible, on signatures: Any matches all, unions match on overlap."""
    if "Any" in source or "Any" in destination or source & destination:
        return True
    # pydantic casts int -> float and numbers -> str for the destination.
    return bool(source & {"integer", "number"} and destination & {"number", "string"})


def validate_enqueue(body: Any) -> dict[str, Any]:
    """Check an enqueue_batch body as InvokeAI 6.14 does; return the batch with node defaults filled in."""
    if not isinstance(body, dict) or not isinstance(body.get("batch"), dict):
        raise Invalid([{"type": "missing", "loc": ["body", "batch"], "msg": "Field required", "input": body}])
    batch = copy.deepcopy(body["batch"])
    graph = batch.get("graph")
    if not isinstance(graph, dict):
        raise Invalid([{"type": "missing", "loc": ["body", "batch", "graph"], "msg": "Field required", "input": batch}])
    runs = batch.setdefault("runs", 1)
    errors: list[dict[str, Any]] = []
    if not isinstance(runs, int) or runs < 1:
        errors.append(
            {
                "type": "greater_than_equal",
                "loc": ["body", "batch", "runs"],
                "msg": "Input should be greater than or equal to 1",
                "input": runs,
            }
        )
    nodes: dict[str, dict[str, Any]] = graph.get("nodes") or {}
    edges: list[dict[str, Any]] = graph.get("edges") or []
    for node_id, node in nodes.items():
        loc = ["body", "batch", "graph", "nodes", node_id]
        node_type = node.get("type") if isinstance(node, dict) else None
        if node_type not in _schema()["node_types"]:
            tags = ", ".join(repr(tag) for tag in _schema()["node_types"])
            errors.append(
                {
                    "type": "union_tag_invalid",
                    "loc": loc,
                    "msg": f"Input tag '{node_type}' found using 'type' does not match any of the expected "
                    f"tags: {tags}",
                    "input": node,
                }
            )
            continue
        if node_type not in _invocations():
            errors.append(
                {
                    "type": "fake_schema_missing",
                    "loc": loc,
                    "msg": f"The fake InvokeAI has no schema for '{node_type}': add it to {SCHEMA_PATH.name} "
                    "with `python -m testing.refresh_fake_schema --add-type " + node_type + "`.",
                    "input": node,
                }
            )
            continue
        errors += [
            _pydantic_error(error, [*loc, node_type])
            for error in _validator(_invocations()[node_type]).iter_errors(node)
        ]
    errors += _data_errors(batch.get("data"))
    if errors:
        raise Invalid(errors)
    _check_graph(nodes, edges)
    _check_data_targets(batch.get("data"), nodes)
    for node in nodes.values():
        for name, prop in _input_fields(node["type"]).items():
            if "default" in prop:
                node.setdefault(name, copy.deepcopy(prop["default"]))
    batch.setdefault("batch_id", str(uuid.uuid4()))
    for key in ("origin", "destination", "data", "workflow"):
        batch.setdefault(key, None)
    return batch


def _check_graph(nodes: dict[str, dict[str, Any]], edges: list[dict[str, Any]]) -> None:
    loc = ["body", "batch", "graph"]
    for node_id, node in nodes.items():
        if node["id"] != node_id:
            raise _value_error(loc, f"Node ids must match, got {node_id} and {node['id']}")
    for edge in edges:
        source, destination = edge["source"], edge["destination"]
        for end, label in ((source, "source"), (destination, "destination")):
            if end["node_id"] not in nodes:
                raise _value_error(loc, f"Edge {label} node {end['node_id']} does not exist in the graph")
        if source["field"] not in _output_schema(nodes[source["node_id"]]["type"])["properties"]:
            raise _value_error(loc, f"Edge source field {source['field']} does not exist in node {source['node_id']}")
        if destination["field"] not in _input_fields(nodes[destination["node_id"]]["type"]):
            raise _value_error(
                loc,
                f"Edge destination field {destination['field']} does not exist in node {destination['node_id']}",
            )
    successors: dict[str, list[str]] = {node_id: [] for node_id in nodes}
    for edge in edges:
        successors[edge["source"]["node_id"]].append(edge["destination"]["node_id"])
    state: dict[str, int] = {}

    def cyclic(node_id: str) -> bool:
        state[node_id] = 1
        for after in successors[node_id]:
            if state.get(after) == 1 or (after not in state and cyclic(after)):
                return True
        state[node_id] = 2
        return False

    if any(node_id not in state and cyclic(node_id) for node_id in nodes):
        raise _value_error(loc, "Graph contains cycles")
    for edge in edges:
        source, destination = edge["source"], edge["destination"]
        produced = _signature(_output_schema(nodes[source["node_id"]]["type"])["properties"][source["field"]])
        accepted = _signature(_input_fields(nodes[destination["node_id"]]["type"])[destination["field"]])
        if not _compatible(produced, accepted):
            raise _value_error(
                loc,
                "Edge source and target types do not match "
                f"({source['node_id']}.{source['field']} -> {destination['node_id']}.{destination['field']})",
            )


def _data_errors(data: Any) -> list[dict[str, Any]]:
    if data is None:
        return []
    loc = ["body", "batch", "data"]
    seen: set[tuple[str, str]] = set()
    for group in data:
        lengths = {len(datum.get("items", [])) for datum in group}
        if len(lengths) > 1:
            return _value_error(loc, "Zipped batch items must all have the same length", data).errors
        for datum in group:
            items = datum.get("items", [])
            numeric = all(isinstance(item, int | float) and not isinstance(item, bool) for item in items)
            if items and not numeric and len({type(item) for item in items}) > 1:
                return _value_error(loc, "All items in a batch must have the same type", data).errors
            pair = (datum["node_path"], datum["field_name"])
            if pair in seen:
                return _value_error(loc, "Each batch data must have unique node_id and field_name", data).errors
            seen.add(pair)
    return []


def _check_data_targets(data: Any, nodes: dict[str, dict[str, Any]]) -> None:
    for datum in itertools.chain.from_iterable(data or []):
        if datum["node_path"] not in nodes:
            raise _value_error(["body", "batch"], f"Node {datum['node_path']} not found in graph")
        if datum["field_name"] not in _input_fields(nodes[datum["node_path"]]["type"]):
            raise _value_error(["body", "batch"], f"Field {datum['field_name']} not found in node {datum['node_path']}")


def expand_batch(batch: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """The field values of each session, in InvokeAI's order: groups zip, groups multiply, runs repeat."""
    groups = []
    for group in batch.get("data") or []:
        zipped = zip(*(datum["items"] for datum in group), strict=True)
        groups.append(
            [
                [
                    {"node_path": datum["node_path"], "field_name": datum["field_name"], "value": value}
                    for datum, value in zip(group, values, strict=True)
                ]
                for values in zipped
            ]
        )
    sessions = []
    for _ in range(batch["runs"]):
        for combination in itertools.product(*groups):
            sessions.append([value for values in combination for value in values])
    return sessions


# --- the server's state ---


@dataclass
class FakeClock:
    """Seconds since the fake's epoch; only tests move it."""

    now: float = 0.0

    def advance(self, seconds: float) -> None:
        self.now += seconds


class WallClock(FakeClock):
    """Seconds since the fake started, as they pass (benchmarks: generating takes real time); `advance` still
    jumps ahead."""

    def __init__(self) -> None:
        self._started = time.monotonic()
        self._offset = 0.0

    @property  # type: ignore[override]
    def now(self) -> float:
        return time.monotonic() - self._started + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += seconds


@dataclass
class _InstallJob:
    id: int
    source: str
    name: str
    # What the probe makes of the file: a model config, NOT_A_MODEL or UNIDENTIFIED; None: a duplicate.
    probed: dict[str, Any] | str | None
    started_at: float
    seconds: float = 0.0
    total_bytes: int = 1000
    kind: str = "local"
    # The model the job registered, once it has.
    model_key: str | None = None


NOT_A_MODEL = "not-a-model"
UNIDENTIFIED = "unidentified"


@dataclass
class _Item:
    item_id: int
    batch: dict[str, Any]
    field_values: list[dict[str, Any]]
    created_at: float
    priority: int = 0
    status: str = "pending"
    status_sequence: int = 0
    session_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started_at: float | None = None
    completed_at: float | None = None
    updated_at: float = 0.0
    error: tuple[str, str] | None = None
    # InvokeAI's error_traceback; made from the error when a test gave none.
    traceback: str | None = None
    session: dict[str, Any] = field(default_factory=dict)
    # Set by fail_items(): the error this item will end with instead of completing.
    doomed: tuple[str, str, str | None] | None = None
    # Denoising steps whose progress event was sent.
    progress_sent: int = 0


@dataclass
class _Image:
    name: str
    png: bytes
    webp: bytes
    width: int
    height: int
    category: str
    is_intermediate: bool
    origin: str
    created_at: float
    metadata: dict[str, Any] | None = None
    session_id: str | None = None
    node_id: str | None = None
    board_id: str | None = None
    # The workflow JSON the batch that made it carried (a batch from the workflow editor), as text.
    workflow: str | None = None


@dataclass
class _Fault:
    path: re.Pattern[str]
    method: str | None
    times: int
    status: int = 500
    hang: bool = False
    rewrite: Callable[[Response], Response] | None = None


@dataclass
class Hold:
    """One request held by `hold_requests()`: `reached` is set once it arrives (and, with `after`, has been acted
    on); it is answered when the test calls `release()`."""

    path: re.Pattern[str]
    method: str | None
    after: bool
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    taken: bool = False

    def wait_reached(self, timeout: float = 10) -> None:
        if not self.reached.wait(timeout):
            raise AssertionError(f"no request for {self.path.pattern} reached the fake InvokeAI")

    def release(self) -> None:
        self.released.set()

    def block(self) -> None:
        self.reached.set()
        # Bounded, so a test that forgets to release cannot hang the suite.
        self.released.wait(timeout=30)


def _timestamp(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return (_EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def tiny_model(name: str, *, model_type: str, base: str, **extra: Any) -> dict[str, Any]:
    """A model config shaped like the live server's (`GET /api/v2/models/`)."""
    key = str(uuid.uuid5(uuid.NAMESPACE_URL, f"fake-invokeai/{name}"))
    config: dict[str, Any] = {
        "key": key,
        "hash": "blake3:" + uuid.uuid5(uuid.NAMESPACE_DNS, name).hex * 2,
        "path": f"<fake>/models/{name}",
        "file_size": 1_000_000,
        "name": name,
        "description": extra.pop("description", None),
        "source": extra.pop("source", f"<fake>/models/{name}"),
        "source_type": "path",
        "source_api_response": None,
        "source_url": None,
        "cover_image": None,
        "type": model_type,
    }
    if model_type == "main":
        size = {"sdxl": 1024, "sd-2": 768, "flux": 1024}.get(base, 512)
        config["trigger_phrases"] = None
        config["default_settings"] = {
            "vae": None,
            "vae_precision": None,
            "scheduler": None,
            "steps": None,
            "cfg_scale": None,
            "cfg_rescale_multiplier": None,
            "width": size,
            "height": size,
            "guidance": None,
            "cpu_only": None,
            "fp8_storage": None,
        }
    config["format"] = extra.pop("format", "diffusers")
    if model_type == "main":
        config.update(repo_variant="", prediction_type="epsilon", variant="normal")
    else:
        config["cpu_only"] = None
    config.update(extra)
    config["base"] = base
    return config


def default_models() -> list[dict[str, Any]]:
    """The tiny models of the peer InvokeAI (`shared/invokeai-peer/setup.sh`), so tests run against either."""
    return [
        tiny_model("tiny-sd1", model_type="main", base="sd-1", description="tiny random test model"),
        tiny_model("tiny-sd1-vae", model_type="vae", base="sd-1"),
        tiny_model("tiny-sdxl", model_type="main", base="sdxl", description="tiny random test model"),
        tiny_model("tiny-sdxl-vae-fp16-fix", model_type="vae", base="sdxl"),
    ]


def lora_models() -> list[dict[str, Any]]:
    """The peer's tiny SD1 LoRA (`shared/invokeai-peer/setup-extras.sh`), which workflows with a LoRA field take."""
    return [tiny_model("tiny-sd1-lora", model_type="lora", base="sd-1")]


def flux_models() -> list[dict[str, Any]]:
    """A FLUX schnell model and its three companions (the peer server has none: FLUX needs a GPU)."""
    return [
        tiny_model("flux-schnell", model_type="main", base="flux", format="checkpoint", variant="schnell"),
        tiny_model("t5-bnb-int8", model_type="t5_encoder", base="any", format="bnb_quantized_int8b"),
        tiny_model("clip-vit-large-patch14", model_type="clip_embed", base="any"),
        tiny_model("flux-ae", model_type="vae", base="flux", format="checkpoint"),
    ]


def recorded_models() -> list[dict[str, Any]]:
    """Every entry of the live server's list: main (SD1, SD2 v-prediction, SDXL, SDXL refiner, FLUX schnell), VAEs,
    a LoRA, an embedding, a ControlNet, FLUX's CLIP-embed and T5 encoder."""
    return json.loads(RECORDED_MODELS_PATH.read_text(encoding="utf-8"))


def every_type_models() -> list[dict[str, Any]]:
    """The recorded models plus the types the peer has no tiny model of, shaped as the server's schemas say."""
    return [
        *recorded_models(),
        tiny_model("t2i-sd1", model_type="t2i_adapter", base="sd-1", repo_variant="", default_settings=None),
        tiny_model(
            "ip-adapter-sd1", model_type="ip_adapter", base="sd-1", format="invokeai", image_encoder_model_id="x"
        ),
        tiny_model("clip-vision-h", model_type="clip_vision", base="any", repo_variant=""),
        tiny_model("4x-upscaler", model_type="spandrel_image_to_image", base="any", format="checkpoint"),
    ]


class FakeInvokeAI:
    """The fake server. `start()` it (the `fake_invokeai` fixture does), point a client at `url`."""

    def __init__(self, *, seconds_per_item: float = 1.0, multiuser: bool = False, wall_clock: bool = False) -> None:
        self.clock = WallClock() if wall_clock else FakeClock()
        self.seconds_per_item = seconds_per_item
        self.multiuser = multiuser
        self.users: dict[str, str] = {}
        self.max_queue_size = 10_000
        # Whether the server has PatchMatch (the peer's pypatchmatch is built); None: no such route (before 6.9).
        self.patchmatch: bool | None = True
        self.models: list[dict[str, Any]] = default_models()
        self.items: dict[int, _Item] = {}
        self.images: dict[str, _Image] = {}
        # board_id -> board_name; an image's board is its `board_id`.
        self.boards: dict[str, str] = {}
        # The workflow library: workflow_id -> (category, workflow JSON); `add_workflow()` fills it.
        self.workflows: dict[str, tuple[str, dict[str, Any]]] = {}
        # Every request as (method, path), for tests that count calls (retries, logins).
        self.requests: list[tuple[str, str]] = []
        # token -> whether it came from X-Refreshed-Token (rather than a login)
        self._tokens: dict[str, bool] = {}
        self._faults: list[_Fault] = []
        self._holds: list[Hold] = []
        self._doom: list[tuple[str, str, str | None]] = []
        self._next_item_id = 1
        self._free_at = 0.0
        # Files on the fake host and URLs it can download: source -> (probed, seconds, total bytes).
        self.files: dict[str, tuple[dict[str, Any] | str, float, int]] = {}
        self.install_jobs: dict[int, _InstallJob] = {}
        self._next_job_id = 0
        # Paused (PUT processor/pause): the running item finishes, pending ones wait.
        self.paused = False
        self._lock = threading.RLock()
        self._release = threading.Event()
        self._server: LoopbackServer | None = None
        self.port = 0
        # Socket.IO: every event sent as (name, payload), faults on them, and what is waiting to go out.
        self.events_sent: list[tuple[str, dict[str, Any]]] = []
        self.event_copies = 1
        self._drops: dict[str, int] = {}
        self._outbox: list[tuple[str, dict[str, Any]]] = []
        self._emit_lock = threading.Lock()
        self._ticker: threading.Thread | None = None
        self.sio = socketio.Server(async_mode="threading", cors_allowed_origins="*")
        self.sio.on("connect", self._sio_connect)
        self.sio.on("subscribe_queue", self._sio_subscribe)
        self._app = socketio.WSGIApp(self.sio, self._wsgi, socketio_path="ws/socket.io")
        self._urls = Map(
            [
                Rule("/api/v1/app/version", endpoint="version", methods=["GET"]),
                Rule("/api/v1/app/patchmatch_status", endpoint="patchmatch_status", methods=["GET"]),
                Rule("/api/v1/auth/status", endpoint="auth_status", methods=["GET"]),
                Rule("/api/v1/auth/login", endpoint="login", methods=["POST"]),
                Rule("/api/v2/models/", endpoint="models", methods=["GET"]),
                Rule("/api/v2/models/i/<key>", endpoint="model", methods=["GET"]),
                Rule("/api/v2/models/get_by_hash", endpoint="model_by_hash", methods=["GET"]),
                Rule("/api/v2/models/i/<key>", endpoint="model_delete", methods=["DELETE"]),
                Rule("/api/v2/models/install", endpoint="install", methods=["POST"]),
                Rule("/api/v2/models/install", endpoint="install_jobs", methods=["GET"]),
                Rule("/api/v2/models/install", endpoint="install_prune", methods=["DELETE"]),
                Rule("/api/v2/models/install/<int:job_id>", endpoint="install_job", methods=["GET"]),
                Rule("/api/v1/queue/<queue_id>/enqueue_batch", endpoint="enqueue", methods=["POST"]),
                Rule("/api/v1/queue/<queue_id>/b/<batch_id>/status", endpoint="batch_status", methods=["GET"]),
                Rule("/api/v1/queue/<queue_id>/items_by_ids", endpoint="items_by_ids", methods=["POST"]),
                Rule("/api/v1/queue/<queue_id>/i/<item_id>", endpoint="item", methods=["GET"]),
                Rule("/api/v1/queue/<queue_id>/cancel_by_batch_ids", endpoint="cancel", methods=["PUT"]),
                Rule("/api/v1/queue/<queue_id>/status", endpoint="queue_status", methods=["GET"]),
                Rule(
                    "/api/v1/queue/<queue_id>/processor/<any(pause, resume):action>",
                    endpoint="processor",
                    methods=["PUT"],
                ),
                Rule("/api/v1/images/upload", endpoint="upload", methods=["POST"]),
                Rule("/api/v1/images/i/<name>", endpoint="image_dto", methods=["GET"]),
                Rule(
                    "/api/v1/images/i/<name>/<any(full, thumbnail, metadata):part>",
                    endpoint="image",
                    methods=["GET"],
                ),
                Rule("/api/v1/workflows/", endpoint="workflows", methods=["GET"]),
                Rule("/api/v1/boards/", endpoint="boards", methods=["GET", "POST"]),
                Rule("/api/v1/boards/<board_id>", endpoint="board", methods=["GET", "DELETE"]),
                Rule("/api/v1/boards/<board_id>/image_names", endpoint="board_image_names", methods=["GET"]),
                Rule("/api/v1/board_images/", endpoint="board_images", methods=["POST"]),
                Rule("/api/v1/images/i/<name>/workflow", endpoint="image_workflow", methods=["GET"]),
                Rule("/api/v1/workflows/i/<workflow_id>", endpoint="workflow", methods=["GET"]),
                Rule("/openapi.json", endpoint="openapi", methods=["GET"]),
            ],
            strict_slashes=False,
        )

    # --- lifecycle ---

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeInvokeAI:
        self._server = LoopbackServer(self._app, port=self.port, name="fake-invokeai")
        self.port = self._server.port
        return self

    def stop(self) -> None:
        self.disconnect_sockets()
        self._release.set()
        for hold in self._holds:
            hold.release()
        if self._server is not None:
            self._server.stop()
            self._server = None

    # --- faults and controls ---

    def refuse_connections(self) -> None:
        """Stop listening: connections to `url` are refused until `accept_connections()`."""
        self.stop()
        self._release.clear()

    def accept_connections(self) -> None:
        self.start()

    def fail_requests(self, path: str, *, status: int = 500, times: int = 1, method: str | None = None) -> None:
        """Answer the next `times` requests whose path matches the regex `path` with `status`."""
        self._faults.append(_Fault(re.compile(path), method, times, status=status))

    def hang_requests(self, path: str, *, times: int = 1, method: str | None = None) -> None:
        """Hold the next `times` matching requests until `stop()` (past any read timeout), then answer 500."""
        self._faults.append(_Fault(re.compile(path), method, times, hang=True))

    def hold_requests(self, path: str, *, method: str | None = None, after: bool = False) -> Hold:
        """Hold the next request whose path matches the regex `path` until `release()`: before the server acts on
        it, or with `after`, once it has acted and before it answers (the client has not heard yet)."""
        hold = Hold(re.compile(path), method, after)
        with self._lock:
            self._holds.append(hold)
        return hold

    def rewrite_answers(
        self, path: str, rewrite: Callable[[Response], Response], *, times: int = 1, method: str | None = None
    ) -> None:
        """Answer the next `times` matching requests with `rewrite(real answer)`: a hostile server's answers
        (wrong shapes, redirects, endless bodies) to the requests the client really makes."""
        self._faults.append(_Fault(re.compile(path), method, times, rewrite=rewrite))

    def pump(self) -> None:
        """Bring the queue and its events up to the clock now (a ticker does it while a socket is connected)."""
        with self._lock:
            self._advance()
        self._flush()

    def duplicate_events(self, copies: int = 2) -> None:
        """Send every event `copies` times, as 6.13 does in single-user mode (progress copies lose their image)."""
        self.event_copies = copies

    def drop_events(self, name: str, *, times: int = 1) -> None:
        """Lose the next `times` events called `name` (as a dropped connection would)."""
        self._drops[name] = self._drops.get(name, 0) + times

    def emit_event(self, name: str, *args: Any) -> None:
        """Send any event, with any arguments, to the subscribed sockets now: a hostile server's events (wrong
        shapes, huge strings, bytes as binary attachments)."""
        with self._emit_lock:
            self.sio.emit(name, args[0] if len(args) == 1 else args, room="queue:default")

    def emit_raw(self, message: str | bytes) -> None:
        """Send a raw Engine.IO message (what should be a Socket.IO packet: `2["name", {...}]`) to every socket."""
        with self._emit_lock:
            for _, eio_sid in list(self.sio.manager.get_participants("/", "queue:default")):
                self.sio.eio.send(eio_sid, message)

    def disconnect_sockets(self) -> None:
        """Close every Socket.IO connection from the server's side."""
        for sid in list(self.sio.manager.get_participants("/", None)):
            self.sio.disconnect(sid[0] if isinstance(sid, tuple) else sid)

    @property
    def sockets(self) -> int:
        return sum(1 for _ in self.sio.manager.get_participants("/", "queue:default"))

    def fail_items(
        self,
        count: int = 1,
        *,
        error_type: str = "RuntimeError",
        error_message: str = "boom",
        error_traceback: str | None = None,
    ) -> None:
        """The next `count` items to start fail with this error (as a recorded failure has it, if given)."""
        self._doom += [(error_type, error_message, error_traceback)] * count

    def vanish(self, item_ids: Iterable[int]) -> None:
        """Forget items, as pruning or clearing the queue does."""
        with self._lock:
            for item_id in item_ids:
                self.items.pop(item_id, None)

    def restart(self) -> None:
        """What a server restart does to the queue: in-progress items become canceled."""
        with self._lock:
            self._advance()
            for item in self.items.values():
                if item.status == "in_progress":
                    self._finish(item, "canceled", self.clock.now)
            self._free_at = self.clock.now
            self._settle_installs()
            self.install_jobs.clear()
            self._next_job_id = 0

    def add_model_file(
        self, path: str, config: dict[str, Any] | str, *, seconds: float = 0.0, size: int = 441_864
    ) -> None:
        """A file or folder on the fake host: `config` is the model the probe finds (as `tiny_model` makes it), or
        NOT_A_MODEL (a .png), or UNIDENTIFIED (a folder no config matches). Installing takes `seconds` of clock."""
        self.files[path] = (config, seconds, size)

    def add_download(self, url: str, config: dict[str, Any] | str, *, seconds: float, size: int) -> None:
        """A URL (or Hugging Face id) InvokeAI can download: `size` bytes over `seconds` of clock."""
        self.files[url] = (config, seconds, size)

    def install_models(self, configs: Iterable[dict[str, Any]]) -> None:
        with self._lock:
            self.models += list(configs)

    def uninstall_model(self, name: str) -> None:
        with self._lock:
            self.models = [model for model in self.models if model["name"] != name]

    def reinstall_model(self, name: str) -> dict[str, Any]:
        """Install a model again: the same hash under a new key (FACTS #2)."""
        with self._lock:
            model = next(model for model in self.models if model["name"] == name)
            model["key"] = str(uuid.uuid4())
            return model

    def add_workflow(self, workflow: dict[str, Any], *, category: str = "user") -> str:
        """Put a workflow in the library, as the real server keeps it (its id is the server's); return the id."""
        workflow_id = f"default_{uuid.uuid4()}" if category == "default" else uuid.uuid4().hex
        stored = {**copy.deepcopy(workflow), "id": workflow_id}
        stored.setdefault("meta", {})["category"] = category
        self.workflows[workflow_id] = (category, stored)
        return workflow_id

    def model(self, name: str) -> dict[str, Any]:
        return next(model for model in self.models if model["name"] == name)

    def add_user(self, email: str, password: str) -> None:
        self.users[email] = password

    def expire_tokens(self, *, keep_refreshed: bool = False) -> None:
        """Make tokens invalid: all of them, or those a login gave (a client must then use refreshed ones)."""
        self._tokens = {token: True for token, refreshed in self._tokens.items() if keep_refreshed and refreshed}

    # --- the queue's clock ---

    def _advance(self) -> None:
        """Run the processor up to the clock's now: one item at a time, each for seconds_per_item."""
        now = self.clock.now
        while True:
            running = next((item for item in self.items.values() if item.status == "in_progress"), None)
            if running is not None:
                done_at = (running.started_at or 0.0) + self.seconds_per_item
                self._progress_events(running, until=min(now, done_at))
                if done_at > now:
                    return
                self._run(running, done_at)
                self._free_at = done_at
                continue
            pending = [item for item in self.items.values() if item.status == "pending"]
            if not pending or self.paused:
                return
            item = min(pending, key=lambda item: (-item.priority, item.item_id))
            start = max(self._free_at, item.created_at)
            if start > now:
                return
            item.status, item.started_at, item.updated_at = "in_progress", start, start
            item.status_sequence += 1
            self._status_event(item, at=start)
            if self._doom:
                item.doomed = self._doom.pop(0)

    def _finish(self, item: _Item, status: str, at: float) -> None:
        item.status, item.completed_at, item.updated_at = status, at, at
        item.status_sequence += 1
        self._status_event(item, at=at)

    def _run(self, item: _Item, at: float) -> None:
        installed = {model["key"] for model in self.models}
        graph = item.session["graph"]
        stale = next(
            (
                value["key"]
                for node in graph["nodes"].values()
                for value in node.values()
                if isinstance(value, dict) and "key" in value and "hash" in value and value["key"] not in installed
            ),
            None,
        )
        doomed = item.doomed
        error = doomed[:2] if doomed else (("Exception", f"Unknown model {stale}") if stale else None)
        self._execute(item, at, error=error)
        if error is None:
            self._complete_event(item, at)
        if error is not None:
            item.error = error
            recorded = doomed[2] if doomed else None
            item.traceback = recorded or f"Traceback (most recent call last):\n{error[0]}: {error[1]}\n"
            self._finish(item, "failed", at)
        else:
            self._finish(item, "completed", at)

    def _execute(self, item: _Item, at: float, *, error: tuple[str, str] | None) -> None:
        """Fill the session as the real processor does: an execution id and a result per executed node."""
        session = item.session
        graph = session["graph"]
        nodes, edges = graph["nodes"], graph["edges"]
        order = _topological(nodes, edges)
        exec_ids = {node_id: str(uuid.uuid4()) for node_id in order}
        values: dict[str, dict[str, Any]] = {}
        if error is not None:
            # The primitives run; the first model-loading node raises.
            order = [node_id for node_id in order if nodes[node_id]["type"] in ("integer", "string")]
        for node_id in order:
            node = dict(nodes[node_id])
            for edge in edges:
                if edge["destination"]["node_id"] == node_id and edge["source"]["node_id"] in values:
                    produced = values[edge["source"]["node_id"]].get(edge["source"]["field"])
                    if produced is not None:
                        node[edge["destination"]["field"]] = produced
            values[node_id] = self._output(item, node, exec_ids[node_id], graph, at)
        session["results"] = {exec_ids[node_id]: values[node_id] for node_id in order}
        session["executed"] = [exec_ids[node_id] for node_id in order] + order
        session["executed_history"] = list(order)
        session["prepared_source_mapping"] = {exec_ids[node_id]: node_id for node_id in order}
        session["source_prepared_mapping"] = {node_id: [exec_ids[node_id]] for node_id in order}
        session["execution_graph"] = {
            "id": str(uuid.uuid4()),
            "nodes": {exec_ids[node_id]: {**nodes[node_id], "id": exec_ids[node_id]} for node_id in order},
            "edges": [],
        }
        if error is not None:
            session["errors"] = {str(uuid.uuid4()): f"{error[0]}: {error[1]}"}

    def _output(
        self, item: _Item, node: dict[str, Any], exec_id: str, graph: dict[str, Any], at: float
    ) -> dict[str, Any]:
        output_type = _output_schema(node["type"])["properties"]["type"]["const"]
        if node["type"] in ("integer", "string"):
            return {"value": node["value"], "type": output_type}
        if node["type"] == "rand_int":
            # Seeded by the item, so a test can tell the seeds of a batch apart and find them again.
            low, high = node.get("low", 0), node.get("high", 2147483647)
            value = random.Random(item.item_id).randint(low, high - 1)  # noqa: S311  (test seeds, not secrets)
            return {"value": value, "type": output_type}
        if node["type"] == "core_metadata":
            # Known fields in the schema's order, then custom ones (the node allows extras); nulls left out.
            names = [*_input_fields("core_metadata"), *node]
            metadata = {
                name: node[name]
                for name in dict.fromkeys(names)
                if name not in _NODE_ATTRIBUTES and node.get(name) is not None
            }
            return {"metadata": metadata, "type": output_type}
        if output_type != "image_output":
            return {"type": output_type}
        width, height = _image_size(graph, self.images)
        metadata = node.get("metadata")
        if metadata is not None:
            metadata = {**metadata, "app_version": VERSION}
        seed = next((v["value"] for v in item.field_values or [] if v["node_path"] == "seed"), 0)
        image = self._store_image(
            _noise_png(width, height, seed, metadata, graph),
            category="general",
            is_intermediate=node.get("is_intermediate", False),
            origin="internal",
            metadata=metadata,
            session_id=item.session_id,
            node_id=exec_id,
            board_id=(node.get("board") or {}).get("board_id"),
            workflow=json.dumps(item.batch["workflow"]) if item.batch.get("workflow") else None,
            at=at,
        )
        return {
            "output_meta": None,
            "image": {"image_name": image.name},
            "width": width,
            "height": height,
            "type": output_type,
        }

    def _store_image(self, png: bytes, *, at: float, **attributes: Any) -> _Image:
        with Image.open(io.BytesIO(png)) as decoded:
            width, height = decoded.size
            thumbnail = decoded.convert("RGB")
            thumbnail.thumbnail((256, 256))
            webp = io.BytesIO()
            thumbnail.save(webp, "WEBP")
        image = _Image(
            name=f"{uuid.uuid4()}.png",
            png=png,
            webp=webp.getvalue(),
            width=width,
            height=height,
            created_at=at,
            **attributes,
        )
        self.images[image.name] = image
        return image

    # --- Socket.IO events ---

    def _sio_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        token = auth.get("token") if isinstance(auth, dict) else None
        if self.multiuser and token not in self._tokens:
            return False
        with self._lock:
            if self._ticker is None:
                self._ticker = threading.Thread(target=self._tick, name="fake-invokeai-events", daemon=True)
                self._ticker.start()
        return True

    def _sio_subscribe(self, sid: str, data: Any) -> None:
        queue_id = data.get("queue_id") if isinstance(data, dict) else None
        if isinstance(queue_id, str):
            self.sio.enter_room(sid, f"queue:{queue_id}")

    def _tick(self) -> None:
        """Bring the queue, and so its events, up to the clock, as the real processor runs by itself."""
        while not self._release.wait(TICK):
            with self._lock:
                self._advance()
            self._flush()

    def _event(self, name: str, payload: dict[str, Any]) -> None:
        """Queue an event (sent by `_flush`, outside the lock) with the fields every event has."""
        self._outbox.append((name, {**payload, "timestamp": int(self.clock.now)}))

    def _flush(self) -> None:
        with self._emit_lock:
            with self._lock:
                events, self._outbox = self._outbox, []
            for name, payload in events:
                if self._drops.get(name):
                    self._drops[name] -= 1
                    continue
                for copy_number in range(self.event_copies):
                    sent = payload
                    if copy_number and name == "invocation_progress":
                        sent = {**payload, "image": None}
                    self.events_sent.append((name, sent))
                    self.sio.emit(name, sent, room=f"queue:{payload.get('queue_id', 'default')}")

    def _item_fields(self, item: _Item) -> dict[str, Any]:
        return {
            "queue_id": "default",
            "item_id": item.item_id,
            "batch_id": item.batch["batch_id"],
            "origin": item.batch.get("origin"),
            "destination": item.batch.get("destination"),
            "user_id": "system",
        }

    def _status_event(self, item: _Item, *, at: float) -> None:
        items = [other for other in self.items.values() if other.batch["batch_id"] == item.batch["batch_id"]]
        counts = {status: sum(1 for other in items if other.status == status) for status in _STATUSES}
        every = {status: sum(1 for other in self.items.values() if other.status == status) for status in _STATUSES}
        error_type, error_message = item.error or (None, None)
        self._event(
            "queue_item_status_changed",
            {
                **self._item_fields(item),
                "status": item.status,
                "status_sequence": item.status_sequence,
                "error_type": error_type,
                "error_message": error_message,
                "error_traceback": None,
                "created_at": _timestamp(item.created_at),
                "updated_at": _timestamp(item.updated_at),
                "started_at": _timestamp(item.started_at),
                "completed_at": _timestamp(item.completed_at),
                "batch_status": {
                    "queue_id": "default",
                    "batch_id": item.batch["batch_id"],
                    "origin": item.batch.get("origin"),
                    "destination": item.batch.get("destination"),
                    **counts,
                    "total": len(items),
                },
                "queue_status": {
                    "queue_id": "default",
                    "item_id": item.item_id if item.status == "in_progress" else None,
                    "batch_id": item.batch["batch_id"] if item.status == "in_progress" else None,
                    "session_id": item.session_id if item.status == "in_progress" else None,
                    **every,
                    "total": len(self.items),
                },
                "session_id": item.session_id,
            },
        )

    def _denoise_node(self, item: _Item) -> tuple[str, dict[str, Any]] | None:
        graph = item.session.get("graph", {})
        for node_id, node in graph.get("nodes", {}).items():
            if isinstance(node.get("steps"), int) and "denoise" in node["type"]:
                return node_id, node
        return None

    def _progress_events(self, item: _Item, *, until: float) -> None:
        """`invocation_progress` for each denoising step reached by `until`, each with its own preview."""
        found = self._denoise_node(item)
        if found is None or item.doomed:
            return
        node_id, node = found
        steps = node["steps"]
        elapsed = until - (item.started_at or 0.0)
        # Generating in no time (a benchmark's ingest), every step is reached at once.
        denoising = self.seconds_per_item * DENOISE_SHARE
        reached = steps if denoising <= 0 else min(steps, int(elapsed / denoising * steps))
        width, height = _image_size(item.session["graph"], self.images)
        while item.progress_sent < reached:
            item.progress_sent += 1
            self._event(
                "invocation_progress",
                {
                    **self._item_fields(item),
                    "session_id": item.session_id,
                    "invocation": {"id": f"{item.session_id}-{node_id}", "type": node["type"]},
                    "invocation_source_id": node_id,
                    "message": "Denoising",
                    "percentage": item.progress_sent / steps,
                    "image": {
                        "width": width,
                        "height": height,
                        "dataURL": _preview_data_url(width, height, item.progress_sent, steps),
                    },
                    "device": "cpu",
                },
            )

    def _complete_event(self, item: _Item, at: float) -> None:
        session = item.session
        for exec_id, result in session.get("results", {}).items():
            source = session["prepared_source_mapping"][exec_id]
            node = session["graph"]["nodes"][source]
            if result.get("type") == "image_output" and not node.get("is_intermediate", False):
                self._event(
                    "invocation_complete",
                    {
                        **self._item_fields(item),
                        "session_id": item.session_id,
                        "invocation": {"id": exec_id, "type": node["type"]},
                        "invocation_source_id": source,
                        "result": result,
                    },
                )

    # --- HTTP ---

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        try:
            response = self._respond(request)
        finally:
            # Uploads are spooled to temporary files; close them now rather than leave it to the collector.
            request.close()
        return response(environ, start_response)

    def _respond(self, request: Request) -> Response:
        self.requests.append((request.method, request.path))
        fault = self._take_fault(request)
        if fault is not None and fault.rewrite is not None:
            return fault.rewrite(self._answer(request))
        if fault is not None:
            if fault.hang:
                self._release.wait(timeout=30)
            return _json({"detail": "Internal Server Error"}, status=fault.status)
        hold = self._take_hold(request)
        if hold is not None and not hold.after:
            hold.block()
        response = self._answer(request)
        if hold is not None and hold.after:
            hold.block()
        return response

    def _answer(self, request: Request) -> Response:
        adapter = self._urls.bind_to_environ(request.environ)
        try:
            endpoint, arguments = adapter.match()
        except MethodNotAllowed:
            return _json({"detail": "Method Not Allowed"}, status=405)
        except NotFound:
            if request.method == "GET":
                # The web UI answers every path it does not know (FACTS #10).
                return Response(_HTML, status=200, content_type="text/html; charset=utf-8")
            return _json({"detail": "Method Not Allowed"}, status=405)
        except HTTPException as exc:
            return _json({"detail": exc.description}, status=exc.code or 500)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        public = endpoint in ("version", "auth_status", "login", "openapi")
        if self.multiuser and not public and token not in self._tokens:
            detail = "Invalid or expired authentication token" if token else "Missing authentication credentials"
            return _json({"detail": detail}, status=401, headers={"WWW-Authenticate": "Bearer"})
        with self._lock:
            self._advance()
            self._settle_installs()
            try:
                response = getattr(self, f"_{endpoint}")(request, **arguments)
            except Invalid as exc:
                response = _json({"detail": exc.errors}, status=422)
        self._flush()
        if (
            self.multiuser
            and token in self._tokens
            and request.method in ("POST", "PUT", "PATCH", "DELETE")
            and response.status_code < 400
        ):
            refreshed = uuid.uuid4().hex
            self._tokens[refreshed] = True
            response.headers["X-Refreshed-Token"] = refreshed
        return response

    def _take_fault(self, request: Request) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.times > 0 and fault.path.search(request.path) and fault.method in (None, request.method):
                    fault.times -= 1
                    return fault
        return None

    def _take_hold(self, request: Request) -> Hold | None:
        with self._lock:
            for hold in self._holds:
                if not hold.taken and hold.path.search(request.path) and hold.method in (None, request.method):
                    hold.taken = True
                    return hold
        return None

    # --- endpoints ---

    def _version(self, request: Request) -> Response:
        return _json({"version": VERSION})

    def _patchmatch_status(self, request: Request) -> Response:
        if self.patchmatch is None:
            return _json({"detail": "Not Found"}, status=404)
        return _json(self.patchmatch)

    def _openapi(self, request: Request) -> Response:
        return _json(openapi())

    def _auth_status(self, request: Request) -> Response:
        return _json(
            {
                "setup_required": False,
                "multiuser_enabled": self.multiuser,
                "strict_password_checking": False,
                "admin_email": None,
            }
        )

    def _login(self, request: Request) -> Response:
        if not self.multiuser:
            return _json(
                {"detail": "Multiuser mode is disabled. Authentication is not required in single-user mode."},
                status=403,
            )
        body = request.get_json(silent=True) or {}
        if self.users.get(body.get("email")) != body.get("password"):
            return _json({"detail": "Incorrect email or password"}, status=401)
        token = uuid.uuid4().hex
        self._tokens[token] = False
        user = {
            "user_id": body["email"],
            "email": body["email"],
            "display_name": body["email"],
            "is_admin": False,
        }
        return _json({"token": token, "user": user, "expires_in": 7 * 86400})

    def _models(self, request: Request) -> Response:
        model_type = request.args.get("model_type")
        bases = request.args.getlist("base_models")
        if model_type is not None and model_type not in _enum("ModelType"):
            expected = ", ".join(repr(value) for value in _enum("ModelType"))
            raise Invalid(
                [
                    {
                        "type": "enum",
                        "loc": ["query", "model_type"],
                        "msg": f"Input should be {expected}",
                        "input": model_type,
                    }
                ]
            )
        for base in bases:
            if base not in _enum("BaseModelType"):
                raise Invalid(
                    [
                        {
                            "type": "enum",
                            "loc": ["query", "base_models", 0],
                            "msg": "Input should be a valid base",
                            "input": base,
                        }
                    ]
                )
        models = [
            model
            for model in self.models
            if (model_type is None or model["type"] == model_type)
            and (not bases or model["base"] in bases)
            and request.args.get("model_name") in (None, model["name"])
            and request.args.get("model_format") in (None, model["format"])
        ]
        return _json({"models": models})

    def _model(self, request: Request, key: str) -> Response:
        model = next((model for model in self.models if model["key"] == key), None)
        return _json(model) if model else _json({"detail": "model not found"}, status=404)

    def _model_by_hash(self, request: Request) -> Response:
        wanted = request.args.get("hash")
        model = next((model for model in self.models if model["hash"] == wanted), None)
        return _json(model) if model else _json({"detail": "No model found with this hash"}, status=404)

    def _model_delete(self, request: Request, key: str) -> Response:
        if not any(model["key"] == key for model in self.models):
            return _json({"detail": f"The model with key {key} is not in the database"}, status=404)
        self.models = [model for model in self.models if model["key"] != key]
        return self._no_content(request)

    def _no_content(self, request: Request) -> Response:
        # starlette 1.10's gzip middleware fails on empty 204 bodies, after the endpoint did its work.
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            return Response("Internal Server Error", status=500, content_type="text/plain; charset=utf-8")
        return Response(status=204)

    def _install(self, request: Request) -> Response:
        source = request.args.get("source", "")
        if request.get_data() == b"":
            return _json(
                {"detail": [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]}, status=422
            )
        body = request.get_json(silent=True) or {}
        known = self.files.get(source)
        if known is None:
            if source.startswith("/"):
                return _json({"detail": f"Unsupported model source: '{source}'"}, status=409)
            # Anything else is a URL or a Hugging Face repo id, which cannot be fetched offline.
            return Response("Internal Server Error", status=500, content_type="text/plain; charset=utf-8")
        probed, seconds, size = known
        duplicate = any(model["path"] == source or model["source"] == source for model in self.models)
        kind = "local" if source.startswith("/") else "url" if source.startswith("http") else "hf"
        job = _InstallJob(
            id=self._next_job_id,
            source=source,
            name=body.get("name") or "",
            probed=None if duplicate else probed,
            started_at=self.clock.now,
            seconds=seconds,
            total_bytes=size,
            kind=kind,
        )
        self._next_job_id += 1
        self.install_jobs[job.id] = job
        body = self._install_json(job)
        # As 6.14.2 answers the POST: before its background thread has taken the job (a non-model file has
        # already failed its check, a duplicate is already running), and without config_in.source yet.
        if body["status"] != "error":
            body.update(status="running" if job.probed is None else "waiting", config_out=None, bytes=0)
            body["error_reason"] = body["error"] = body["error_traceback"] = None
        body["config_in"]["source"] = None
        return _json(body, status=201)

    def _settle_installs(self) -> None:
        for job in self.install_jobs.values():
            self._install_settle(job)

    def _install_settle(self, job: _InstallJob) -> None:
        """Register the model once the job's time has come (the server does it in its background)."""
        if job.model_key or job.probed in (None, NOT_A_MODEL) or self.clock.now < job.started_at + job.seconds:
            return
        if isinstance(job.probed, dict):
            model = copy.deepcopy(job.probed)
            model["name"] = job.name or model["name"]
        else:
            # What 6.14 registers for a folder no config matches: type, base and format "unknown".
            name = job.name or job.source.rstrip("/").rsplit("/", 1)[-1]
            model = tiny_model(name, model_type="unknown", base="unknown", format="unknown")
            model.pop("cpu_only")
        model.update(key=str(uuid.uuid4()), path=job.source, source=job.source)
        job.model_key = model["key"]
        self.models.append(model)

    def _install_json(self, job: _InstallJob) -> dict[str, Any]:
        self._install_settle(job)
        done = self.clock.now >= job.started_at + job.seconds
        elapsed = min(1.0, (self.clock.now - job.started_at) / job.seconds) if job.seconds else 1.0
        config_out = next((m for m in self.models if job.model_key and m["key"] == job.model_key), None)
        status, error_reason, error = "completed", None, None
        if job.probed is None:
            status, error_reason = "error", "DuplicateModelException"
            error = f"A model with path '{job.source}' is already installed"
        elif job.probed == NOT_A_MODEL:
            status, error_reason = "error", "ValueError"
            suffix = "." + job.source.rsplit(".", 1)[-1]
            error = (
                f"File extension {suffix} is not a recognized model format. Expected one of: .bin, .ckpt, .gguf, "
                ".onnx, .pt, .pth, .safetensors"
            )
        elif not done:
            status = "downloading" if job.kind != "local" else "running"
        source: dict[str, Any] = {"path": job.source, "inplace": True, "type": "local"}
        if job.kind == "url":
            source = {"url": job.source, "access_token": None, "type": "url"}
        elif job.kind == "hf":
            source = {"repo_id": job.source, "variant": None, "subfolder": None, "type": "hf"}
        return {
            "id": job.id,
            "status": status,
            "error_reason": error_reason,
            "config_in": {"source": job.source, "source_type": "path", "name": job.name or None},
            "config_out": config_out,
            "inplace": True,
            "source": source,
            "local_path": job.source,
            "bytes": int(job.total_bytes * elapsed),
            "total_bytes": job.total_bytes,
            "source_metadata": None,
            "download_parts": [],
            "error": error,
            "error_traceback": f"Traceback (most recent call last):\n{error_reason}: {error}\n" if error else None,
        }

    def _install_jobs(self, request: Request) -> Response:
        return _json([self._install_json(job) for job in self.install_jobs.values()])

    def _install_job(self, request: Request, job_id: int) -> Response:
        job = self.install_jobs.get(job_id)
        if job is None:
            return _json({"detail": f"No job with id {job_id} known"}, status=404)
        return _json(self._install_json(job))

    def _install_prune(self, request: Request) -> Response:
        for job_id, job in list(self.install_jobs.items()):
            if self._install_json(job)["status"] in ("completed", "error", "cancelled"):
                del self.install_jobs[job_id]
        return self._no_content(request)

    def _enqueue(self, request: Request, queue_id: str) -> Response:
        body = request.get_json(silent=True)
        batch = validate_enqueue(body)
        sessions = expand_batch(batch)
        pending = sum(1 for item in self.items.values() if item.status == "pending")
        room = max(0, self.max_queue_size - pending)
        priority = 0
        if body.get("prepend"):
            priority = max((item.priority for item in self.items.values() if item.status == "pending"), default=0) + 1
        item_ids = []
        for field_values in sessions[:room]:
            graph = copy.deepcopy(batch["graph"])
            for value in field_values:
                graph["nodes"][value["node_path"]][value["field_name"]] = value["value"]
            item = _Item(
                item_id=self._next_item_id,
                batch=batch,
                field_values=field_values or None,
                created_at=self.clock.now,
                updated_at=self.clock.now,
                priority=priority,
            )
            item.session = _empty_session(item.session_id, graph)
            self.items[item.item_id] = item
            item_ids.append(item.item_id)
            self._next_item_id += 1
        self._advance()
        return _json(
            {
                "queue_id": queue_id,
                "enqueued": len(item_ids),
                "requested": len(sessions),
                "batch": {
                    key: batch[key]
                    for key in ("batch_id", "origin", "destination", "data", "graph", "workflow", "runs")
                },
                "priority": priority,
                "item_ids": sorted(item_ids, reverse=True),
            }
        )

    def _batch_status(self, request: Request, queue_id: str, batch_id: str) -> Response:
        items = [item for item in self.items.values() if item.batch["batch_id"] == batch_id]
        counts = {status: sum(1 for item in items if item.status == status) for status in _STATUSES}
        first = items[0].batch if items else {}
        return _json(
            {
                "queue_id": queue_id,
                "batch_id": batch_id,
                "origin": first.get("origin"),
                "destination": first.get("destination"),
            }
            | counts
            | {"total": len(items)}
        )

    def _items_by_ids(self, request: Request, queue_id: str) -> Response:
        wanted = (request.get_json(silent=True) or {}).get("item_ids", [])
        return _json([self._item_json(self.items[item_id]) for item_id in wanted if item_id in self.items])

    def _item(self, request: Request, queue_id: str, item_id: str) -> Response:
        if not item_id.isdigit():
            raise Invalid(
                [
                    {
                        "type": "int_parsing",
                        "loc": ["path", "item_id"],
                        "msg": "Input should be a valid integer, unable to parse string as an integer",
                        "input": item_id,
                    }
                ]
            )
        item = self.items.get(int(item_id))
        if item is None:
            return _json({"detail": f"Queue item with id {item_id} not found in queue {queue_id}"}, status=404)
        # GET /i/{id} leaves out null fields (response_model_exclude_none).
        return _json({key: value for key, value in self._item_json(item).items() if value is not None})

    def _item_json(self, item: _Item) -> dict[str, Any]:
        error_type, error_message = item.error or (None, None)
        return {
            "item_id": item.item_id,
            "status": item.status,
            "status_sequence": item.status_sequence,
            "priority": item.priority,
            "batch_id": item.batch["batch_id"],
            "origin": item.batch.get("origin"),
            "destination": item.batch.get("destination"),
            "session_id": item.session_id,
            "error_type": error_type,
            "error_message": error_message,
            "error_traceback": item.traceback,
            "created_at": _timestamp(item.created_at),
            "updated_at": _timestamp(item.updated_at),
            "started_at": _timestamp(item.started_at),
            "completed_at": _timestamp(item.completed_at),
            "queue_id": "default",
            **_SYSTEM_USER,
            "field_values": item.field_values,
            "retried_from_item_id": None,
            "device": "cpu" if item.started_at is not None else None,
            "workflow_call_id": None,
            "parent_item_id": None,
            "parent_session_id": None,
            "root_item_id": None,
            "workflow_call_depth": None,
            "session": item.session,
            "workflow": None,
        }

    def _cancel(self, request: Request, queue_id: str) -> Response:
        batch_ids = set((request.get_json(silent=True) or {}).get("batch_ids", []))
        canceled: list[int] = []
        for item in self.items.values():
            if item.batch["batch_id"] in batch_ids and item.status in ("pending", "in_progress"):
                if item.status == "in_progress":
                    # The running item is the only one that gets a status event of its own.
                    self._free_at = self.clock.now
                    self._finish(item, "canceled", self.clock.now)
                else:
                    item.status, item.completed_at, item.updated_at = "canceled", self.clock.now, self.clock.now
                    item.status_sequence += 1
                canceled.append(item.item_id)
        if canceled:
            self._event(
                "queue_items_canceled",
                {
                    "queue_id": queue_id,
                    "canceled_item_ids": canceled,
                    "user_ids": ["system"],
                    "canceled_item_ids_by_user": {"system": canceled},
                },
            )
        self._advance()
        return _json({"canceled": len(canceled)})

    def _queue_status(self, request: Request, queue_id: str) -> Response:
        counts = {status: sum(1 for item in self.items.values() if item.status == status) for status in _STATUSES}
        running = next((item for item in self.items.values() if item.status == "in_progress"), None)
        queue = {
            "queue_id": queue_id,
            "item_id": running.item_id if running else None,
            "batch_id": running.batch["batch_id"] if running else None,
            "session_id": running.session_id if running else None,
            **counts,
            "total": len(self.items),
            "user_pending": counts["pending"],
            "user_in_progress": counts["in_progress"],
        }
        return _json(
            {"queue": queue, "processor": {"is_started": not self.paused, "is_processing": running is not None}}
        )

    def _processor(self, request: Request, queue_id: str, action: str) -> Response:
        if action == "resume" and self.paused:
            # Pending items start from now, not from when they could have.
            self._free_at = self.clock.now
        self.paused = action == "pause"
        running = any(item.status == "in_progress" for item in self.items.values())
        return _json({"is_started": not self.paused, "is_processing": running})

    def _upload(self, request: Request) -> Response:
        category = request.args.get("image_category", "general")
        categories = ["general", "mask", "control", "user", "other"]
        if category not in categories:
            expected = "'general', 'mask', 'control', 'user' or 'other'"
            raise Invalid(
                [
                    {
                        "type": "enum",
                        "loc": ["query", "image_category"],
                        "msg": f"Input should be {expected}",
                        "input": category,
                    }
                ]
            )
        upload = request.files.get("file")
        if upload is None:
            raise Invalid([{"type": "missing", "loc": ["body", "file"], "msg": "Field required", "input": None}])
        if not (upload.mimetype or "").startswith("image"):
            return _json({"detail": "Not an image"}, status=415)
        try:
            with Image.open(upload.stream, formats=_UPLOAD_FORMATS) as decoded:
                png = io.BytesIO()
                decoded.save(png, "PNG")
        except OSError:
            return _json({"detail": "Failed to read image"}, status=415)
        image = self._store_image(
            png.getvalue(),
            category=category,
            is_intermediate=request.args.get("is_intermediate", "false").lower() == "true",
            origin="external",
            at=self.clock.now,
        )
        return _json(_dto(image), status=201, headers={"Location": f"api/v1/images/i/{image.name}/full"})

    def _image_dto(self, request: Request, name: str) -> Response:
        image = self.images.get(name)
        return _json(_dto(image)) if image else _json({"detail": "Not Found"}, status=404)

    def _image(self, request: Request, name: str, part: str) -> Response:
        image = self.images.get(name)
        if image is None:
            return _json({"detail": "Not Found"}, status=404)
        if part == "metadata":
            return _json(image.metadata)
        if part == "thumbnail":
            return Response(image.webp, content_type="image/webp")
        return Response(
            image.png,
            content_type="image/png",
            headers={
                "Cache-Control": "max-age=31536000",
                "Content-Disposition": f'inline; filename="{name}"',
            },
        )

    def _board_dto(self, board_id: str) -> dict[str, Any]:
        images = [image for image in self.images.values() if image.board_id == board_id and not image.is_intermediate]
        stamp = _timestamp(0)
        return {
            "board_id": board_id,
            "board_name": self.boards[board_id],
            "user_id": "system",
            "created_at": stamp,
            "updated_at": stamp,
            "deleted_at": None,
            "cover_image_name": images[-1].name if images else None,
            "archived": False,
            "board_visibility": "private",
            "cover_video_name": None,
            "image_count": sum(1 for image in images if image.category != "user"),
            "video_count": 0,
            "asset_count": sum(1 for image in images if image.category == "user"),
            "owner_username": None,
        }

    def _boards(self, request: Request) -> Response:
        if request.method == "POST":
            name = request.args.get("board_name")
            if not name:
                raise Invalid([{"type": "missing", "loc": ["query", "board_name"], "msg": "Field required"}])
            board_id = str(uuid.uuid4())
            self.boards[board_id] = name
            return _json(self._board_dto(board_id), status=201)
        if request.args.get("all") != "true" and not ("offset" in request.args and "limit" in request.args):
            return _json({"detail": "Invalid request: Must provide either 'all' or both 'offset' and 'limit'"}, 400)
        return _json([{**self._board_dto(board_id), "owner_username": "System"} for board_id in self.boards])

    def _board(self, request: Request, board_id: str) -> Response:
        if board_id not in self.boards:
            return _json({"detail": "Board not found"}, status=404)
        if request.method == "DELETE":
            del self.boards[board_id]
            for image in self.images.values():
                if image.board_id == board_id:
                    image.board_id = None
            return _json({"board_id": board_id, "deleted_board_images": [], "deleted_images": []})
        return _json(self._board_dto(board_id))

    def _board_image_names(self, request: Request, board_id: str) -> Response:
        if board_id != "none" and board_id not in self.boards:
            return _json({"detail": "Board not found"}, status=404)
        wanted = None if board_id == "none" else board_id
        return _json(
            [name for name, image in self.images.items() if image.board_id == wanted and not image.is_intermediate]
        )

    def _board_images(self, request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        board_id, name = body.get("board_id"), body.get("image_name")
        if board_id not in self.boards:
            return _json({"detail": "Board not found"}, status=404)
        image = self.images.get(name)
        if image is None:
            return _json({"added_images": [], "affected_boards": [], "failed_images": [name]}, status=201)
        affected = [image.board_id or "none", board_id]
        image.board_id = board_id
        return _json({"added_images": [name], "affected_boards": affected, "failed_images": []}, status=201)

    def _image_workflow(self, request: Request, name: str) -> Response:
        image = self.images.get(name)
        if image is None:
            return _json({"detail": "Image not found"}, status=404)
        return _json({"workflow": image.workflow, "graph": None})

    def _workflows(self, request: Request) -> Response:
        categories = request.args.getlist("categories") or ["default", "user"]
        page, per_page = int(request.args.get("page", 0)), int(request.args.get("per_page", 50))
        listed = sorted(
            (record for category, record in self.workflows.values() if category in categories),
            key=lambda record: str(record.get("name", "")),
        )
        chunk = listed[page * per_page : (page + 1) * per_page]
        items = [
            {
                "workflow_id": record["id"],
                "name": record.get("name", ""),
                "category": record["meta"]["category"],
                "tags": record.get("tags", ""),
                "description": record.get("description", ""),
                "user_id": "system",
                "is_public": False,
                "opened_at": None,
                "thumbnail_url": None,
                "call_saved_workflow_compatibility": None,
            }
            for record in chunk
        ]
        pages = max(1, -(-len(listed) // per_page))
        return _json({"page": page, "pages": pages, "per_page": per_page, "total": len(listed), "items": items})

    def _workflow(self, request: Request, workflow_id: str) -> Response:
        if workflow_id not in self.workflows:
            return _json({"detail": "Workflow not found"}, status=404)
        _, record = self.workflows[workflow_id]
        stamp = _timestamp(0)
        return _json(
            {
                "workflow_id": workflow_id,
                "name": record.get("name", ""),
                "created_at": stamp,
                "updated_at": stamp,
                "opened_at": None,
                "user_id": "system",
                "is_public": False,
                "workflow": record,
            }
        )


_STATUSES = ("pending", "in_progress", "waiting", "completed", "failed", "canceled")


def _dto(image: _Image) -> dict[str, Any]:
    return {
        "image_name": image.name,
        "image_url": f"api/v1/images/i/{image.name}/full",
        "thumbnail_url": f"api/v1/images/i/{image.name}/thumbnail",
        "image_origin": image.origin,
        "image_category": image.category,
        "width": image.width,
        "height": image.height,
        "created_at": _timestamp(image.created_at),
        "updated_at": _timestamp(image.created_at),
        "deleted_at": None,
        "is_intermediate": image.is_intermediate,
        "session_id": image.session_id,
        "node_id": image.node_id,
        "starred": False,
        "has_workflow": True,
        "image_subfolder": "",
        "board_id": image.board_id,
    }


class LoopbackServer:
    """A WSGI app served on 127.0.0.1 from a thread: how the fakes of outside services listen."""

    def __init__(self, app: Any, *, port: int = 0, name: str) -> None:
        self._server = make_server("127.0.0.1", port, app, threaded=True, request_handler=_QuietHandler)
        self.port = self._server.port
        # A short poll keeps stop() (run after every test) from waiting out socketserver's default 0.5 s.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name=name, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        """Tests make hundreds of requests; the fake keeps them in `requests` instead of the log."""


def _preview_data_url(width: int, height: int, step: int, steps: int) -> str:
    """A preview as InvokeAI sends it: a JPEG at 1/8 of the size, lighter at each step."""
    shade = 40 + 200 * step // max(steps, 1)
    buffer = io.BytesIO()
    Image.new("RGB", (max(1, width // 8), max(1, height // 8)), (shade, shade // 2, 255 - shade)).save(buffer, "JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _json(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json", headers=headers)


def _empty_session(session_id: str, graph: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": session_id,
        "graph": graph,
        "execution_graph": {"id": str(uuid.uuid4()), "nodes": {}, "edges": []},
        "executed": [],
        "executed_history": [],
        "results": {},
        "errors": {},
        "prepared_source_mapping": {},
        "source_prepared_mapping": {},
    }


def _topological(nodes: dict[str, Any], edges: list[dict[str, Any]]) -> list[str]:
    before = {
        node_id: {e["source"]["node_id"] for e in edges if e["destination"]["node_id"] == node_id} for node_id in nodes
    }
    order: list[str] = []
    while len(order) < len(nodes):
        ready = [node_id for node_id in nodes if node_id not in order and before[node_id] <= set(order)]
        order += ready
    return order


def _upload_formats() -> list[str]:
    Image.init()
    return [name for name in Image.OPEN if name not in ("HEIF", "AVIF")]


# What InvokeAI's Pillow opens: it has no HEIF plugin (a HEIC upload is 415 "Failed to read image" on 6.14.2),
# where this process's Pillow has pillow-heif's.
_UPLOAD_FORMATS = _upload_formats()


def _image_size(graph: dict[str, Any], images: dict[str, _Image]) -> tuple[int, int]:
    """The size the real graph would make: the noise's or FLUX denoise's, else the init image's."""
    for node in graph["nodes"].values():
        if node["type"] in ("noise", "flux_denoise") and node.get("width") and node.get("height"):
            return node["width"], node["height"]
    for node in graph["nodes"].values():
        image = images.get((node.get("image") or {}).get("image_name", ""))
        if image:
            return image.width, image.height
    return 64, 64


def _noise_png(width: int, height: int, seed: int, metadata: dict[str, Any] | None, graph: dict[str, Any]) -> bytes:
    """Noise, as the tiny random models make, reproducible from the seed, with InvokeAI's text chunks."""
    pixels = random.Random(seed).randbytes(width * height * 3)  # noqa: S311  (test pixels, not secrets)
    image = Image.frombytes("RGB", (width, height), pixels)
    info = PngImagePlugin.PngInfo()
    if metadata is not None:
        info.add_text("invokeai_metadata", json.dumps(metadata))
    info.add_text("invokeai_graph", json.dumps(graph))
    buffer = io.BytesIO()
    image.save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()
