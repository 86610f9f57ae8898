"""Generation parameters other tools embed, read on upload and import: a file written in each tool's own
format, and the malformed ones that must not stop an upload."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from PIL import Image

from photos import ai_recipe
from photos.models import Photo, PhotoTally
from testing.accounts import owner_account

from .images import image_bytes, png_text, png_with_chunks

pytestmark = pytest.mark.django_db

A1111_PARAMETERS = (
    "a castle on a hill, <lora:add_detail:0.7>, golden hour <lora:film_grain>\n"
    "Negative prompt: blurry, lowres\n"
    "Steps: 24, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 3141592653, Size: 512x768, "
    'Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Lora hashes: "add_detail: 7c6bad76eb54, film_grain: '
    'a1b2c3d4e5f6", Version: {version}'
)


def a1111_png(version: str = "v1.10.1") -> bytes:
    """AUTOMATIC1111 (and Forge, its fork): the infotext in a PNG tEXt chunk named `parameters`."""
    return png_with_chunks(png_text("parameters", A1111_PARAMETERS.format(version=version)))


def a1111_jpeg(fmt: str = "JPEG") -> bytes:
    """AUTOMATIC1111's JPEG and WebP: the infotext in EXIF UserComment, UTF-16 as piexif writes it."""
    exif = Image.Exif()
    infotext = A1111_PARAMETERS.format(version="v1.10.1")
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + infotext.encode("utf-16-be")
    return image_bytes(fmt, exif=exif.tobytes())


COMFY_GRAPH = {
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "dreamshaper_8.safetensors"}},
    "10": {
        "class_type": "LoraLoader",
        "inputs": {
            "lora_name": "add_detail.safetensors",
            "strength_model": 0.8,
            "strength_clip": 0.8,
            "model": ["4", 0],
            "clip": ["4", 1],
        },
    },
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 640, "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a castle on a hill", "clip": ["10", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["10", 1]}},
    "3": {
        "class_type": "KSampler",
        "inputs": {
            "seed": 18446744073709551615,  # ComfyUI's seeds go to 2^64 - 1, past a signed 64-bit column
            "steps": 20,
            "cfg": 8.0,
            "sampler_name": "euler_ancestral",
            "scheduler": "normal",
            "denoise": 1.0,
            "model": ["10", 0],
            "positive": ["6", 0],
            "negative": ["7", 0],
            "latent_image": ["5", 0],
        },
    },
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
}
_COMFY_OUTPUTS = {
    "CheckpointLoaderSimple": ["MODEL", "CLIP", "VAE"],
    "LoraLoader": ["MODEL", "CLIP"],
    "EmptyLatentImage": ["LATENT"],
    "CLIPTextEncode": ["CONDITIONING"],
    "KSampler": ["LATENT"],
    "VAEDecode": ["IMAGE"],
}


def comfyui_workflow(graph: dict) -> dict:
    """The UI workflow ComfyUI saves beside the API graph: nodes, and links as
    [id, origin node, origin slot, target node, target slot, type]."""
    links = []
    for target, node in graph.items():
        for slot, value in enumerate(node["inputs"].values()):
            if isinstance(value, list):
                origin, origin_slot = value
                kind = _COMFY_OUTPUTS[graph[origin]["class_type"]][origin_slot]
                links.append([len(links) + 1, int(origin), origin_slot, int(target), slot, kind])
    nodes = [{"id": int(key), "type": node["class_type"]} for key, node in graph.items()]
    return {"last_node_id": 10, "last_link_id": len(links), "nodes": nodes, "links": links, "version": 0.4}


def comfyui_png() -> bytes:
    return png_with_chunks(
        png_text("prompt", json.dumps(COMFY_GRAPH)), png_text("workflow", json.dumps(comfyui_workflow(COMFY_GRAPH)))
    )


INVOKEAI_METADATA = {
    "generation_mode": "txt2img",
    "positive_prompt": "a castle on a hill",
    "negative_prompt": "blurry",
    "width": 768,
    "height": 512,
    "seed": 44,
    "rand_device": "cpu",
    "cfg_scale": 7.5,
    "cfg_rescale_multiplier": 0.0,
    "steps": 30,
    "scheduler": "dpmpp_2m_k",
    "clip_skip": 0,
    "model": {"key": "e7625f8e", "hash": "blake3:2b8c3480", "name": "tiny-sd1", "base": "sd-1", "type": "main"},
    "loras": [{"model": {"key": "l1", "hash": "blake3:aa", "name": "add_detail", "base": "sd-1"}, "weight": 0.75}],
    "app_version": "6.14.2",
}


def invokeai_png() -> bytes:
    """InvokeAI 6: `invokeai_metadata` (as recorded from the real InvokeAI, plus a LoRA) and `invokeai_graph`."""
    return png_with_chunks(
        png_text("invokeai_metadata", json.dumps(INVOKEAI_METADATA)),
        png_text("invokeai_graph", json.dumps({"id": "graph", "nodes": {}, "edges": []})),
    )


def novelai_png() -> bytes:
    """NovelAI: the prompt as Description, the settings as JSON in Comment, the model in Source."""
    comment = {
        "prompt": "a castle on a hill",
        "steps": 28,
        "height": 832,
        "width": 1216,
        "scale": 5.0,
        "uncond_scale": 1.0,
        "cfg_rescale": 0.0,
        "seed": 3780839926,
        "n_samples": 1,
        "noise_schedule": "native",
        "sampler": "k_euler_ancestral",
        "uc": "lowres, bad anatomy",
    }
    return png_with_chunks(
        png_text("Title", "AI generated image"),
        png_text("Description", "a castle on a hill"),
        png_text("Software", "NovelAI"),
        png_text("Source", "Stable Diffusion XL C1E1DE52"),
        png_text("Generation time", "5.2"),
        png_text("Comment", json.dumps(comment)),
    )


def fooocus_png() -> bytes:
    """Fooocus's own scheme: JSON in `parameters`, and `fooocus_scheme`."""
    parameters = {
        "adm_guidance": "(1.5, 0.8, 0.3)",
        "base_model": "juggernautXL_v8Rundiffusion.safetensors",
        "base_model_hash": "aeb7e9e689",
        "clip_skip": 2,
        "full_negative_prompt": ["blurry"],
        "full_prompt": ["a castle on a hill, cinematic, highly detailed"],
        "guidance_scale": 4,
        "lora_combined_1": "sd_xl_offset_example-lora_1.0.safetensors : 0.1",
        "metadata_scheme": "fooocus",
        "negative_prompt": "blurry",
        "performance": "Speed",
        "prompt": "a castle on a hill",
        "refiner_model": "None",
        "refiner_switch": 0.5,
        "resolution": "(1152, 896)",
        "sampler": "dpmpp_2m_sde_gpu",
        "scheduler": "karras",
        "seed": "1234567",
        "sharpness": 2,
        "steps": 30,
        "styles": "['Fooocus V2']",
        "vae": "Default (model)",
        "version": "Fooocus v2.5.0",
    }
    return png_with_chunks(png_text("parameters", json.dumps(parameters)), png_text("fooocus_scheme", "fooocus"))


def swarmui_png() -> bytes:
    """SwarmUI: JSON in `parameters` with `sui_image_params`, `sui_extra_data` and `sui_models`."""
    document = {
        "sui_image_params": {
            "prompt": "a castle on a hill",
            "negativeprompt": "blurry",
            "model": "OfficialStableDiffusion/sd_xl_base_1.0",
            "seed": 1801426541,
            "steps": 20,
            "cfgscale": 7.0,
            "aspectratio": "1:1",
            "width": 1024,
            "height": 1024,
            "sampler": "euler",
            "scheduler": "karras",
            "loras": ["add_detail", "film_grain"],
            "loraweights": ["0.6", "1"],
            "swarm_version": "0.9.6.1",
        },
        "sui_extra_data": {"date": "2025-03-01", "prep_time": "0.01 sec", "generation_time": "4.20 sec"},
        "sui_models": [{"name": "sd_xl_base_1.0.safetensors", "param": "model", "hash": "0x31e35c80fc"}],
    }
    return png_with_chunks(png_text("parameters", json.dumps(document)))


EXPECTED = {
    "a1111.png": (
        a1111_png,
        {
            "source": "AUTOMATIC1111",
            "prompt": "a castle on a hill, <lora:add_detail:0.7>, golden hour <lora:film_grain>",
            "negative_prompt": "blurry, lowres",
            "seed": 3141592653,
            "model_name": "v1-5-pruned-emaonly",
            "model_hash": "6ce0161689",
            "params": {
                "sampler": "DPM++ 2M",
                "scheduler": "Karras",
                "steps": 24,
                "cfg_scale": 6.5,
                "width": 512,
                "height": 768,
                "loras": [{"name": "add_detail", "weight": 0.7}, {"name": "film_grain", "weight": 1.0}],
            },
        },
    ),
    "forge.png": (lambda: a1111_png("f2.0.1v1.10.1-previous-313-g8a042934"), {"source": "Forge"}),
    "a1111.jpg": (a1111_jpeg, {"source": "AUTOMATIC1111", "seed": 3141592653, "params": {"steps": 24}}),
    "a1111.webp": (lambda: a1111_jpeg("WEBP"), {"source": "AUTOMATIC1111", "negative_prompt": "blurry, lowres"}),
    "comfyui.png": (
        comfyui_png,
        {
            "source": "ComfyUI",
            "prompt": "a castle on a hill",
            "negative_prompt": "blurry",
            "seed": None,  # too large for the column; the recipe still shows the rest
            "model_name": "dreamshaper_8.safetensors",
            "model_hash": "",
            "params": {
                "sampler": "euler_ancestral",
                "scheduler": "normal",
                "steps": 20,
                "cfg_scale": 8.0,
                "width": 512,
                "height": 640,
                "loras": [{"name": "add_detail.safetensors", "weight": 0.8}],
            },
        },
    ),
    "invokeai.png": (
        invokeai_png,
        {
            "source": "InvokeAI",
            "prompt": "a castle on a hill",
            "negative_prompt": "blurry",
            "seed": 44,
            "model_name": "tiny-sd1",
            "model_hash": "blake3:2b8c3480",
            "params": {
                "scheduler": "dpmpp_2m_k",
                "steps": 30,
                "cfg_scale": 7.5,
                "width": 768,
                "height": 512,
                "loras": [{"name": "add_detail", "weight": 0.75}],
            },
        },
    ),
    "novelai.png": (
        novelai_png,
        {
            "source": "NovelAI",
            "prompt": "a castle on a hill",
            "negative_prompt": "lowres, bad anatomy",
            "seed": 3780839926,
            "model_name": "Stable Diffusion XL",
            "model_hash": "C1E1DE52",
            "params": {"sampler": "k_euler_ancestral", "steps": 28, "cfg_scale": 5.0, "width": 1216, "height": 832},
        },
    ),
    "fooocus.png": (
        fooocus_png,
        {
            "source": "Fooocus",
            "prompt": "a castle on a hill",  # what was typed; Fooocus's expansion of it stays in the file
            "negative_prompt": "blurry",
            "seed": 1234567,
            "model_name": "juggernautXL_v8Rundiffusion.safetensors",
            "model_hash": "aeb7e9e689",
            "params": {
                "sampler": "dpmpp_2m_sde_gpu",
                "scheduler": "karras",
                "steps": 30,
                "cfg_scale": 4.0,
                "width": 1152,
                "height": 896,
                "loras": [{"name": "sd_xl_offset_example-lora_1.0.safetensors", "weight": 0.1}],
            },
        },
    ),
    "swarmui.png": (
        swarmui_png,
        {
            "source": "SwarmUI",
            "prompt": "a castle on a hill",
            "negative_prompt": "blurry",
            "seed": 1801426541,
            "model_name": "OfficialStableDiffusion/sd_xl_base_1.0",
            "model_hash": "0x31e35c80fc",
            "params": {
                "sampler": "euler",
                "scheduler": "karras",
                "steps": 20,
                "cfg_scale": 7.0,
                "width": 1024,
                "height": 1024,
                "loras": [{"name": "add_detail", "weight": 0.6}, {"name": "film_grain", "weight": 1.0}],
            },
        },
    ),
}


@pytest.mark.parametrize("name", EXPECTED)
def test_each_tools_recipe_is_read_on_upload(upload, name):
    make, expected = EXPECTED[name]
    photo = upload(name, make())
    assert photo.is_generated
    got = {
        "source": photo.generation_params["source"],
        "prompt": photo.generation_prompt,
        "negative_prompt": photo.generation_negative_prompt,
        "seed": photo.seed,
        "model_name": photo.model_name,
        "model_hash": photo.model_hash,
        "params": {key: value for key, value in photo.generation_params.items() if key != "source"},
    }
    for key, value in expected.items():
        if key == "params":
            assert {k: got["params"].get(k) for k in value} == value
        else:
            assert got[key] == value, key
    assert photo.generation_params["source"] in ai_recipe.SOURCES
    # It counts as generated, as the studio's images do.
    assert PhotoTally.objects.get(owner=photo.owner, name=PhotoTally.LIVE_GENERATED).count == 1


def test_import_reads_recipes_too(tmp_path):
    owner_account()
    (tmp_path / "comfy.png").write_bytes(comfyui_png())
    (tmp_path / "plain.jpg").write_bytes(image_bytes("JPEG"))
    call_command("import_photos", str(tmp_path), verbosity=0, stdout=io.StringIO())
    kinds = dict(Photo.objects.values_list("filename", "is_generated"))
    assert kinds == {"comfy.png": True, "plain.jpg": False}
    assert Photo.objects.get(filename="comfy.png").generation_params["source"] == "ComfyUI"


def test_photos_without_a_recipe_stay_uploads(upload):
    camera = Image.Exif()
    camera.get_ifd(0x8769)[0x9286] = b"ASCII\x00\x00\x00Holiday at the sea"  # a camera's own comment
    for name, data in [
        ("plain.png", png_with_chunks(png_text("Title", "My cat"), png_text("Software", "GIMP 2.10"))),
        ("camera.jpg", image_bytes("JPEG", exif=camera.tobytes())),
        ("empty-params.png", png_with_chunks(png_text("parameters", ""))),
    ]:
        photo = upload(name, data)
        assert not photo.is_generated, name
        assert photo.generation_params == {} and photo.generation_prompt == ""


@pytest.mark.parametrize(
    "chunks",
    [
        [png_text("parameters", "Steps: twenty, Sampler: , CFG scale: NaN, Seed: -1")],
        [png_text("parameters", '{"sui_image_params": {"seed": "x", "steps": null, "loras": 5}}')],
        [png_text("prompt", "{not json"), png_text("workflow", "[]")],
        [png_text("prompt", json.dumps({"3": "not a node"})), png_text("workflow", json.dumps({"links": "none"}))],
        [png_text("invokeai_metadata", json.dumps({"positive_prompt": 5, "model": "x", "loras": [1, None]}))],
        [png_text("invokeai_metadata", "[1, 2")],
        [
            png_text("Description", "x"),
            png_text("Software", "NovelAI"),
            png_text("Source", "y"),
            png_text("Comment", "{"),
        ],
        [png_text("parameters", json.dumps({"prompt": 1, "version": "Fooocus v2", "base_model": None}))],
        [png_text("parameters", "p" * 500_000 + "\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1")],
    ],
)
def test_malformed_chunks_never_block_the_upload(upload, chunks):
    photo = upload("odd.png", png_with_chunks(*chunks))
    assert photo.pk and Photo.objects.filter(pk=photo.pk).exists()
    # Whatever was read fits the columns.
    assert len(photo.generation_prompt) <= 20_000 and len(photo.model_name) <= 255
    json.dumps(photo.generation_params)  # stored as JSON: nothing but plain values


def test_a_seed_out_of_range_is_dropped_not_stored(upload):
    text = "a cat\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 99999999999999999999, Model: m"
    photo = upload("huge-seed.png", png_with_chunks(png_text("parameters", text)))
    assert photo.is_generated and photo.seed is None and photo.model_name == "m"


def test_api_shows_the_recipe(api):
    from .conftest import as_upload

    response = api.post("/api/photos/", {"file": as_upload("swarm.png", swarmui_png())}, format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["is_generated"] and body["generation_params"]["source"] == "SwarmUI"
    assert body["generation_prompt"] == "a castle on a hill" and body["seed"] == 1801426541
