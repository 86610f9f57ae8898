"""The graph builders against the example bodies (fixtures/graphs, bodies the UI's builders make and a live
6.14.2 ran), and their parameter checks. Every built graph also goes through the fake's validator, which
checks it against the server's own schema."""

from __future__ import annotations

import copy
import io
import json
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from backends.invokeai import graphs
from backends.invokeai.client import ModelIdentifier, queue_item_from
from backends.invokeai.errors import ModelError
from backends.invokeai.graphs import FluxModels, GenerationParameters, Mode, Refiner
from backends.invokeai.masks import to_invokeai_mask
from gallery_project.errors import InvalidInput
from testing import fake_invokeai as fake

FIXTURES = Path(__file__).parent / "fixtures"
BOARD = "<board-id-from-POST-/api/v1/boards/>"


def example(name: str) -> dict:
    return json.loads((FIXTURES / "graphs" / f"{name}.enqueue_batch.json").read_text())


def identifier(field: dict) -> ModelIdentifier:
    return ModelIdentifier(**{key: field[key] for key in ("key", "hash", "name", "base", "type")})


def comparable(body: dict, output_node: str) -> dict:
    """The body with the output node named as ours, edges in a stable order, and what differs by design
    (origin/destination names; the example's seeds are not consecutive) taken out."""
    batch = copy.deepcopy(body)["batch"]
    graph = batch["graph"]
    graph["nodes"] = {
        (graphs.OUTPUT_NODE if node_id == output_node else node_id): node for node_id, node in graph["nodes"].items()
    }
    graph["nodes"][graphs.OUTPUT_NODE]["id"] = graphs.OUTPUT_NODE
    for edge in graph["edges"]:
        for end in edge.values():
            if end["node_id"] == output_node:
                end["node_id"] = graphs.OUTPUT_NODE
    graph["edges"] = sorted(graph["edges"], key=json.dumps)
    batch.pop("origin"), batch.pop("destination")
    batch["data"][0][0]["items"] = len(batch["data"][0][0]["items"])
    return batch


def from_example(name: str, **overrides) -> GenerationParameters:
    """The parameters that example `name` was built from."""
    batch = example(name)["batch"]
    nodes = batch["graph"]["nodes"]
    data = {datum["node_path"]: datum["items"] for datum in batch["data"][0]}
    metadata = nodes["core_metadata"]
    values = {
        "model": identifier(metadata["model"]),
        "prompt": data["positive_prompt"][0],
        "negative_prompt": data.get("negative_prompt", [""])[0],
        "width": metadata["width"],
        "height": metadata["height"],
        "steps": metadata["steps"],
        "seed": data["seed"][0],
        "batch_size": len(data["seed"]),
        "board_id": BOARD,
    }
    if "cfg_scale" in metadata:
        values |= {"cfg_scale": metadata["cfg_scale"], "scheduler": metadata["scheduler"]}
    if "guidance" in metadata:
        values["guidance"] = metadata["guidance"]
        values["flux"] = FluxModels(
            t5_encoder=identifier(metadata["t5_encoder"]),
            clip_embed=identifier(metadata["clip_embed_model"]),
            vae=identifier(metadata["vae"]),
        )
    return GenerationParameters(**(values | overrides))


CASES = {
    "sd1_txt2img": ("l2i", {}),
    "sd1_img2img": (
        "l2i",
        {"mode": Mode.IMG2IMG, "init_image": "<uploaded-init-image>.png", "strength": 0.65},
    ),
    "sd1_inpaint": (
        "blend",
        {
            "mode": Mode.INPAINT,
            "init_image": "<uploaded-init-image>.png",
            "mask_image": "<uploaded-mask>.png",
            "strength": 1.0,
        },
    ),
    "sdxl_txt2img": ("l2i", {}),
    "flux_txt2img": ("vae_decode", {}),
    "flux_img2img": (
        "vae_decode",
        {"mode": Mode.IMG2IMG, "init_image": "<uploaded-init-image>.png", "strength": 0.6},
    ),
}


@pytest.fixture(autouse=True)
def _batch_limit(settings):
    settings.MAX_BATCH_SIZE = 10


@pytest.mark.parametrize("name", CASES)
def test_builds_the_example_graph(name):
    output_node, overrides = CASES[name]
    built = graphs.build_batch(from_example(name, **overrides))
    expected = comparable(example(name), output_node)
    if name == "flux_img2img":
        # The example leaves them out; the metadata of every img2img image records them, FLUX's too.
        expected["graph"]["nodes"]["core_metadata"] |= {
            "strength": 0.6,
            "init_image": "<uploaded-init-image>.png",
        }
    assert comparable(built, graphs.OUTPUT_NODE)["graph"]["nodes"] == expected["graph"]["nodes"]
    assert comparable(built, graphs.OUTPUT_NODE) == expected
    assert (built["batch"]["origin"], built["batch"]["destination"]) == ("photo-studio", "photo-studio")
    assert (
        built["batch"]["data"][0][0]["items"]
        == graphs.seeds_from(from_example(name).seed, 4)[: from_example(name).batch_size]
    )


def sd1(**overrides) -> GenerationParameters:
    model = ModelIdentifier(key="k1", hash="blake3:1", name="tiny-sd1", base="sd-1", type="main")
    return GenerationParameters(
        **({"model": model, "prompt": "a cat", "width": 64, "height": 64, "steps": 2} | overrides)
    )


def vae(name: str, base: str) -> ModelIdentifier:
    return ModelIdentifier(key=f"k-{name}", hash="blake3:v", name=name, base=base, type="vae")


def flux_params(**overrides) -> GenerationParameters:
    companions = FluxModels(
        t5_encoder=ModelIdentifier(key="t5", hash="h", name="t5", base="any", type="t5_encoder"),
        clip_embed=ModelIdentifier(key="clip", hash="h", name="clip", base="any", type="clip_embed"),
        vae=vae("ae", "flux"),
    )
    model = ModelIdentifier(key="f", hash="h", name="flux-schnell", base="flux", type="main")
    return sd1(**({"model": model, "flux": companions} | overrides))


BUILDS = {
    "sd1 with a chosen VAE": sd1(vae=vae("tiny-sd1-vae", "sd-1")),
    "sd2": sd1(model=ModelIdentifier(key="k2", hash="h", name="sd2", base="sd-2", type="main")),
    "sdxl inpaint": sd1(
        model=ModelIdentifier(key="x", hash="h", name="tiny-sdxl", base="sdxl", type="main"),
        mode=Mode.INPAINT,
        init_image="i.png",
        mask_image="m.png",
    ),
    "sdxl with refiner": sd1(
        model=ModelIdentifier(key="x", hash="h", name="tiny-sdxl", base="sdxl", type="main"),
        refiner=Refiner(model=ModelIdentifier(key="r", hash="h", name="refiner", base="sdxl-refiner", type="main")),
    ),
    "flux inpaint": flux_params(mode=Mode.INPAINT, init_image="i.png", mask_image="m.png"),
}


@pytest.mark.parametrize("params", BUILDS.values(), ids=BUILDS.keys())
def test_every_variant_passes_the_servers_schema(params):
    body = graphs.build_batch(params)
    fake.validate_enqueue(body)
    nodes = body["batch"]["graph"]["nodes"]
    assert [node_id for node_id, node in nodes.items() if not node["is_intermediate"]] == [graphs.OUTPUT_NODE]
    assert nodes[graphs.OUTPUT_NODE]["use_cache"] is False
    assert {
        "source": {"node_id": "core_metadata", "field": "metadata"},
        "destination": {
            "node_id": graphs.OUTPUT_NODE,
            "field": "metadata",
        },
    } in body["batch"]["graph"]["edges"]


def test_a_chosen_vae_decodes_and_no_board_means_no_board_field():
    body = graphs.build_batch(sd1(vae=vae("tiny-sd1-vae", "sd-1")))
    graph = body["batch"]["graph"]
    assert graph["nodes"]["vae_loader"]["vae_model"]["name"] == "tiny-sd1-vae"
    assert {
        "source": {"node_id": "vae_loader", "field": "vae"},
        "destination": {"node_id": "output", "field": "vae"},
    } in graph["edges"]
    assert "board" not in graph["nodes"]["output"]
    assert graph["nodes"]["core_metadata"]["vae"]["name"] == "tiny-sd1-vae"


def test_sdxl_decodes_in_fp32_unless_the_vae_is_an_fp16_fix():
    sdxl = ModelIdentifier(key="x", hash="h", name="tiny-sdxl", base="sdxl", type="main")
    assert graphs.build_batch(sd1(model=sdxl))["batch"]["graph"]["nodes"]["output"]["fp32"] is True
    fixed = graphs.build_batch(sd1(model=sdxl, vae=vae("sdxl-vae-fp16-fix", "sdxl")))
    assert fixed["batch"]["graph"]["nodes"]["output"]["fp32"] is False


def test_the_prompt_is_sent_as_written_in_every_item():
    body = graphs.build_batch(sd1(prompt="  a cat, 8k ", negative_prompt="dog", batch_size=3, seed=4294967294))
    seeds, positive, negative = body["batch"]["data"][0]
    assert seeds["items"] == [4294967294, 4294967295, 0]
    assert positive["items"] == ["  a cat, 8k "] * 3
    assert negative["items"] == ["dog"] * 3


def test_without_a_seed_the_start_is_random_and_the_rest_follow():
    first = graphs.build_batch(sd1(batch_size=2))["batch"]["data"][0][0]["items"]
    second = graphs.build_batch(sd1(batch_size=2))["batch"]["data"][0][0]["items"]
    assert first[1] == (first[0] + 1) % 2**32
    assert first != second


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"width": 100}, "width", "multiple of 8 for sd-1 models .got 100; 96 or 104 would do"),
        ({"height": 8192}, "height", "between 64 and 4096"),
        ({"steps": 0}, "steps", "between 1 and 200"),
        ({"cfg_scale": 0.5}, "cfg_scale", "between 1 and 30"),
        ({"scheduler": "fast"}, "scheduler", "Unknown scheduler"),
        ({"seed": -1}, "seed", "between 0 and 4294967295"),
        ({"batch_size": 11}, "batch_size", "between 1 and 10"),
        ({"prompt": "   "}, "prompt", "Write a prompt"),
        ({"mode": Mode.IMG2IMG}, "init_image", "needs init image"),
        ({"init_image": "i.png"}, "init_image", "takes no init image"),
        ({"mode": Mode.INPAINT, "init_image": "i.png"}, "mask_image", "needs one"),
        ({"mode": Mode.IMG2IMG, "init_image": "i.png", "strength": 0}, "strength", "above 0"),
    ],
)
def test_parameters_are_checked_before_sending(overrides, field, message):
    with pytest.raises(InvalidInput, match=message) as caught:
        graphs.build_batch(sd1(**overrides))
    assert caught.value.status == 400
    assert caught.value.details == {"field": field}


def test_flux_sizes_are_multiples_of_16():
    with pytest.raises(InvalidInput, match="multiple of 16 for flux models"):
        graphs.build_batch(flux_params(width=72))


@pytest.mark.parametrize(
    ("params", "code"),
    [
        (
            sd1(model=ModelIdentifier(key="k", hash="h", name="sd3", base="sd-3", type="main")),
            "unsupported_base",
        ),
        (sd1(model=vae("tiny-sd1-vae", "sd-1")), "model_unavailable"),
        (sd1(vae=vae("tiny-sdxl-vae", "sdxl")), "vae_mismatch"),
        (replace(flux_params(), flux=None), "flux_companions_missing"),
        (sd1(refiner=Refiner(model=vae("x", "sdxl-refiner"))), "invalid_parameter"),
    ],
)
def test_models_that_cannot_be_used_are_model_errors(params, code):
    with pytest.raises(InvalidInput) as caught:
        graphs.build_batch(params)
    assert caught.value.code == code
    assert caught.value.status == 400
    if code != "invalid_parameter":
        assert isinstance(caught.value, ModelError)


def test_an_item_reads_the_output_nodes_image_and_its_seed():
    recorded = json.loads((FIXTURES / "recorded" / "queue_item_completed.json").read_text())
    item = queue_item_from(recorded, output_node="l2i")
    assert (item.item_id, item.status, item.seed, item.finished) == (12, "completed", 44, True)
    assert item.image_name == "92588052-a36f-42e0-ba85-7cfb8eca4613.png"
    assert queue_item_from(recorded, output_node="nothing").image_name is None
    waiting = queue_item_from({**copy.deepcopy(recorded), "status": "waiting"}, output_node="l2i")
    assert waiting.finished is False


def test_masks_painted_white_become_black_for_invokeai():
    painted = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    painted.paste((255, 255, 255, 255), (0, 0, 4, 8))
    buffer = io.BytesIO()
    painted.save(buffer, "PNG")
    converted = Image.open(io.BytesIO(to_invokeai_mask(buffer.getvalue())))
    assert converted.mode == "L"
    # Painted (left) regenerates: black; transparent (right) is kept: white.
    assert (converted.getpixel((1, 1)), converted.getpixel((6, 6))) == (0, 255)
