"""The client against InvokeAI: each test runs on the fake and, given INVOKEAI_TEST_URL, on the real server.

Run the real half with `INVOKEAI_TEST_URL=http://127.0.0.1:9090 make test` (or `pytest -m invokeai`), against
the peer server of `shared/invokeai-peer/setup.sh`, whose tiny models the fake also lists. A test that passes
on one target and fails on the other is a bug in the fake.
"""

from __future__ import annotations

import io
import json
import os
import time
import uuid
from dataclasses import replace

import pytest
from PIL import Image

from backends.invokeai import graphs
from backends.invokeai.client import BatchProgress, EnqueuedBatch, InvokeAIClient, InvokeAIModel
from backends.invokeai.errors import GenerationError, InvokeAIError, RetrievalError
from backends.invokeai.graphs import GenerationParameters, Mode
from backends.invokeai.masks import to_invokeai_mask

REAL_URL = os.environ.get("INVOKEAI_TEST_URL", "")
PROMPT = "a lighthouse at dusk, oil painting"


class Target:
    """The server under test, with a way to let time pass: the fake's clock, or real waiting."""

    def __init__(self, client: InvokeAIClient, fake=None) -> None:
        self.client = client
        self.fake = fake
        self.batches: list[str] = []

    def model(self, name: str) -> InvokeAIModel:
        return next(model for model in self.client.list_models() if model.name == name)

    def enqueue(self, body: dict) -> EnqueuedBatch:
        batch = self.client.enqueue(body)
        self.batches.append(batch.batch_id)
        return batch

    def wait(self, batch: EnqueuedBatch, *, timeout: float = 300) -> BatchProgress:
        deadline = time.monotonic() + timeout
        while True:
            progress = self.client.batch_progress(batch, output_node=graphs.OUTPUT_NODE)
            if progress.finished:
                return progress
            assert time.monotonic() < deadline, f"batch not finished in {timeout} s: {progress}"
            if self.fake is not None:
                self.fake.clock.advance(0.5)
            else:
                time.sleep(0.25)


@pytest.fixture(params=[pytest.param("fake", id="fake"), pytest.param("real", id="real", marks=pytest.mark.invokeai)])
def target(request, settings):
    settings.MAX_BATCH_SIZE = 10
    if request.param == "fake":
        fake = request.getfixturevalue("fake_invokeai")
        target = Target(InvokeAIClient(fake.url, connect_timeout=2, read_timeout=5, retry_backoff=0), fake)
    elif REAL_URL:
        target = Target(InvokeAIClient(REAL_URL, connect_timeout=5, read_timeout=120))
    else:
        pytest.skip("set INVOKEAI_TEST_URL to run against a real InvokeAI")
    yield target
    if target.batches:
        # Leave a shared server's queue as we found it: cancel whatever of ours is still waiting.
        target.client.cancel_batches(target.batches)
    target.client.close()


def png(size=(64, 64), color=(90, 140, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def params(target: Target, name: str = "tiny-sd1", **overrides) -> GenerationParameters:
    values = {"prompt": PROMPT, "negative_prompt": "blurry", "width": 64, "height": 64, "steps": 2}
    return GenerationParameters(model=target.model(name).identifier, **(values | overrides))


def test_connect_reports_the_version(target):
    assert target.client.connect().startswith("6.")


def test_patchmatch_status_says_the_server_has_patchmatch(target):
    # The peer's pypatchmatch is built, and the fake has it unless told otherwise.
    assert target.client.patchmatch_status() is True


def test_a_server_answering_html_is_not_taken_for_invokeai(target):
    # Unknown paths answer 200 with the web UI (FACTS #10); the client must not parse that as JSON.
    client = InvokeAIClient(target.client.base_url + "/not-here", connect_timeout=2, read_timeout=10)
    with pytest.raises(InvokeAIError, match="not application/json") as caught:
        client.connect()
    assert caught.value.code == "invokeai_unexpected_answer"


def test_models_by_type_and_base(target):
    client = target.client
    mains = client.list_models(model_type="main", bases=["sd-1"])
    assert "tiny-sd1" in {model.name for model in mains}
    assert {(model.type, model.base) for model in mains} == {("main", "sd-1")}
    vaes = client.list_models(model_type="vae")
    assert {"tiny-sd1-vae", "tiny-sdxl-vae-fp16-fix"} <= {model.name for model in vaes}
    sdxl = target.model("tiny-sdxl")
    assert (sdxl.defaults.width, sdxl.defaults.height, sdxl.format) == (1024, 1024, "diffusers")
    assert client.get_model(sdxl.key) == sdxl
    assert client.get_model(str(uuid.uuid4())) is None
    assert client.get_model_by_hash(sdxl.hash) == sdxl
    assert client.get_model_by_hash("blake3:" + "0" * 64) is None


def test_txt2img_batch_records_seeds_images_and_metadata(target):
    client = target.client
    batch = target.enqueue(graphs.build_batch(params(target, seed=11, batch_size=3)))
    assert (batch.requested, batch.enqueued, len(batch.item_ids)) == (3, 3, 3)
    assert list(batch.item_ids) == sorted(batch.item_ids)

    progress = target.wait(batch)
    assert (progress.status.completed, progress.status.total) == (3, 3)
    assert [item.seed for item in progress.items] == [11, 12, 13]
    assert [item.status for item in progress.items] == ["completed"] * 3
    names = [item.image_name for item in progress.items]
    assert len(set(names)) == 3 and all(names)

    full = Image.open(io.BytesIO(client.image(names[0])))
    assert (full.format, full.size) == ("PNG", (64, 64))
    stored = json.loads(full.info["invokeai_metadata"])
    assert (stored["seed"], stored["positive_prompt"]) == (11, PROMPT)
    thumbnail = Image.open(io.BytesIO(client.thumbnail(names[0])))
    assert thumbnail.format == "WEBP" and max(thumbnail.size) <= 256
    metadata = client.image_metadata(names[2])
    assert (metadata["seed"], metadata["positive_prompt"], metadata["negative_prompt"]) == (
        13,
        PROMPT,
        "blurry",
    )
    assert metadata["model"]["name"] == "tiny-sd1"
    assert metadata["generation_mode"] == "txt2img"


def test_sdxl_batch_of_four_has_four_distinct_recorded_seeds(target):
    batch = target.enqueue(graphs.build_batch(params(target, "tiny-sdxl", batch_size=4, cfg_scale=5.0)))
    progress = target.wait(batch)
    seeds = [item.seed for item in progress.items]
    assert len(set(seeds)) == 4
    assert seeds == graphs.seeds_from(seeds[0], 4)
    assert all(item.status == "completed" for item in progress.items)
    for item in progress.items:
        assert target.client.image_metadata(item.image_name)["seed"] == item.seed


def test_img2img_from_an_uploaded_image(target):
    client = target.client
    init = client.upload_image(data=png(), filename="init.png", category="user")
    assert (init.width, init.height) == (64, 64) and init.image_name.endswith(".png")
    body = graphs.build_batch(params(target, mode=Mode.IMG2IMG, init_image=init.image_name, strength=0.6, seed=5))
    (item,) = target.wait(target.enqueue(body)).items
    assert item.status == "completed"
    metadata = client.image_metadata(item.image_name)
    assert (metadata["generation_mode"], metadata["strength"], metadata["init_image"]) == (
        "img2img",
        0.6,
        init.image_name,
    )


def test_inpaint_takes_the_output_nodes_image_of_three(target):
    client = target.client
    init = client.upload_image(data=png(), filename="init.png", category="user")
    painted = Image.new("L", (64, 64), 0)
    painted.paste(255, (16, 16, 48, 48))
    buffer = io.BytesIO()
    painted.save(buffer, "PNG")
    mask = client.upload_image(data=to_invokeai_mask(buffer.getvalue()), filename="mask.png", category="mask")
    body = graphs.build_batch(
        params(target, mode=Mode.INPAINT, init_image=init.image_name, mask_image=mask.image_name, strength=1.0)
    )
    (item,) = target.wait(target.enqueue(body)).items
    assert item.status == "completed"
    # The decoder and the mask helper save images too; only the blended output carries the metadata.
    assert client.image_metadata(item.image_name)["generation_mode"] == "inpaint"


def test_a_graph_the_server_refuses_names_the_reason(target):
    body = graphs.build_batch(params(target))
    del body["batch"]["graph"]["nodes"]["model_loader"]["model"]["name"]
    with pytest.raises(GenerationError, match=r"graph\.nodes\.model_loader\.main_model_loader\.model\.name: Field"):
        target.client.enqueue(body)


def test_a_stale_model_key_fails_the_item_and_the_hash_finds_the_model(target):
    model = target.model("tiny-sd1")
    stale = replace(model.identifier, key=str(uuid.uuid4()))
    body = graphs.build_batch(replace(params(target), model=stale))
    (item,) = target.wait(target.enqueue(body)).items
    assert item.status == "failed"
    assert item.error_type == "Exception"
    assert item.error_message == f"Unknown model {stale.key}"
    assert item.image_name is None
    assert target.client.get_model_by_hash(stale.hash).key == model.key


def test_cancel_by_batch_ids(target):
    batch = target.enqueue(graphs.build_batch(params(target, steps=150, batch_size=3)))
    assert target.client.cancel_batches([batch.batch_id]) == 3
    progress = target.wait(batch)
    assert [item.status for item in progress.items] == ["canceled"] * 3
    assert progress.status.canceled == 3


def test_an_item_the_server_no_longer_has_is_lost(target):
    (item,) = target.client.queue_items([2_000_000_000], output_node=graphs.OUTPUT_NODE)
    assert (item.status, item.lost, item.finished) == ("lost", True, True)


def test_an_unknown_batch_has_no_items_and_is_not_finished(target):
    status = target.client.batch_status(str(uuid.uuid4()))
    assert (status.total, status.finished) == (0, False)


def test_upload_refuses_what_is_not_an_image(target):
    with pytest.raises(GenerationError, match="Not an image") as caught:
        target.client.upload_image(data=b"hello", filename="notes.txt", category="user")
    assert caught.value.details["status"] == 415


def test_a_missing_image_is_a_retrieval_error(target):
    with pytest.raises(RetrievalError, match="no longer has image") as caught:
        target.client.image(f"{uuid.uuid4()}.png")
    assert caught.value.code == "image_missing"
