"""The studio controls end to end on a real InvokeAI (`INVOKEAI_TEST_URL=http://127.0.0.1:9090`): LoRA weights,
an embedding trigger, a canny ControlNet from a gallery photo, SD2, SDXL with its refiner, FLUX schnell, on the
peer's tiny random models (64 px, 2-3 steps). The images are noise; what matters is that InvokeAI ran each graph
and that the differences the controls make show in the pixels."""

from __future__ import annotations

import json
import math
import random
import struct
import time
import uuid
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from backends import manager, routing
from backends.models import BackendSettings
from generation import model_installs, services
from generation.models import CachedModel, GenerationStep
from photos import storage
from photos.models import Photo
from testing.real_invokeai import MODULE_MARKS, REAL_URL

from .conftest import step_request
from .test_real_invokeai import follow_to_end

pytestmark = [*MODULE_MARKS, pytest.mark.usefixtures("real")]


def model(name: str) -> CachedModel:
    return CachedModel.objects.get(name=name, available=True)


def run(user, name: str, **overrides) -> GenerationStep:
    session = services.session_create(owner=user)
    values = {"seed": 1234, "batch_size": 1, "steps": 3, "scheduler": "euler", "cfg_scale": 2.0} | overrides
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(model(name), **values))
    step = follow_to_end(step.pk)
    assert (step.status, step.images_retrieved) == ("completed", 1), step.error_message
    return step


def image(step: GenerationStep) -> Image.Image:
    photo = step.alternatives.get().photo
    with Image.open(storage.absolute(photo.local_storage_path)) as png:
        png.load()
        return png


def metadata(step: GenerationStep) -> dict:
    return json.loads(image(step).info["invokeai_metadata"])


def differs(a: Image.Image, b: Image.Image) -> bool:
    return any(ImageChops.difference(a.convert("RGB"), b.convert("RGB")).getbbox() or ())


def test_lora_weight_0_equals_no_lora_and_weight_1_differs(user):
    lora = model("tiny-sd1-lora")
    plain = run(user, "tiny-sd1")
    zero = run(user, "tiny-sd1", loras=({"key": lora.key, "weight": 0},))
    one = run(user, "tiny-sd1", loras=({"key": lora.key, "weight": 1},))
    assert not differs(image(plain), image(zero))
    assert differs(image(plain), image(one))
    # InvokeAI's own recall reads the LoRA back from the image.
    assert metadata(one)["loras"] == [{"model": lora.identifier.as_field(), "weight": 1}]


def test_an_embedding_trigger_changes_the_image_an_unknown_one_warns(user):
    plain = run(user, "tiny-sd1", prompt="a photo of a forest")
    with_ti = run(user, "tiny-sd1", prompt="a photo of <tiny-sd1-ti> in a forest")
    assert "warnings" not in with_ti.parameters
    assert differs(image(plain), image(with_ti))
    unknown = run(user, "tiny-sd1", prompt="a photo of <controls-no-such-ti> in a forest")
    assert unknown.parameters["warnings"]


def test_a_canny_controlnet_from_a_gallery_photo(user, gallery_photo):
    photo = gallery_photo(size=(256, 256))
    control = model("tiny-sd1-controlnet")
    plain = run(user, "tiny-sd1")
    step = run(
        user,
        "tiny-sd1",
        controlnets=({"key": control.key, "photo_id": str(photo.pk), "preprocessor": "canny_edge_detection"},),
    )
    assert differs(image(plain), image(step))
    assert metadata(step)["controlnets"][0]["control_model"]["key"] == control.key
    # The canny edges InvokeAI drew are kept as the owner's control photo, linked from the step and the recipe.
    processed = Photo.objects.get(pk=step.parameters["controlnets"][0]["processed_photo_id"])
    assert (processed.image_category, processed.owner, processed.source_image_id) == ("control", user, photo.pk)
    with Image.open(storage.absolute(processed.local_storage_path)) as edges:
        # Canny's output is black and white edges of the gallery photo, at its size.
        histogram = edges.convert("L").histogram()
        assert edges.size == (256, 256) and sum(histogram[1:255]) == 0 and histogram[255] > 0
    assert step.alternatives.get().photo.generation_params["controlnets"] == step.parameters["controlnets"]


def test_sd2_v_prediction(user):
    step = run(user, "tiny-sd2", clip_skip=1)
    assert image(step).size == (64, 64)
    assert metadata(step)["model"]["base"] == "sd-2"


def test_sdxl_base_and_refiner(user):
    refiner = model("tiny-sdxl-refiner")
    step = run(user, "tiny-sdxl", refiner={"key": refiner.key, "start": 0.7, "steps": 3, "cfg_scale": 2.0})
    recorded = metadata(step)
    assert (recorded["refiner_model"]["key"], recorded["refiner_start"]) == (refiner.key, 0.7)
    assert step.parameters["refiner"]["model_name"] == "tiny-sdxl-refiner"


def test_flux_schnell(user):
    step = run(user, "tiny-flux-schnell", negative_prompt="", steps=2, width=64, height=64, cfg_scale=None)
    recorded = metadata(step)
    assert recorded["model"]["name"] == "tiny-flux-schnell"
    assert recorded["t5_encoder"]["name"] == "tiny-flux-t5"


def test_an_outpaint_of_64_px_on_one_side_keeps_the_original_pixels(user, gallery_photo):
    photo = gallery_photo(size=(128, 128))
    step = run(user, "tiny-sd1", mode="outpaint", init_photo_id=photo.pk, outpaint={"right": 64}, strength=1.0)
    result = image(step).convert("RGB")
    assert result.size == (192, 128)
    with Image.open(storage.absolute(photo.local_storage_path)) as original:
        assert not differs(result.crop((0, 0, 128, 128)), original)
    # The new area was generated, not left as the infill's tiles of the original.
    assert metadata(step)["generation_mode"] == "outpaint"


def test_an_outpaint_to_16_9_keeps_the_original_in_the_middle(user, gallery_photo):
    photo = gallery_photo(size=(128, 128))
    outpaint = {"aspect_ratio": "16:9", "infill": "color"}
    step = run(user, "tiny-sd1", mode="outpaint", init_photo_id=photo.pk, outpaint=outpaint, strength=1.0)
    result = image(step).convert("RGB")
    assert result.size == (224, 128)
    with Image.open(storage.absolute(photo.local_storage_path)) as original:
        assert not differs(result.crop((48, 0, 176, 128)), original)


def test_the_peer_has_patchmatch_and_an_outpaint_filled_with_it_keeps_the_original(user, gallery_photo):
    # The peer's pypatchmatch is built: its patchmatch_status is true, kept with its models by the refresh.
    assert (BackendSettings.current().patchmatch, BackendSettings.current().models_url) == (True, REAL_URL)
    assert "patchmatch" in routing.infill_methods().names
    photo = gallery_photo(size=(128, 128))
    outpaint = {"bottom": 64, "infill": "patchmatch"}
    step = run(user, "tiny-sd1", mode="outpaint", init_photo_id=photo.pk, outpaint=outpaint, strength=1.0)
    result = image(step)
    assert '"infill_patchmatch"' in result.info["invokeai_graph"]
    assert result.size == (128, 192)
    with Image.open(storage.absolute(photo.local_storage_path)) as original:
        assert not differs(result.convert("RGB").crop((0, 0, 128, 128)), original)


def test_lama_on_the_offline_peer_fails_the_step_with_invokeais_reason(user, gallery_photo):
    """LaMa is offered everywhere: it downloads its model on first use, which the peer, offline, cannot do."""
    photo = gallery_photo(size=(128, 128))
    session = services.session_create(owner=user)
    values = {"seed": 1, "batch_size": 1, "steps": 2, "mode": "outpaint", "init_photo_id": photo.pk}
    request = step_request(model("tiny-sd1"), outpaint={"right": 64, "infill": "lama"}, **values)
    step = follow_to_end(services.step_create(owner=user, session_id=session.pk, request=request).pk)
    assert step.status == "failed", "the peer downloaded LaMa: it is not offline any more"
    # InvokeAI's reason names the download it could not make.
    assert "ConnectionError" in step.error_message and "big-lama.pt" in step.error_message, step.error_message


def tiny_upscaler(path: Path) -> Path:
    """A x2 Real-ESRGAN Compact network with 4 features, random weights, written as safetensors by hand (the
    app has no torch): spandrel recognises the architecture from the key names and shapes."""
    rng = random.Random(7)
    shapes = {
        "body.0.weight": (4, 3, 3, 3),
        "body.0.bias": (4,),
        "body.1.weight": (4,),
        "body.2.weight": (4, 4, 3, 3),
        "body.2.bias": (4,),
        "body.3.weight": (4,),
        "body.4.weight": (12, 4, 3, 3),
        "body.4.bias": (12,),
    }
    header: dict[str, object] = {}
    blobs = []
    offset = 0
    for name, shape in shapes.items():
        count = math.prod(shape)
        blob = struct.pack(f"<{count}f", *(rng.uniform(-0.2, 0.2) for _ in range(count)))
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + b"".join(blobs))
    return path


@pytest.fixture
def upscaler(tmp_path_factory, user):
    """`controls-x2-<random>`, installed in place on the peer for the test and uninstalled after."""
    folder = tmp_path_factory.mktemp("controls-peer")
    source = tiny_upscaler(folder / f"controls-x2-{uuid.uuid4().hex[:8]}.safetensors")
    install = model_installs.install_start(owner=user, source=str(source), name=source.stem)
    deadline = time.monotonic() + 60
    while install.status not in ("ready", "error"):
        assert time.monotonic() < deadline, "the upscaler's install did not finish"
        time.sleep(0.3)
        install = model_installs.install_poll(install_id=install.pk)
    assert (install.status, install.model_type) == ("ready", "spandrel_image_to_image"), install.error_message
    yield CachedModel.objects.get(key=install.model_key)
    client = manager.invokeai_client(REAL_URL)
    for installed in client.list_models():
        if installed.source.startswith(str(folder)):
            client.delete_model(installed.key)


def test_an_upscale_with_a_tiny_spandrel_model(user, gallery_photo, upscaler):
    photo = gallery_photo(size=(120, 100))
    session = services.session_create(owner=user)
    request = services.StepRequest(
        prompt="", model_key="", mode="upscale", init_photo_id=photo.pk, upscaler_key=upscaler.key
    )
    step = follow_to_end(services.step_create(owner=user, session_id=session.pk, request=request).pk)
    assert (step.status, step.images_retrieved) == ("completed", 1), step.error_message
    assert image(step).size == (240, 200)
    assert step.parameters["upscaler_name"].startswith("controls-x2-")


def test_a_preprocessor_that_needs_a_download_fails_with_invokeais_reason(user, gallery_photo):
    photo = gallery_photo(size=(128, 128))
    control = model("tiny-sd1-controlnet")
    session = services.session_create(owner=user)
    request = step_request(
        model("tiny-sd1"),
        batch_size=1,
        steps=2,
        controlnets=({"key": control.key, "photo_id": str(photo.pk), "preprocessor": "dw_openpose_detection"},),
    )
    step = follow_to_end(services.step_create(owner=user, session_id=session.pk, request=request).pk)
    assert step.status == "failed"
    # The peer is offline: the model download fails, and the step says so in InvokeAI's words, in one line.
    assert "Name or service not known" in step.error_message, step.error_message
    assert step.error_message.startswith("1 of 1 images failed: ConnectionError: "), step.error_message
    assert "Traceback" not in step.error_message and "\n" not in step.error_message
    # The whole traceback stays with the item.
    assert "Traceback (most recent call last)" in step.item_results[str(step.item_ids[0])]["traceback"]
