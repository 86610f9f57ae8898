"""The client against an InvokeAI that behaves as an attacker's server would: redirects elsewhere, huge and
endless bodies, answers that drip, and answers of the wrong shape on every call. All servers are on 127.0.0.1."""

from __future__ import annotations

import json
import tracemalloc

import pytest
from werkzeug.wrappers import Response

from backends import services
from backends.invokeai import graphs
from backends.invokeai.client import MAX_THUMBNAIL_BYTES, InvokeAIClient
from backends.invokeai.errors import InvokeAIConnectionError, InvokeAIError, RetrievalError
from backends.invokeai.graphs import GenerationParameters
from photos.tests.images import image_bytes
from testing.fake_invokeai import FakeInvokeAI
from testing.hostile_http import HostileServer, Streamed, answer, header_drip

VERSION_PATH = "/api/v1/app/version"
CAP = 1 << 20


@pytest.fixture
def invoke(fake_invokeai):
    invoke = InvokeAIClient(
        fake_invokeai.url,
        connect_timeout=1,
        read_timeout=2,
        total_timeout=10,
        max_image_bytes=CAP,
        retry_backoff=0,
    )
    yield invoke
    invoke.close()


def made_item(fake_invokeai, invoke):
    """A queue item the fake has finished: one image of seed 1."""
    model = fake_invokeai.model("tiny-sd1")
    identifier = graphs.ModelIdentifier(**{key: model[key] for key in ("key", "hash", "name", "base", "type")})
    body = graphs.build_batch(
        GenerationParameters(model=identifier, prompt="a cat", width=64, height=64, steps=2, seed=1, batch_size=1)
    )
    batch = invoke.enqueue(body)
    fake_invokeai.clock.advance(1)
    [item] = invoke.queue_items(batch.item_ids, output_node=graphs.OUTPUT_NODE)
    return item


@pytest.fixture
def image_name(fake_invokeai, invoke) -> str:
    """An image the fake has made, for the download paths."""
    return made_item(fake_invokeai, invoke).image_name


@pytest.fixture
def hostile():
    """serve(respond, **limits) -> a HostileServer on 127.0.0.1 and a client of it."""
    made: list[tuple[HostileServer, InvokeAIClient]] = []

    def serve(respond, **limits) -> tuple[HostileServer, InvokeAIClient]:
        server = HostileServer(respond)
        options = {"connect_timeout": 1, "read_timeout": 2, "total_timeout": 10, "max_image_bytes": CAP}
        made.append((server, InvokeAIClient(server.url, retry_backoff=0, **(options | limits))))
        return made[-1]

    yield serve
    for server, client in made:
        client.close()
        server.stop()


# --- redirects ---


@pytest.mark.parametrize("where", ["elsewhere", "same host"])
def test_redirects_are_not_followed(fake_invokeai, invoke, where):
    elsewhere = FakeInvokeAI().start()
    try:
        target = elsewhere.url + VERSION_PATH if where == "elsewhere" else "/api/v1/app/version/"
        fake_invokeai.rewrite_answers(VERSION_PATH, lambda real: Response(status=302, headers={"Location": target}))
        with pytest.raises(InvokeAIError, match=r"with a redirect \(302\) to") as caught:
            invoke.connect()
        assert caught.value.code == "invokeai_redirected"
        assert target in caught.value.message
        assert elsewhere.requests == []
        assert fake_invokeai.requests.count(("GET", VERSION_PATH)) == 1
    finally:
        elsewhere.stop()


def test_a_redirect_target_is_quoted_only_in_part(fake_invokeai, invoke):
    target = "http://127.0.0.2/" + "x" * 10_000
    fake_invokeai.rewrite_answers(VERSION_PATH, lambda real: Response(status=307, headers={"Location": target}))
    with pytest.raises(InvokeAIError) as caught:
        invoke.connect()
    assert len(caught.value.message) < 400


# --- what the server says is quoted, briefly ---

SCRIPT = "<script>alert('owned')</script>"


def test_an_error_body_is_quoted_as_a_short_excerpt(fake_invokeai, invoke):
    body = (SCRIPT + "\n\x1b[31m" + "junk " * 200_000).encode()
    fake_invokeai.rewrite_answers(
        VERSION_PATH, lambda real: Response(body, status=500, content_type="text/html"), times=4
    )
    with pytest.raises(InvokeAIError, match=r"refused GET /api/v1/app/version \(500\)") as caught:
        invoke.connect()
    message = caught.value.message
    assert len(message) < 400 and "\n" not in message and "\x1b" not in message
    assert SCRIPT in message


def test_a_json_error_detail_is_quoted_as_a_short_excerpt(fake_invokeai, invoke):
    detail = {"detail": [{"loc": ["body", "x" * 5000], "msg": "y" * 100_000}] * 50}
    fake_invokeai.rewrite_answers(
        "enqueue_batch", lambda real: Response(json.dumps(detail), status=422, content_type="application/json")
    )
    with pytest.raises(InvokeAIError) as caught:
        invoke.enqueue({"batch": {}})
    assert len(caught.value.message) < 400


@pytest.mark.django_db
def test_the_backend_page_shows_a_foreign_message_escaped(use_fake_invokeai, owner_client):
    use_fake_invokeai.rewrite_answers(
        VERSION_PATH,
        lambda real: Response(json.dumps({"detail": SCRIPT}), status=500, content_type="application/json"),
        times=4,
    )
    assert services.connection_check() is False
    assert SCRIPT in services.backend_settings_get().connection_error
    page = owner_client.get("/backend/").content.decode()
    assert SCRIPT not in page
    assert "&lt;script&gt;alert(&#x27;owned&#x27;)&lt;/script&gt;" in page


# --- huge bodies ---


@pytest.mark.parametrize("declared", [False, True], ids=["until-closed", "with-content-length"])
def test_a_300_mb_image_is_refused_after_reading_no_more_than_the_cap(hostile, declared):
    body = Streamed(total=300 << 20)
    _, invoke = hostile(answer(body, length=300 << 20 if declared else None))
    tracemalloc.start()
    try:
        with pytest.raises(RetrievalError, match="with more than 1024 KiB") as caught:
            invoke.image("big.png")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert caught.value.code == "invokeai_answer_too_large"
    # The client hung up: the server stopped with what the sockets' buffers took, far short of 300 MB.
    assert body.finished.wait(10)
    assert body.sent < 64 << 20
    # The cap, the chunk being read and what they are copied into once: not 300 MB.
    assert peak < 4 * CAP, peak


def test_a_huge_thumbnail_is_refused(hostile):
    body = Streamed(total=300 << 20)
    _, invoke = hostile(answer(body, content_type="image/webp"))
    with pytest.raises(RetrievalError, match=f"with more than {MAX_THUMBNAIL_BYTES // 1024} KiB"):
        invoke.thumbnail("big.png")
    assert body.finished.wait(10)
    assert body.sent < 64 << 20


def test_a_huge_json_answer_is_refused(hostile):
    body = Streamed(total=300 << 20, fill=b" ")
    _, invoke = hostile(answer(body, content_type="application/json"))
    with pytest.raises(InvokeAIError, match="with more than 16384 KiB") as caught:
        invoke.list_models()
    assert caught.value.code == "invokeai_answer_too_large"
    assert body.finished.wait(10)


def test_a_huge_error_body_is_cut_short_not_read(hostile):
    body = Streamed(total=300 << 20, fill=b"e")
    _, invoke = hostile(answer(body, status="500 Internal Server Error", content_type="text/plain"))
    with pytest.raises(InvokeAIError, match=r"\(500\): e+…"):
        invoke.enqueue({"batch": {}})
    assert body.finished.wait(10)
    assert body.sent < 64 << 20


# --- slow answers ---


def test_a_body_that_drips_forever_hits_the_total_deadline(hostile):
    # A byte every 20 ms: the 0.5 s read timeout never fires, only the 1.5 s deadline does.
    body = Streamed(total=None, chunk=1, delay=0.02)
    _, invoke = hostile(answer(body), read_timeout=0.5, total_timeout=1.5)
    with pytest.raises(InvokeAIConnectionError, match=r"did not finish answering GET .* within 1\.5 s") as caught:
        invoke.image("slow.png")
    assert caught.value.code == "invokeai_unreachable"
    assert body.finished.wait(10)


def test_headers_that_drip_forever_hit_the_total_deadline(hostile):
    server, invoke = hostile(header_drip(), read_timeout=0.5, total_timeout=1)
    with pytest.raises(InvokeAIConnectionError, match=r"did not finish answering GET /api/v1/app/version"):
        invoke.connect()
    # A GET's read retry met the spent deadline at once.
    assert server.finished.wait(10) and server.requests <= 2


def test_the_deadline_leaves_a_fast_answer_alone(fake_invokeai, invoke, image_name):
    assert invoke.image(image_name).startswith(b"\x89PNG")
    # The next exchange, long after this one's deadline would have passed, uses the same pooled connection.
    assert invoke.connect() == "6.14.2"


# --- answers of the wrong shape, on every call ---


def _leaves(value, leaf):
    if isinstance(value, dict):
        return {key: _leaves(inner, leaf) for key, inner in value.items()}
    if isinstance(value, list):
        return [_leaves(inner, leaf) for inner in value]
    return leaf(value)


def _json_answer(body: bytes) -> Response:
    return Response(body, content_type="application/json")


def _rewritten_json(leaf):
    def rewrite(real: Response) -> Response:
        return _json_answer(json.dumps(_leaves(json.loads(real.get_data()), leaf)).encode())

    return rewrite


SHAPES = {
    "html": lambda real: Response("<!doctype html><html></html>", content_type="text/html"),
    "no content type": lambda real: Response(real.get_data(), content_type=""),
    "a list": lambda real: _json_answer(b"[]"),
    "a string": lambda real: _json_answer(b'"InvokeAI"'),
    "a number": lambda real: _json_answer(b"12"),
    "null": lambda real: _json_answer(b"null"),
    "an empty object": lambda real: _json_answer(b"{}"),
    "truncated": lambda real: _json_answer(real.get_data()[: len(real.get_data()) // 2]),
    "not utf-8": lambda real: _json_answer(b"\xff\xfe\xfa"),
    "nested 100000 deep": lambda real: _json_answer(b"[" * 100_000),
    "every value a list": _rewritten_json(lambda value: []),
    "every value a string": _rewritten_json(lambda value: str(value)),
    "every value true": _rewritten_json(lambda value: True),
}
# Shapes some calls legitimately get: no items known; an image's metadata, which is any object, or null.
VALID = {
    ("connect", "every value a string"),
    # item 1 is not on the fake's queue: its real answer is [], which no rewrite of its values changes.
    ("queue_items", "a list"),
    ("queue_items", "every value a list"),
    ("queue_items", "every value a string"),
    ("queue_items", "every value true"),
    ("image_metadata", "null"),
    ("image_metadata", "an empty object"),
    ("image_metadata", "every value a list"),
    ("image_metadata", "every value a string"),
    ("image_metadata", "every value true"),
    # The schema is read leniently: what is not an invocation's schema is no node type (a workflow needing it is
    # then refused as needing updating).
    *(
        ("node_templates", shape)
        for shape in ("an empty object", *(f"every value {v}" for v in ("a list", "a string", "true")))
    ),
    # A workflow's own shape is checked when it is imported, not by the client.
    *(("get_workflow", f"every value {v}") for v in ("a list", "a string", "true")),
    # The fake has no boards and no uncategorized images: these answers are an empty list, whatever their leaves.
    *(
        (call, shape)
        for call in ("list_boards", "board_image_names")
        for shape in ("a list", "every value a list", "every value a string", "every value true")
    ),
    ("create_board", "every value a string"),
    # An answer that does not list the image as added is a refusal (the image is not on the fake).
    *(
        ("add_image_to_board", shape)
        for shape in ("an empty object", "every value a list", "every value a string", "every value true")
    ),
    ("image_workflow", "an empty object"),
}


def _calls(fake: FakeInvokeAI):
    model = fake.model("tiny-sd1")
    identifier = graphs.ModelIdentifier(**{key: model[key] for key in ("key", "hash", "name", "base", "type")})
    batch = graphs.build_batch(
        GenerationParameters(model=identifier, prompt="a cat", width=64, height=64, steps=2, seed=1, batch_size=1)
    )
    return {
        "connect": lambda c: c.connect(),
        "queue_status": lambda c: c.queue_status(),
        "list_models": lambda c: c.list_models(model_type="main"),
        "get_model": lambda c: c.get_model(model["key"]),
        "get_model_by_hash": lambda c: c.get_model_by_hash(model["hash"]),
        "enqueue": lambda c: c.enqueue(batch),
        "batch_status": lambda c: c.batch_status("some-batch"),
        "queue_items": lambda c: c.queue_items([1], output_node=graphs.OUTPUT_NODE),
        "cancel_batches": lambda c: c.cancel_batches(["some-batch"]),
        "upload_image": lambda c: c.upload_image(data=image_bytes("PNG", (64, 64)), filename="a.png", category="user"),
        "node_templates": lambda c: c.node_templates(),
        "list_workflows": lambda c: c.list_workflows(),
        "get_workflow": lambda c: c.get_workflow(fake.add_workflow({"name": "w", "nodes": [], "edges": []})),
        "list_boards": lambda c: c.list_boards(),
        "board_image_names": lambda c: c.board_image_names("none"),
        "create_board": lambda c: c.create_board("workflows-hostile"),
        "add_image_to_board": lambda c: c.add_image_to_board(
            board_id=fake.boards.setdefault("b-1", "a board") and "b-1", image_name="missing.png"
        ),
    }


# Image bytes have no shape to get wrong here (photos verifies their pixels): only their type can be wrong.
IMAGE_CALLS = {
    "image": "full",
    "thumbnail": "thumbnail",
    "image_metadata": "metadata",
    "image_record": "",
    "image_workflow": "workflow",
}
IMAGE_SHAPES = ("html", "no content type", "a list", "nested 100000 deep")
CASES = [
    *((call, shape) for call in _calls(FakeInvokeAI()) for shape in SHAPES),
    *((call, shape) for call in ("image", "thumbnail") for shape in IMAGE_SHAPES),
    *((call, shape) for call in ("image_metadata", "image_record", "image_workflow") for shape in SHAPES),
]


@pytest.mark.parametrize(("call", "shape"), CASES)
def test_an_answer_of_the_wrong_shape_is_an_invokeai_error(fake_invokeai, invoke, request, call, shape):
    if call in IMAGE_CALLS:
        name = request.getfixturevalue("image_name")
        run = lambda c: getattr(c, call)(name)  # noqa: E731
    else:
        run = _calls(fake_invokeai)[call]
    fake_invokeai.rewrite_answers(".", SHAPES[shape], times=10)
    if (call, shape) in VALID:
        run(invoke)
        return
    with pytest.raises(InvokeAIError) as caught:
        run(invoke)
    assert caught.value.code == "invokeai_unexpected_answer", caught.value.message
    assert "is this an InvokeAI 6.x server?" in caught.value.message


@pytest.mark.parametrize(
    "field_values",
    [
        "seed=1",
        [["seed", "value", 1]],
        [{"node_path": 3, "field_name": "value", "value": 1}],
        [{"field_name": "value", "value": 1}],
        [{"node_path": "seed", "field_name": "value", "value": "one"}],
    ],
)
def test_an_items_batch_values_of_the_wrong_shape_are_an_invokeai_error(fake_invokeai, invoke, field_values):
    item = made_item(fake_invokeai, invoke)
    assert item.value_of("seed", "value") == 1 and item.seed == 1

    def rewrite(real: Response) -> Response:
        items = json.loads(real.get_data())
        items[0]["field_values"] = field_values
        return _json_answer(json.dumps(items).encode())

    fake_invokeai.rewrite_answers("items_by_ids", rewrite)
    with pytest.raises(InvokeAIError):
        invoke.queue_items([item.item_id], output_node=graphs.OUTPUT_NODE)


# --- whether the server has PatchMatch ---

PATCHMATCH_PATH = "/api/v1/app/patchmatch_status"


@pytest.mark.parametrize("has", [True, False])
def test_patchmatch_status_is_the_servers_bool(fake_invokeai, invoke, has):
    fake_invokeai.patchmatch = has
    assert invoke.patchmatch_status() is has


def test_patchmatch_status_of_a_server_without_the_route_is_unknown(fake_invokeai, invoke):
    # Before 6.9 there was no such route.
    fake_invokeai.patchmatch = None
    assert invoke.patchmatch_status() is None


@pytest.mark.parametrize(
    "body",
    [b'"true"', b"1", b'{"patchmatch": true}', b"[true]", b"null", b"not json", b" " * 4096 + b"true"],
    ids=["string", "number", "object", "list", "null", "not-json", "huge"],
)
def test_patchmatch_status_of_a_hostile_answer_is_unknown(fake_invokeai, invoke, body):
    fake_invokeai.rewrite_answers(
        PATCHMATCH_PATH, lambda real: Response(body, content_type="application/json"), times=5
    )
    assert invoke.patchmatch_status() is None


def test_patchmatch_status_of_the_web_uis_html_is_unknown(fake_invokeai, invoke):
    fake_invokeai.rewrite_answers(
        PATCHMATCH_PATH, lambda real: Response("<html></html>", content_type="text/html"), times=5
    )
    assert invoke.patchmatch_status() is None


def test_patchmatch_status_of_a_server_too_slow_or_failing_is_unknown(fake_invokeai, invoke):
    fake_invokeai.hang_requests(PATCHMATCH_PATH, times=2)
    assert invoke.patchmatch_status() is None
    fake_invokeai.fail_requests(PATCHMATCH_PATH, status=500, times=4)
    assert invoke.patchmatch_status() is None
    # It answers again: known again.
    assert invoke.patchmatch_status() is True
