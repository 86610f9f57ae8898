"""Pure builders of InvokeAI `enqueue_batch` bodies: `build_batch(GenerationParameters) -> dict`.

The graphs are the ones InvokeAI's own web UI builds (API-NOTES §6), with fixed node ids so that an item's
output image and seed can be found again: the image comes from the node `OUTPUT_NODE`, the seed from the
`seed` node's value in the batch data. One batch holds the whole request: seeds (and prompts) are zipped in
the batch `data`, one item per image, so a batch of four is four items with four seeds (FACTS #7).

Conventions the server relies on (FACTS #8): the output node is `is_intermediate: false, use_cache: false`;
every other node is intermediate, or InvokeAI's gallery fills with helper images. `core_metadata` feeds the
output node, so InvokeAI stores prompt, seed and model with the image. The prompt is sent as written: requests
are correlated by batch id and item ids, never by marking the text the model reads.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.conf import settings

from gallery_project.errors import InvalidInput

from .client import ModelIdentifier
from .errors import ModelError

ORIGIN = "photo-studio"
DESTINATION = "photo-studio"
OUTPUT_NODE = "output"
SEED_NODE = "seed"
# noise.seed and flux_denoise.seed accept 0..2**32-1.
SEED_MAX = 2**32 - 1

SD_BASES = ("sd-1", "sd-2")
SUPPORTED_BASES = (*SD_BASES, "sdxl", "flux")
# denoise_latents.scheduler's values in 6.14.
SCHEDULERS = (
    "ddim",
    "ddpm",
    "deis",
    "deis_k",
    "lms",
    "lms_k",
    "pndm",
    "heun",
    "heun_k",
    "euler",
    "euler_k",
    "euler_a",
    "kdpm_2",
    "kdpm_2_k",
    "kdpm_2_a",
    "kdpm_2_a_k",
    "dpmpp_2s",
    "dpmpp_2s_k",
    "dpmpp_2m",
    "dpmpp_2m_k",
    "dpmpp_2m_sde",
    "dpmpp_2m_sde_k",
    "dpmpp_3m",
    "dpmpp_3m_k",
    "dpmpp_sde",
    "dpmpp_sde_k",
    "er_sde",
    "unipc",
    "unipc_k",
    "lcm",
    "tcd",
)

MIN_SIZE, MAX_SIZE = 64, 4096
MAX_STEPS = 200
CFG_RANGE = (1.0, 30.0)
GUIDANCE_RANGE = (1.0, 30.0)
# The UI's inpaint defaults: how far the mask's edge is blended, in pixels.
MASK_EDGE_RADIUS = 16
MASK_FADE_PX = 16


class Mode(StrEnum):
    TXT2IMG = "txt2img"
    IMG2IMG = "img2img"
    INPAINT = "inpaint"
    # Extend the init image on its sides: the new area is infilled, then regenerated; the original kept.
    OUTPAINT = "outpaint"
    # An upscaler model (InvokeAI's spandrel node) over the init image; no prompt, no main model.
    UPSCALE = "upscale"


# Infill methods for outpainting -> InvokeAI node type; patchmatch and LaMa only where the server has them.
INFILLS = {
    "tile": "infill_tile",
    "color": "infill_rgba",
    "cv2": "infill_cv2",
    "patchmatch": "infill_patchmatch",
    "lama": "infill_lama",
}
MAX_OUTPAINT = 1024
INFILL_FIELDS: dict[str, dict[str, Any]] = {"infill_tile": {"tile_size": 32}}


# controlnet.control_mode and .resize_mode in 6.14.
CONTROL_MODES = ("balanced", "more_prompt", "more_control", "unbalanced")
RESIZE_MODES = ("just_resize", "crop_resize", "fill_resize", "just_resize_simple")
# InvokeAI's preprocessor node types (EXTRAS.md 3b); each takes `image` and gives `image`.
PREPROCESSORS = (
    "canny_edge_detection",
    "content_shuffle",
    "color_map",
    "mediapipe_face_detection",
    "depth_anything_depth_estimation",
    "hed_edge_detection",
    "lineart_edge_detection",
    "lineart_anime_edge_detection",
    "dw_openpose_detection",
    "mlsd_detection",
    "normal_map",
    "pidi_edge_detection",
)
# What the UI sets on a preprocessor beyond its defaults.
PREPROCESSOR_FIELDS: dict[str, dict[str, Any]] = {
    "canny_edge_detection": {"low_threshold": 100, "high_threshold": 200},
    "depth_anything_depth_estimation": {"model_size": "small_v2"},
}
# The bases whose graphs have a clip_skip node and a UNet that the seamless node can patch.
CLIP_SKIP_BASES = SD_BASES
SEAMLESS_BASES = (*SD_BASES, "sdxl")
CONTROLNET_BASES = (*SD_BASES, "sdxl")
LORA_WEIGHT_RANGE = (-10.0, 10.0)


@dataclass(frozen=True)
class FluxModels:
    """The three companion models a FLUX main model needs (all from the model cache)."""

    t5_encoder: ModelIdentifier
    clip_embed: ModelIdentifier
    vae: ModelIdentifier


@dataclass(frozen=True)
class Refiner:
    """An SDXL refiner pass over the end of the denoising; `start` is the fraction where it takes over."""

    model: ModelIdentifier
    start: float = 0.8
    steps: int = 20
    cfg_scale: float = 7.5
    scheduler: str = "euler"
    aesthetic_score: float = 6.0
    negative_aesthetic_score: float = 2.5


@dataclass(frozen=True)
class Lora:
    model: ModelIdentifier
    weight: float = 0.75


@dataclass(frozen=True)
class ControlNet:
    """One ControlNet: its model and control image (an InvokeAI image name), optionally preprocessed first."""

    model: ModelIdentifier
    image: str
    preprocessor: str = ""
    weight: float = 1.0
    begin: float = 0.0
    end: float = 1.0
    control_mode: str = "balanced"
    resize_mode: str = "just_resize"


@dataclass(frozen=True)
class Outpaint:
    """How far the init image is extended on each side (px), how the new area is filled before it is
    regenerated, and the original (an InvokeAI image name) pasted back over the result unchanged."""

    left: int = 0
    right: int = 0
    top: int = 0
    bottom: int = 0
    infill: str = "tile"
    original_image: str = ""

    @property
    def total(self) -> int:
        return self.left + self.right + self.top + self.bottom


# How far img2img and inpaint move from the init image when the user has not said.
DEFAULT_STRENGTH = 0.75


@dataclass(frozen=True)
class GenerationParameters:
    model: ModelIdentifier
    prompt: str
    width: int
    height: int
    steps: int
    negative_prompt: str = ""
    cfg_scale: float = 7.5
    scheduler: str = "dpmpp_2m_k"
    # FLUX only: distilled guidance replaces cfg_scale.
    guidance: float = 4.0
    # None: a random start, as InvokeAI's UI does; the batch's seeds follow it consecutively.
    seed: int | None = None
    batch_size: int = 1
    mode: Mode = Mode.TXT2IMG
    # InvokeAI image names, from `InvokeAIClient.upload_image`.
    init_image: str | None = None
    # In InvokeAI's polarity: black regenerates, white keeps (see `masks.to_invokeai_mask`).
    mask_image: str | None = None
    # img2img/inpaint: 0 keeps the init image, 1 replaces it entirely.
    strength: float = DEFAULT_STRENGTH
    # None: the main model's own VAE (FLUX always takes `flux.vae`).
    vae: ModelIdentifier | None = None
    # None: fp32 for SDXL's stock VAE (it overflows in fp16) unless the VAE is an fp16 fix, else fp16.
    vae_fp32: bool | None = None
    clip_skip: int = 0
    flux: FluxModels | None = None
    refiner: Refiner | None = None
    loras: tuple[Lora, ...] = ()
    controlnets: tuple[ControlNet, ...] = ()
    seamless_x: bool = False
    seamless_y: bool = False
    outpaint: Outpaint | None = None
    board_id: str | None = None

    @property
    def seamless(self) -> bool:
        return self.seamless_x or self.seamless_y


def seeds_from(start: int, count: int) -> list[int]:
    """Consecutive seeds from `start`, wrapping within the range InvokeAI accepts, as the UI makes them."""
    return [(start + offset) % (SEED_MAX + 1) for offset in range(count)]


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(message, code="invalid_parameter", details={"field": field})


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _check_range(field: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise _invalid(field, f"{field} must be between {_number(low)} and {_number(high)} (got {_number(value)}).")


def validate(params: GenerationParameters) -> None:
    """Refuse parameters InvokeAI would refuse or fail on, with a message that says which and why."""
    model = params.model
    if model.type != "main":
        raise ModelError(f"'{model.name}' is a {model.type} model, not one that generates images.")
    if model.base not in SUPPORTED_BASES:
        raise ModelError(
            f"'{model.name}' is a {model.base} model; Photo Studio generates with SD 1.x, SD 2.x, SDXL and "
            "FLUX models.",
            code="unsupported_base",
            details={"base": model.base},
        )
    is_flux = model.base == "flux"
    if is_flux and params.flux is None:
        raise ModelError(
            "FLUX needs a T5 encoder, a CLIP-embed model and a FLUX VAE installed in InvokeAI.",
            code="flux_companions_missing",
        )
    if params.vae is not None and not is_flux and (params.vae.type != "vae" or params.vae.base != model.base):
        raise ModelError(
            f"VAE '{params.vae.name}' ({params.vae.base}) does not fit '{model.name}' ({model.base}).",
            code="vae_mismatch",
        )
    if params.refiner is not None:
        if model.base != "sdxl":
            raise _invalid("refiner", "A refiner only follows an SDXL model.")
        if params.refiner.model.base != "sdxl-refiner":
            raise ModelError(f"'{params.refiner.model.name}' is not an SDXL refiner.", code="not_a_refiner")
        _check_range("refiner.start", params.refiner.start, 0.01, 0.99)
        _check_range("refiner.steps", params.refiner.steps, 1, MAX_STEPS)
        _check_range("refiner.cfg_scale", params.refiner.cfg_scale, *CFG_RANGE)
    _validate_extras(params)
    if not params.prompt.strip():
        raise _invalid("prompt", "Write a prompt: it is what the image will show.")
    multiple = 16 if is_flux else 8
    for field in ("width", "height"):
        value = getattr(params, field)
        _check_range(field, value, MIN_SIZE, MAX_SIZE)
        if value % multiple:
            raise _invalid(
                field,
                f"{field} must be a multiple of {multiple} for {model.base} models (got {value}; "
                f"{value // multiple * multiple} or {(value // multiple + 1) * multiple} would do).",
            )
    _check_range("steps", params.steps, 1, MAX_STEPS)
    if is_flux:
        _check_range("guidance", params.guidance, *GUIDANCE_RANGE)
    else:
        _check_range("cfg_scale", params.cfg_scale, *CFG_RANGE)
        if params.scheduler not in SCHEDULERS:
            raise _invalid("scheduler", f"Unknown scheduler '{params.scheduler}'.")
    if params.seed is not None:
        _check_range("seed", params.seed, 0, SEED_MAX)
    _check_range("batch_size", params.batch_size, 1, settings.MAX_BATCH_SIZE)
    needs_init = params.mode in (Mode.IMG2IMG, Mode.INPAINT, Mode.OUTPAINT)
    if needs_init != bool(params.init_image):
        raise _invalid("init_image", f"{params.mode} {'needs' if needs_init else 'takes no'} init image.")
    if (params.mode in MASKED_MODES) != bool(params.mask_image):
        raise _invalid("mask_image", "A mask goes with inpainting, and inpainting needs one.")
    if (params.mode == Mode.OUTPAINT) != (params.outpaint is not None):
        raise _invalid("outpaint", "Outpainting needs the sides to extend, and only outpainting takes them.")
    if params.outpaint is not None:
        _validate_outpaint(params.outpaint)
    if needs_init and not 0 < params.strength <= 1:
        raise _invalid("strength", f"strength must be above 0 and at most 1 (got {_number(params.strength)}).")


MASKED_MODES = (Mode.INPAINT, Mode.OUTPAINT)


def _validate_outpaint(outpaint: Outpaint) -> None:
    for side in ("left", "right", "top", "bottom"):
        _check_range(f"outpaint.{side}", getattr(outpaint, side), 0, MAX_OUTPAINT)
    if not outpaint.total:
        raise _invalid("outpaint", "Extend the image on at least one side.")
    if outpaint.infill not in INFILLS:
        raise _invalid("outpaint.infill", f"infill must be one of {', '.join(INFILLS)}.")


def _validate_extras(params: GenerationParameters) -> None:
    """LoRAs, ControlNets, clip skip, seamless tiling and FLUX's missing negative prompt."""
    base = params.model.base
    for index, lora in enumerate(params.loras):
        field = f"loras[{index}]"
        if lora.model.type != "lora":
            raise _invalid(field, f"'{lora.model.name}' is a {lora.model.type} model, not a LoRA.")
        if lora.model.base != base:
            raise _invalid(
                field, f"LoRA '{lora.model.name}' is for {lora.model.base} models; '{params.model.name}' is {base}."
            )
        _check_range(f"{field}.weight", lora.weight, *LORA_WEIGHT_RANGE)
    if params.controlnets and base not in CONTROLNET_BASES:
        raise _invalid("controlnets", f"ControlNets work with SD 1.x, SD 2.x and SDXL models here, not {base}.")
    for index, control in enumerate(params.controlnets):
        field = f"controlnets[{index}]"
        if control.model.type != "controlnet" or control.model.base != base:
            raise _invalid(
                field, f"'{control.model.name}' is not a ControlNet for {base} models ({control.model.base})."
            )
        if not control.image:
            raise _invalid(f"{field}.photo_id", "A ControlNet needs a control image.")
        if control.preprocessor and control.preprocessor not in PREPROCESSORS:
            raise _invalid(f"{field}.preprocessor", f"Unknown preprocessor '{control.preprocessor}'.")
        _check_range(f"{field}.weight", control.weight, -1, 2)
        _check_range(f"{field}.begin", control.begin, 0, 1)
        _check_range(f"{field}.end", control.end, control.begin, 1)
        if control.control_mode not in CONTROL_MODES:
            raise _invalid(f"{field}.control_mode", f"control_mode must be one of {', '.join(CONTROL_MODES)}.")
        if control.resize_mode not in RESIZE_MODES:
            raise _invalid(f"{field}.resize_mode", f"resize_mode must be one of {', '.join(RESIZE_MODES)}.")
    if params.clip_skip and base not in CLIP_SKIP_BASES:
        raise _invalid("clip_skip", f"Clip skip is for SD 1.x and SD 2.x models, not {base}.")
    _check_range("clip_skip", params.clip_skip, 0, 12)
    if params.seamless and base not in SEAMLESS_BASES:
        raise _invalid("seamless", f"Seamless tiling works with SD 1.x, SD 2.x and SDXL models, not {base}.")
    if base == "flux" and params.negative_prompt.strip():
        raise _invalid("negative_prompt", "FLUX models take no negative prompt; describe what you want instead.")


class _Graph:
    """Nodes and edges in InvokeAI's shape; every node is an intermediate, cached helper until `output`."""

    def __init__(self, graph_id: str) -> None:
        self.id = graph_id
        self.nodes: dict[str, dict[str, Any]] = {}
        self.edges: list[dict[str, dict[str, str]]] = []

    def add(self, node_id: str, node_type: str, **fields: Any) -> None:
        self.nodes[node_id] = {"id": node_id, "type": node_type, "is_intermediate": True, "use_cache": True}
        self.nodes[node_id].update(fields)

    def output(self, node_id: str, node_type: str, board_id: str | None, **fields: Any) -> None:
        self.add(node_id, node_type, **fields)
        # A new image every time, even for inputs seen before, and kept in InvokeAI's gallery.
        self.nodes[node_id].update(is_intermediate=False, use_cache=False)
        if board_id:
            # Omitted, not "none", for no board: "none" is not a board id (FACTS #11).
            self.nodes[node_id]["board"] = {"board_id": board_id}

    def connect(self, source: str, source_field: str, destination: str, destination_field: str) -> None:
        self.edges.append(
            {
                "source": {"node_id": source, "field": source_field},
                "destination": {"node_id": destination, "field": destination_field},
            }
        )

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "nodes": self.nodes, "edges": self.edges}


def _denoising_start(params: GenerationParameters) -> float:
    if params.mode == Mode.TXT2IMG:
        return 0.0
    # The UI's "optimized denoising" for FLUX: its schedule puts most of the change early.
    removed = params.strength**0.2 if params.model.base == "flux" else params.strength
    return round(1 - removed, 4)


def _vae_fp32(params: GenerationParameters) -> bool:
    if params.vae_fp32 is not None:
        return params.vae_fp32
    return params.model.base == "sdxl" and not (params.vae and "fp16" in params.vae.name.lower())


def _metadata(params: GenerationParameters, generation_mode: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {"generation_mode": generation_mode, "model": params.model.as_field()}
    if params.model.base == "flux":
        metadata.update(steps=params.steps, guidance=params.guidance)
    else:
        metadata.update(
            steps=params.steps,
            cfg_scale=params.cfg_scale,
            cfg_rescale_multiplier=0.0,
            scheduler=params.scheduler,
        )
        if params.model.base in SD_BASES:
            metadata["clip_skip"] = params.clip_skip
        metadata["rand_device"] = "cpu"
    metadata.update(width=params.width, height=params.height)
    if params.mode != Mode.TXT2IMG:
        metadata["strength"] = params.strength
    if params.mode == Mode.IMG2IMG:
        metadata["init_image"] = params.init_image
    vae = params.flux.vae if params.flux else params.vae
    if vae:
        metadata["vae"] = vae.as_field()
    if params.flux:
        metadata.update(
            t5_encoder=params.flux.t5_encoder.as_field(), clip_embed_model=params.flux.clip_embed.as_field()
        )
    if params.loras:
        metadata["loras"] = _lora_metadata(params)
    if params.controlnets:
        metadata["controlnets"] = [
            {
                "image": {"image_name": control.image},
                "control_model": control.model.as_field(),
                "control_weight": control.weight,
                "begin_step_percent": control.begin,
                "end_step_percent": control.end,
                "control_mode": control.control_mode,
                "resize_mode": control.resize_mode,
            }
            for control in params.controlnets
        ]
    if params.seamless:
        metadata.update(seamless_x=params.seamless_x, seamless_y=params.seamless_y)
    if params.refiner:
        refiner = params.refiner
        metadata.update(
            refiner_model=refiner.model.as_field(),
            refiner_cfg_scale=refiner.cfg_scale,
            refiner_steps=refiner.steps,
            refiner_scheduler=refiner.scheduler,
            refiner_positive_aesthetic_score=refiner.aesthetic_score,
            refiner_negative_aesthetic_score=refiner.negative_aesthetic_score,
            refiner_start=refiner.start,
        )
    return metadata


def _lora_metadata(params: GenerationParameters) -> list[dict[str, Any]]:
    return [{"model": lora.model.as_field(), "weight": lora.weight} for lora in params.loras]


def _add_loras(graph: _Graph, params: GenerationParameters, sources: dict[str, str]) -> dict[str, str]:
    """The UI's addLoRAs: one selector per LoRA, collected into the base's collection loader, which then
    stands in for the model loader's outputs named in `sources` (field -> node). Returns the new sources."""
    loader_type = {"sdxl": "sdxl_lora_collection_loader", "flux": "flux_lora_collection_loader"}.get(
        params.model.base, "lora_collection_loader"
    )
    graph.add("lora_collect", "collect")
    for index, lora in enumerate(params.loras, start=1):
        node = f"lora_selector_{index}"
        graph.add(node, "lora_selector", lora=lora.model.as_field(), weight=lora.weight)
        graph.connect(node, "lora", "lora_collect", "item")
    graph.add("lora_collection_loader", loader_type)
    graph.connect("lora_collect", "collection", "lora_collection_loader", "loras")
    for field, source in sources.items():
        graph.connect(source, field, "lora_collection_loader", field)
    return dict.fromkeys(sources, "lora_collection_loader")


def _add_seamless(graph: _Graph, params: GenerationParameters, vae_source: str) -> None:
    """The UI's addSeamless: the UNet and VAE pass through a node that makes the image tile."""
    graph.add("seamless", "seamless", seamless_x=params.seamless_x, seamless_y=params.seamless_y)
    graph.connect("model_loader", "unet", "seamless", "unet")
    graph.connect(vae_source, "vae", "seamless", "vae")


def _add_sd_text_and_noise(graph: _Graph, params: GenerationParameters) -> None:
    """Model loader, LoRAs, prompt conditioning and noise for SD 1/2 and SDXL, feeding the `denoise` node."""
    sdxl = params.model.base == "sdxl"
    graph.add("seed", "integer", value=0)
    graph.add("positive_prompt", "string", value="")
    graph.add("negative_prompt", "string", value="")
    graph.add("model_loader", "sdxl_model_loader" if sdxl else "main_model_loader", model=params.model.as_field())
    sources = {"unet": "seamless" if params.seamless else "model_loader", "clip": "model_loader"}
    if sdxl:
        sources["clip2"] = "model_loader"
    else:
        graph.add("clip_skip", "clip_skip", skipped_layers=params.clip_skip)
        graph.connect("model_loader", "clip", "clip_skip", "clip")
        sources["clip"] = "clip_skip"
    if params.loras:
        sources = _add_loras(graph, params, sources)
    for polarity in ("pos", "neg"):
        prompt = "positive_prompt" if polarity == "pos" else "negative_prompt"
        cond, collect = f"{polarity}_cond", f"{polarity}_cond_collect"
        graph.add(cond, "sdxl_compel_prompt" if sdxl else "compel")
        graph.add(collect, "collect")
        graph.connect(sources["clip"], "clip", cond, "clip")
        graph.connect(prompt, "value", cond, "prompt")
        if sdxl:
            graph.connect(sources["clip2"], "clip2", cond, "clip2")
            graph.connect(prompt, "value", cond, "style")
        graph.connect(cond, "conditioning", collect, "item")
        graph.connect(
            collect,
            "collection",
            "denoise",
            f"{'positive' if polarity == 'pos' else 'negative'}_conditioning",
        )
    graph.add("noise", "noise", width=params.width, height=params.height, use_cpu=True)
    graph.add(
        "denoise",
        "denoise_latents",
        cfg_scale=params.cfg_scale,
        cfg_rescale_multiplier=0.0,
        scheduler=params.scheduler,
        steps=params.steps,
        denoising_start=_denoising_start(params),
        denoising_end=params.refiner.start if params.refiner else 1.0,
    )
    graph.connect(sources["unet"], "unet", "denoise", "unet")
    graph.connect("seed", "value", "noise", "seed")
    graph.connect("noise", "noise", "denoise", "noise")


def _add_refiner(graph: _Graph, refiner: Refiner, params: GenerationParameters) -> None:
    """A second denoise over the base's latents with the refiner model (the UI's addSDXLRefiner)."""
    graph.add("refiner_model_loader", "sdxl_refiner_model_loader", model=refiner.model.as_field())
    for polarity, score in (("pos", refiner.aesthetic_score), ("neg", refiner.negative_aesthetic_score)):
        node = f"refiner_{polarity}_cond"
        graph.add(
            node,
            "sdxl_refiner_compel_prompt",
            original_width=params.width,
            original_height=params.height,
            aesthetic_score=score,
        )
        graph.connect("refiner_model_loader", "clip2", node, "clip2")
        graph.connect("positive_prompt" if polarity == "pos" else "negative_prompt", "value", node, "style")
        graph.connect(
            node,
            "conditioning",
            "refiner_denoise",
            f"{'positive' if polarity == 'pos' else 'negative'}_conditioning",
        )
    graph.add(
        "refiner_denoise",
        "denoise_latents",
        cfg_scale=refiner.cfg_scale,
        cfg_rescale_multiplier=0.0,
        scheduler=refiner.scheduler,
        steps=refiner.steps,
        denoising_start=refiner.start,
        denoising_end=1.0,
    )
    graph.connect("refiner_model_loader", "unet", "refiner_denoise", "unet")
    # No noise: the refiner continues the base's partly denoised latents rather than starting again.
    graph.connect("denoise", "latents", "refiner_denoise", "latents")


def _add_controlnets(graph: _Graph, params: GenerationParameters) -> None:
    """The UI's addControlNets: each controlnet's control, collected into the denoise's `control`; a chosen
    preprocessor runs on the control image first, in the same graph."""
    graph.add("control_collect", "collect")
    for index, control in enumerate(params.controlnets, start=1):
        node = f"controlnet_{index}"
        image = {"image_name": control.image}
        fields: dict[str, Any] = {} if control.preprocessor else {"image": image}
        graph.add(
            node,
            "controlnet",
            control_model=control.model.as_field(),
            control_weight=control.weight,
            begin_step_percent=control.begin,
            end_step_percent=control.end,
            control_mode=control.control_mode,
            resize_mode=control.resize_mode,
            **fields,
        )
        if control.preprocessor:
            processor = preprocessor_node(index)
            graph.add(processor, control.preprocessor, image=image, **PREPROCESSOR_FIELDS.get(control.preprocessor, {}))
            graph.connect(processor, "image", node, "image")
        graph.connect(node, "control", "control_collect", "item")
    graph.connect("control_collect", "collection", "denoise", "control")


def preprocessor_node(index: int) -> str:
    """The id of the node that preprocesses the control image of controlnet `index` (from 1): its output is
    the processed image the studio keeps."""
    return f"preprocessor_{index}"


def _add_flux_text(graph: _Graph, params: GenerationParameters) -> None:
    assert params.flux is not None  # validate() guarantees it
    graph.add("positive_prompt", "string", value="")
    graph.add("seed", "integer", value=0)
    graph.add(
        "model_loader",
        "flux_model_loader",
        model=params.model.as_field(),
        t5_encoder_model=params.flux.t5_encoder.as_field(),
        clip_embed_model=params.flux.clip_embed.as_field(),
        vae_model=params.flux.vae.as_field(),
    )
    sources = {"transformer": "model_loader", "clip": "model_loader", "t5_encoder": "model_loader"}
    if params.loras:
        sources = _add_loras(graph, params, sources)
    graph.add("pos_cond", "flux_text_encoder")
    graph.add("pos_cond_collect", "collect")
    graph.add(
        "denoise",
        "flux_denoise",
        guidance=params.guidance,
        num_steps=params.steps,
        width=params.width,
        height=params.height,
        denoising_start=_denoising_start(params),
        denoising_end=1.0,
    )
    graph.connect(sources["clip"], "clip", "pos_cond", "clip")
    graph.connect(sources["t5_encoder"], "t5_encoder", "pos_cond", "t5_encoder")
    graph.connect("model_loader", "max_seq_len", "pos_cond", "t5_max_seq_len")
    graph.connect(sources["transformer"], "transformer", "denoise", "transformer")
    graph.connect("positive_prompt", "value", "pos_cond", "prompt")
    graph.connect("pos_cond", "conditioning", "pos_cond_collect", "item")
    graph.connect("pos_cond_collect", "collection", "denoise", "positive_text_conditioning")
    graph.connect("seed", "value", "denoise", "seed")


def build_batch(params: GenerationParameters) -> dict[str, Any]:
    """The `enqueue_batch` body for these parameters (validated first)."""
    validate(params)
    base, mode = params.model.base, params.mode
    flux = base == "flux"
    prefix = {"flux": "flux_", "sdxl": "sdxl_"}.get(base, "")
    graph = _Graph(f"{'sd1' if base in SD_BASES else base}_{mode}")
    fp32 = _vae_fp32(params)

    vae_source = "model_loader"
    if flux:
        _add_flux_text(graph, params)
    else:
        _add_sd_text_and_noise(graph, params)
        if params.vae:
            graph.add("vae_loader", "vae_loader", vae_model=params.vae.as_field())
            vae_source = "vae_loader"
        if params.seamless:
            _add_seamless(graph, params, vae_source)
            vae_source = "seamless"
    if params.controlnets:
        _add_controlnets(graph, params)
    if params.refiner:
        _add_refiner(graph, params.refiner, params)
    latents_source = "refiner_denoise" if params.refiner else "denoise"

    # The decoder is the output, except for inpaint, where a blend with the init image is.
    decoder = OUTPUT_NODE if mode not in MASKED_MODES else ("vae_decode" if flux else "l2i")
    decoder_type = "flux_vae_decode" if flux else "l2i"
    decoder_fields = {} if flux else {"fp32": fp32}
    if decoder == OUTPUT_NODE:
        graph.output(decoder, decoder_type, params.board_id, **decoder_fields)
    else:
        graph.add(decoder, decoder_type, **decoder_fields)
    graph.connect(latents_source, "latents", decoder, "latents")
    graph.connect(vae_source, "vae", decoder, "vae")

    graph.add("core_metadata", "core_metadata", **_metadata(params, f"{prefix}{mode}"))
    graph.connect("seed", "value", "core_metadata", "seed")
    graph.connect("positive_prompt", "value", "core_metadata", "positive_prompt")
    if not flux:
        graph.connect("negative_prompt", "value", "core_metadata", "negative_prompt")

    outpaint = params.outpaint
    if mode != Mode.TXT2IMG:
        encoder = "vae_encode" if flux else "i2l"
        image = {"image_name": params.init_image}
        # Outpainting encodes (and masks) the init image once its transparent new area is infilled.
        source_image: dict[str, Any] = {} if outpaint else {"image": image}
        if outpaint:
            infill_type = INFILLS[outpaint.infill]
            graph.add("infill", infill_type, image=image, **INFILL_FIELDS.get(infill_type, {}))
            graph.connect("infill", "image", encoder, "image")
        if flux:
            graph.add(encoder, "flux_vae_encode", **source_image)
        else:
            graph.add(encoder, "i2l", fp32=fp32, **source_image)
        graph.connect(vae_source, "vae", encoder, "vae")
        graph.connect(encoder, "latents", "denoise", "latents")

    if mode in MASKED_MODES:
        graph.add(
            "gradient_mask",
            "create_gradient_mask",
            mask={"image_name": params.mask_image},
            coherence_mode="Gaussian Blur",
            minimum_denoise=0.0,
            edge_radius=MASK_EDGE_RADIUS,
            fp32=fp32,
            **source_image,
        )
        if outpaint:
            graph.connect("infill", "image", "gradient_mask", "image")
        if not flux:
            # Lets inpainting-variant SD models see the masked latents; FLUX has no unet to give them to.
            graph.connect(vae_source, "vae", "gradient_mask", "vae")
            graph.connect("model_loader", "unet", "gradient_mask", "unet")
        graph.connect("gradient_mask", "denoise_mask", "denoise", "denoise_mask")
    if outpaint:
        # The original's pixels are pasted back exactly: the mask's blurred edge would otherwise touch them.
        graph.output(
            OUTPUT_NODE,
            "img_paste",
            params.board_id,
            image={"image_name": outpaint.original_image},
            x=outpaint.left,
            y=outpaint.top,
        )
        graph.connect(decoder, "image", OUTPUT_NODE, "base_image")
    elif mode == Mode.INPAINT:
        graph.add("expand_mask", "expand_mask_with_fade", fade_size_px=MASK_FADE_PX)
        graph.connect("gradient_mask", "expanded_mask_area", "expand_mask", "mask")
        graph.output(OUTPUT_NODE, "invokeai_img_blend", params.board_id, layer_base=image)
        graph.connect(decoder, "image", OUTPUT_NODE, "layer_upper")
        graph.connect("expand_mask", "image", OUTPUT_NODE, "mask")
    graph.connect("core_metadata", "metadata", OUTPUT_NODE, "metadata")

    start = secrets.randbelow(SEED_MAX + 1) if params.seed is None else params.seed
    seeds = seeds_from(start, params.batch_size)
    data = [
        {"node_path": SEED_NODE, "field_name": "value", "items": seeds},
        {"node_path": "positive_prompt", "field_name": "value", "items": [params.prompt] * len(seeds)},
    ]
    if not flux:
        data.append(
            {
                "node_path": "negative_prompt",
                "field_name": "value",
                "items": [params.negative_prompt] * len(seeds),
            }
        )
    return {
        "prepend": False,
        "batch": {
            "graph": graph.as_dict(),
            "runs": 1,
            "data": [data],
            "origin": ORIGIN,
            "destination": DESTINATION,
        },
    }


def build_upscale_batch(*, image: str, upscaler: ModelIdentifier, board_id: str | None = None) -> dict[str, Any]:
    """One image through an upscaler model (InvokeAI's spandrel node): no prompt, no seed, one item."""
    if upscaler.type != "spandrel_image_to_image":
        raise _invalid("upscaler_key", f"'{upscaler.name}' is a {upscaler.type} model, not an upscaler.")
    if not image:
        raise _invalid("init_image", "An upscale needs an image.")
    graph = _Graph("upscale")
    graph.output(
        OUTPUT_NODE,
        "spandrel_image_to_image",
        board_id,
        image={"image_name": image},
        image_to_image_model=upscaler.as_field(),
    )
    return {
        "prepend": False,
        "batch": {"graph": graph.as_dict(), "runs": 1, "origin": ORIGIN, "destination": DESTINATION},
    }
