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
from backends.invokeai.graphs import ControlNet, FluxModels, GenerationParameters, Lora, Mode, Refiner
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


# --- the studio controls, against the bodies EXTRAS.md's graphs ran on the peer (fixtures/graphs/extras) ---


def extra(name: str) -> dict:
    return json.loads((FIXTURES / "graphs" / "extras" / f"{name}.enqueue_batch.json").read_text())


def shape(body: dict) -> tuple[list[str], list[tuple[str, str, str, str]]]:
    """A graph with its node ids taken out: each node's type and fields, each edge by its ends' types."""
    nodes = body["batch"]["graph"]["nodes"]

    def describe(node: dict) -> str:
        return json.dumps({key: value for key, value in node.items() if key not in ("id", "board")}, sort_keys=True)

    edges = sorted(
        (
            nodes[edge["source"]["node_id"]]["type"],
            edge["source"]["field"],
            nodes[edge["destination"]["node_id"]]["type"],
            edge["destination"]["field"],
        )
        for edge in body["batch"]["graph"]["edges"]
    )
    return sorted(describe(node) for node in nodes.values()), edges


def node_of(body: dict, node_type: str) -> dict:
    return next(node for node in body["batch"]["graph"]["nodes"].values() if node["type"] == node_type)


def from_extra(name: str, **overrides) -> GenerationParameters:
    body = extra(name)
    batch = body["batch"]
    data = {datum["node_path"]: datum["items"] for datum in batch["data"][0]}
    metadata = batch["graph"]["nodes"]["core_metadata"]
    denoise = node_of(body, "flux_denoise" if metadata["model"]["base"] == "flux" else "denoise_latents")
    values = {
        "model": identifier(metadata["model"]),
        "prompt": data["positive_prompt"][0],
        "negative_prompt": data.get("negative_prompt", [""])[0],
        "width": metadata["width"],
        "height": metadata["height"],
        "steps": metadata["steps"],
        "seed": data["seed"][0],
        "batch_size": len(data["seed"]),
        "board_id": "<BOARD_ID>",
        "loras": tuple(Lora(identifier(lora["model"]), lora["weight"]) for lora in metadata.get("loras", [])),
    }
    decoders = [node for node in batch["graph"]["nodes"].values() if node["type"] == "l2i"]
    if decoders:
        # The peer is a CPU: the bodies decode in fp32.
        values["vae_fp32"] = decoders[0]["fp32"]
    if "guidance" in metadata:
        values["guidance"] = metadata["guidance"]
        values["flux"] = FluxModels(
            t5_encoder=identifier(metadata["t5_encoder"]),
            clip_embed=identifier(metadata["clip_embed_model"]),
            vae=identifier(metadata["vae"]),
        )
    else:
        values |= {"cfg_scale": denoise["cfg_scale"], "scheduler": denoise["scheduler"]}
    if "refiner_model" in metadata:
        values["refiner"] = Refiner(
            model=identifier(metadata["refiner_model"]),
            start=metadata["refiner_start"],
            steps=metadata["refiner_steps"],
            cfg_scale=metadata["refiner_cfg_scale"],
            scheduler=metadata["refiner_scheduler"],
            aesthetic_score=metadata["refiner_positive_aesthetic_score"],
            negative_aesthetic_score=metadata["refiner_negative_aesthetic_score"],
        )
    controls = [node for node in batch["graph"]["nodes"].values() if node["type"] == "controlnet"]
    values["controlnets"] = tuple(
        ControlNet(
            model=identifier(node["control_model"]),
            image="<IMAGE:control>",
            preprocessor=next(
                graph_node["type"]
                for graph_node in batch["graph"]["nodes"].values()
                if graph_node["type"] in graphs.PREPROCESSORS
            ),
            weight=node["control_weight"],
            begin=node["begin_step_percent"],
            end=node["end_step_percent"],
            control_mode=node["control_mode"],
            resize_mode=node["resize_mode"],
        )
        for node in controls
    )
    return GenerationParameters(**(values | overrides))


def expected_shape(name: str, params: GenerationParameters) -> tuple[list[str], list[tuple[str, str, str, str]]]:
    """The shared body's shape, with what it leaves out by design filled in the way the UI fills it."""
    body = extra(name)
    nodes = body["batch"]["graph"]["nodes"]
    if params.controlnets:
        # The shared body recorded an empty list; the UI records each ControlNet, as ours does.
        nodes["core_metadata"]["controlnets"] = graphs.build_batch(params)["batch"]["graph"]["nodes"]["core_metadata"][
            "controlnets"
        ]
    for node in nodes.values():
        if node["type"] == "sdxl_compel_prompt":
            # Our SDXL text nodes leave the size fields at their defaults, as the shared sdxl_txt2img does.
            for field in ("original_width", "original_height", "target_width", "target_height"):
                node.pop(field)
        if node["type"] == "flux_denoise":
            # FLUX's scheduler: the node's default (euler) is what ours leaves it at.
            node.pop("scheduler")
            nodes["core_metadata"].pop("scheduler")
    return shape(body)


EXTRA_CASES = [
    "sd1_lora_collection",
    "sd1_embedding",
    "sd1_controlnet",
    "sd2_txt2img",
    "sdxl_base_refiner",
    "flux_txt2img",
]


@pytest.mark.parametrize("name", EXTRA_CASES)
def test_builds_the_graphs_that_ran_on_the_peer(name):
    params = from_extra(name)
    built = graphs.build_batch(params)
    nodes, edges = shape(built)
    expected_nodes, expected_edges = expected_shape(name, params)
    assert edges == expected_edges
    assert nodes == expected_nodes
    fake.validate_enqueue(built)


def test_the_depth_controlnet_names_its_preprocessor_by_node_type():
    params = from_extra("sd1_controlnet_depth")
    assert params.controlnets[0].preprocessor == "depth_anything_depth_estimation"
    nodes, edges = shape(graphs.build_batch(params))
    expected_nodes, expected_edges = expected_shape("sd1_controlnet_depth", params)
    assert (nodes, edges) == (expected_nodes, expected_edges)


def lora(name: str = "tiny-sd1-lora", base: str = "sd-1", weight: float = 0.75) -> Lora:
    return Lora(ModelIdentifier(key=f"k-{name}", hash="h", name=name, base=base, type="lora"), weight)


def test_several_loras_chain_through_one_collection_loader_and_are_recorded():
    body = graphs.build_batch(sd1(loras=(lora("a", weight=0.5), lora("b", weight=1.0))))
    graph = body["batch"]["graph"]
    selectors = [node for node in graph["nodes"].values() if node["type"] == "lora_selector"]
    assert [(node["lora"]["name"], node["weight"]) for node in selectors] == [("a", 0.5), ("b", 1.0)]
    assert [(item["model"]["name"], item["weight"]) for item in graph["nodes"]["core_metadata"]["loras"]] == [
        ("a", 0.5),
        ("b", 1.0),
    ]
    fake.validate_enqueue(body)


def test_sdxl_and_flux_loras_use_their_bases_loaders():
    sdxl_model = ModelIdentifier(key="x", hash="h", name="tiny-sdxl", base="sdxl", type="main")
    sdxl_body = graphs.build_batch(sd1(model=sdxl_model, loras=(lora("x", "sdxl"),)))
    fake.validate_enqueue(sdxl_body)
    _, edges = shape(sdxl_body)
    assert ("sdxl_lora_collection_loader", "clip2", "sdxl_compel_prompt", "clip2") in edges
    assert ("sdxl_lora_collection_loader", "unet", "denoise_latents", "unet") in edges
    flux_body = graphs.build_batch(flux_params(loras=(lora("f", "flux"),)))
    fake.validate_enqueue(flux_body)
    _, edges = shape(flux_body)
    assert ("flux_lora_collection_loader", "transformer", "flux_denoise", "transformer") in edges
    assert ("flux_lora_collection_loader", "t5_encoder", "flux_text_encoder", "t5_encoder") in edges
    assert ("flux_model_loader", "transformer", "flux_lora_collection_loader", "transformer") in edges


def test_seamless_patches_unet_and_vae_before_the_loras():
    body = graphs.build_batch(sd1(seamless_x=True, loras=(lora(),), vae=vae("v", "sd-1")))
    fake.validate_enqueue(body)
    _, edges = shape(body)
    assert ("main_model_loader", "unet", "seamless", "unet") in edges
    assert ("vae_loader", "vae", "seamless", "vae") in edges
    assert ("seamless", "unet", "lora_collection_loader", "unet") in edges
    assert ("seamless", "vae", "l2i", "vae") in edges
    metadata = body["batch"]["graph"]["nodes"]["core_metadata"]
    assert (metadata["seamless_x"], metadata["seamless_y"]) == (True, False)


INCOMPATIBLE = {
    "a LoRA of another base": (sd1(loras=(lora("x", "sdxl"),)), "loras[0]"),
    "a LoRA weight out of range": (sd1(loras=(lora(weight=11),)), "loras[0].weight"),
    "FLUX with a negative prompt": (flux_params(negative_prompt="blurry"), "negative_prompt"),
    "FLUX off the multiple of 16": (flux_params(width=72), "width"),
    "clip skip on SDXL": (
        sd1(model=ModelIdentifier(key="x", hash="h", name="tiny-sdxl", base="sdxl", type="main"), clip_skip=2),
        "clip_skip",
    ),
    "seamless on FLUX": (flux_params(seamless_y=True), "seamless"),
    "a ControlNet without an image": (
        sd1(
            controlnets=(
                ControlNet(ModelIdentifier(key="c", hash="h", name="cn", base="sd-1", type="controlnet"), image=""),
            )
        ),
        "controlnets[0].photo_id",
    ),
    "a ControlNet on FLUX": (
        flux_params(
            controlnets=(
                ControlNet(ModelIdentifier(key="c", hash="h", name="cn", base="flux", type="controlnet"), image="c"),
            )
        ),
        "controlnets",
    ),
    "an unknown preprocessor": (
        sd1(
            controlnets=(
                ControlNet(
                    ModelIdentifier(key="c", hash="h", name="cn", base="sd-1", type="controlnet"),
                    image="c",
                    preprocessor="canny_image_processor",
                ),
            )
        ),
        "controlnets[0].preprocessor",
    ),
}


@pytest.mark.parametrize("params,field", INCOMPATIBLE.values(), ids=INCOMPATIBLE.keys())
def test_an_incompatible_choice_names_its_field(params, field):
    with pytest.raises(InvalidInput) as raised:
        graphs.build_batch(params)
    assert raised.value.details["field"] == field


def test_an_outpaint_infills_the_padded_image_masks_it_and_pastes_the_original_back():
    params = sd1(
        mode=Mode.OUTPAINT,
        init_image="padded.png",
        mask_image="mask.png",
        width=128,
        height=64,
        outpaint=graphs.Outpaint(right=64, infill="color", original_image="original.png"),
    )
    body = graphs.build_batch(params)
    fake.validate_enqueue(body)
    nodes = body["batch"]["graph"]["nodes"]
    assert nodes["infill"]["type"] == "infill_rgba" and nodes["infill"]["image"] == {"image_name": "padded.png"}
    assert nodes[graphs.OUTPUT_NODE]["type"] == "img_paste"
    assert (nodes["output"]["x"], nodes["output"]["y"], nodes["output"]["image"]["image_name"]) == (
        0,
        0,
        "original.png",
    )
    _, edges = shape(body)
    assert ("infill_rgba", "image", "i2l", "image") in edges
    assert ("infill_rgba", "image", "create_gradient_mask", "image") in edges
    assert ("l2i", "image", "img_paste", "base_image") in edges
    assert nodes["core_metadata"]["generation_mode"] == "outpaint"


@pytest.mark.parametrize(
    "outpaint,field",
    [
        (graphs.Outpaint(), "outpaint"),
        (graphs.Outpaint(left=-1), "outpaint.left"),
        (graphs.Outpaint(top=64, infill="smear"), "outpaint.infill"),
    ],
)
def test_an_outpaint_names_what_is_wrong(outpaint, field):
    params = sd1(mode=Mode.OUTPAINT, init_image="p.png", mask_image="m.png", outpaint=outpaint)
    with pytest.raises(InvalidInput) as raised:
        graphs.build_batch(params)
    assert raised.value.details["field"] == field


def test_an_upscale_is_one_spandrel_node():
    upscaler = ModelIdentifier(key="u", hash="h", name="x2", base="any", type="spandrel_image_to_image")
    body = graphs.build_upscale_batch(image="in.png", upscaler=upscaler)
    fake.validate_enqueue(body)
    assert body["batch"]["graph"]["nodes"][graphs.OUTPUT_NODE]["image_to_image_model"]["key"] == "u"
    with pytest.raises(InvalidInput):
        graphs.build_upscale_batch(image="in.png", upscaler=identifier({**upscaler.as_field(), "type": "lora"}))
