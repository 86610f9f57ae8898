"""The generation parameters other tools embed in their images, as the gallery stores its own images' recipes.

sd-parsers reads the formats of AUTOMATIC1111 and Forge (PNG `parameters`, JPEG/WebP EXIF UserComment),
ComfyUI (`prompt` and `workflow`), InvokeAI (`invokeai_metadata`), NovelAI (`Description` and `Comment`) and
Fooocus (JSON `parameters`). SwarmUI, which it does not know, writes JSON too (`sui_image_params` in
`parameters`), read here with `json`. What the library leaves out or gets wrong is filled in from the same
raw chunks: InvokeAI 4+'s model (`model.name`, not 3.x's `model_name`), ComfyUI's checkpoint and LoRA loader
nodes, every tool's LoRAs.

A recipe has the fields of a studio image (prompt, negative prompt, seed, model name and hash) and
`generation_params` with the studio's keys where they mean the same (steps, cfg_scale, scheduler, width,
height) plus `source` (the tool), `sampler` (where the tool names it apart from the scheduler) and `loras`
(name and weight). Nothing here may refuse an upload: a chunk that does not parse is no recipe.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import ExifTags, Image
from sd_parsers.data import Generators, PromptInfo
from sd_parsers.exceptions import ParserError
from sd_parsers.parsers import MANAGED_PARSERS, Parser

# Importing imaging registers pillow-heif's opener.
from . import imaging  # noqa: F401

logger = logging.getLogger(__name__)

SOURCES = ("AUTOMATIC1111", "Forge", "ComfyUI", "InvokeAI", "NovelAI", "Fooocus", "SwarmUI")
_GENERATOR_NAMES = {
    Generators.AUTOMATIC1111: "AUTOMATIC1111",
    Generators.COMFYUI: "ComfyUI",
    Generators.INVOKEAI: "InvokeAI",
    Generators.NOVELAI: "NovelAI",
    Generators.FOOOCUS: "Fooocus",
}
# The columns' limits, and a bound on what a recipe keeps of a hostile file's text.
_NAME_LENGTH = 255
_PROMPT_LENGTH = 20_000
_MAX_LORAS = 50
_BIGINT = 2**63
# The prompt syntax of AUTOMATIC1111 and Forge for a LoRA (or LyCORIS): <lora:name:weight>, the weight optional.
_PROMPT_LORA = re.compile(r"<(?:lora|lyco):([^:>]{1,255})(?::([-+]?[0-9]*\.?[0-9]+))?[^>]*>")
# Forge reports its version as f<forge version>v<webui version>.
_FORGE_VERSION = re.compile(r"^f\d")
_COMFY_CHECKPOINT_INPUTS = ("ckpt_name", "unet_name")
_COMFY_LORA_TYPES = ("LoraLoader", "LoraLoaderModelOnly")
_USER_COMMENT_PREFIXES = {b"UNICODE\x00": "utf-16-be", b"ASCII\x00\x00\x00": "ascii", b"\x00" * 8: "utf-8"}

# The parsers keep no state between images (only their options); one set serves every thread. (The library's
# ParserManager is not used: its JPEG extractor caches the last UserComment by id() of the image, which a
# later image can reuse.)
_parsers: list[Parser] = [parser() for parser in MANAGED_PARSERS]  # type: ignore[abstract]


@dataclass(frozen=True)
class Recipe:
    source: str
    prompt: str = ""
    negative_prompt: str = ""
    seed: int | None = None
    model_name: str = ""
    model_hash: str = ""
    params: dict[str, Any] = field(default_factory=dict)


def read(path: Path) -> Recipe | None:
    """The recipe embedded in the image at `path` by any tool the gallery knows, or None."""
    try:
        chunks = _chunks(path)
        return _swarmui(chunks) or _with_library(chunks)
    except Exception:
        # A third-party parser given a garbled chunk raises whatever it raises; the photo is stored anyway.
        logger.warning("Could not read the generation parameters of %s", path.name, exc_info=True)
        return None


def _chunks(path: Path) -> dict[str, Any]:
    """The texts a generator may have written: PNG text chunks before the image data (where every tool
    writes them; those after it would need the whole image decoded), or the EXIF UserComment as `parameters`."""
    with Image.open(path) as image:
        if image.format == "PNG":
            return {str(key): value for key, value in image.info.items() if isinstance(value, str)}
        comment = image.getexif().get_ifd(ExifTags.IFD.Exif).get(ExifTags.Base.UserComment)
    if isinstance(comment, bytes):
        encoding = _USER_COMMENT_PREFIXES.get(comment[:8])
        text = comment[8:].decode(encoding, "replace").strip("\x00") if encoding else ""
    else:
        text = comment.strip("\x00") if isinstance(comment, str) else ""
    return {"parameters": text} if text else {}


def _with_library(chunks: dict[str, Any]) -> Recipe | None:
    if not chunks:
        return None
    for parser in _parsers:
        try:
            info = parser.parse(dict(chunks))
        except (ParserError, KeyError, TypeError, ValueError, AttributeError):
            continue
        if info.samplers:
            return _recipe(info, chunks)
    return None


def _text(value: object, limit: int = _NAME_LENGTH) -> str:
    if isinstance(value, list):  # Fooocus lists its expanded prompts
        value = ", ".join(str(item) for item in value)
    return str(value).strip()[:limit] if value is not None else ""


def _number(value: object) -> float | None:
    try:
        number = float(str(value))
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None  # not NaN, not infinite


def _seed(value: object) -> int | None:
    number = _number(value)
    if number is None or not number.is_integer() or not 0 <= number < _BIGINT:
        return None
    return int(str(value)) if str(value).isdigit() else int(number)


def _size(value: object) -> tuple[int, int] | None:
    """A size as tools write it: "512x768" (AUTOMATIC1111) or "(1152, 896)" (Fooocus)."""
    numbers = re.findall(r"\d{1,5}", str(value))
    return (int(numbers[0]), int(numbers[1])) if len(numbers) == 2 else None


def _json(value: object) -> Any:
    try:
        return json.loads(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _recipe(info: PromptInfo, chunks: dict[str, Any]) -> Recipe:
    sampler = info.samplers[0]
    values = sampler.parameters
    source = _GENERATOR_NAMES.get(info.generator, str(info.generator.value))
    metadata = info.metadata
    if source == "AUTOMATIC1111" and _FORGE_VERSION.match(_text(metadata.get("Version"))):
        source = "Forge"
    prompt = _text(info.full_prompt if isinstance(info.full_prompt, str) else info.prompts[:1], _PROMPT_LENGTH)
    negative = info.full_negative_prompt
    negative_text = _text(negative if isinstance(negative, str) else info.negative_prompts[:1], _PROMPT_LENGTH)
    model = sampler.model
    model_name = _text(model.name) if model and isinstance(model.name, str) else ""
    model_hash = _text(model.hash) if model and isinstance(model.hash, str) else ""

    params: dict[str, Any] = {"source": source}
    if source in ("AUTOMATIC1111", "Forge", "Fooocus", "ComfyUI", "NovelAI"):
        params["sampler"] = _text(sampler.name)
        if values.get("scheduler"):
            params["scheduler"] = _text(values["scheduler"])
    else:  # InvokeAI's scheduler is the studio's
        params["scheduler"] = _text(sampler.name)
    steps = _number(values.get("steps", metadata.get("steps")))
    if steps is not None:
        params["steps"] = int(steps)
    cfg = _number(values.get("cfg_scale"))
    if cfg is not None:
        params["cfg_scale"] = cfg
    size = _size(metadata.get("Size") or metadata.get("resolution") or "")
    width, height = size or (metadata.get("width"), metadata.get("height"))
    loras: list[dict[str, Any]] = []

    if source in ("AUTOMATIC1111", "Forge"):
        loras = [{"name": name, "weight": _number(weight or 1)} for name, weight in _PROMPT_LORA.findall(prompt)]
    elif source == "InvokeAI":
        raw = _json(chunks.get("invokeai_metadata")) or {}
        if isinstance(raw.get("model"), dict):
            model_name = model_name or _text(raw["model"].get("name"))
            model_hash = model_hash or _text(raw["model"].get("hash"))
        for lora in raw.get("loras") or []:
            if isinstance(lora, dict) and isinstance(lora.get("model"), dict):
                loras.append({"name": _text(lora["model"].get("name")), "weight": _number(lora.get("weight"))})
    elif source == "ComfyUI":
        width, height, model_name, loras = _comfyui(chunks, model_name)
    elif source == "Fooocus":
        for key in sorted(key for key in metadata if str(key).startswith("lora_combined_")):
            name, _, weight = _text(metadata[key]).rpartition(" : ")
            if name:
                loras.append({"name": name, "weight": _number(weight)})
    elif source == "NovelAI":
        width, height = metadata.get("width"), metadata.get("height")

    for key, value in (("width", width), ("height", height)):
        number = _number(value)
        if number is not None and number.is_integer() and 0 < number < 100_000:
            params[key] = int(number)
    if loras:
        params["loras"] = loras[:_MAX_LORAS]
    return Recipe(
        source=source,
        prompt=prompt,
        negative_prompt=negative_text,
        seed=_seed(values.get("seed")),
        model_name=model_name,
        model_hash=model_hash,
        params=params,
    )


def _comfyui(chunks: dict[str, Any], model_name: str) -> tuple[object, object, str, list[dict[str, Any]]]:
    """Size, checkpoint and LoRAs from the nodes of ComfyUI's API graph (`prompt`)."""
    graph = _json(chunks.get("prompt"))
    width = height = None
    loras = []
    nodes = [node for node in graph.values() if isinstance(node, dict)] if isinstance(graph, dict) else []
    for node in nodes:
        inputs = node.get("inputs")
        if not isinstance(inputs, dict):
            continue
        kind = node.get("class_type")
        if kind in _COMFY_LORA_TYPES and isinstance(inputs.get("lora_name"), str):
            loras.append({"name": _text(inputs["lora_name"]), "weight": _number(inputs.get("strength_model"))})
        for key in _COMFY_CHECKPOINT_INPUTS:
            if isinstance(inputs.get(key), str) and not model_name:
                model_name = _text(inputs[key])
        if kind in ("EmptyLatentImage", "EmptySD3LatentImage"):
            width, height = inputs.get("width"), inputs.get("height")
    return width, height, model_name, loras


def _swarmui(chunks: dict[str, Any]) -> Recipe | None:
    document = _json(chunks.get("parameters"))
    if not isinstance(document, dict) or not isinstance(document.get("sui_image_params"), dict):
        return None
    values = document["sui_image_params"]
    params: dict[str, Any] = {"source": "SwarmUI"}
    for key, value in (("sampler", values.get("sampler")), ("scheduler", values.get("scheduler"))):
        if value:
            params[key] = _text(value)
    for key, raw in (("steps", "steps"), ("cfg_scale", "cfgscale"), ("width", "width"), ("height", "height")):
        number = _number(values.get(raw)) if values.get(raw) is not None else None
        if number is not None:
            params[key] = int(number) if key != "cfg_scale" else number
    names, weights = values.get("loras") or [], values.get("loraweights") or []
    if isinstance(names, list) and isinstance(weights, list):
        weights = weights + [None] * (len(names) - len(weights))
        params["loras"] = [
            {"name": _text(name), "weight": _number(weight if weight is not None else 1)}
            for name, weight in zip(names, weights, strict=False)
        ][:_MAX_LORAS] or None
    if not params.get("loras"):
        params.pop("loras", None)
    model_hash = ""
    for model in document.get("sui_models") or []:
        if isinstance(model, dict) and model.get("param") == "model":
            model_hash = _text(model.get("hash"))
    return Recipe(
        source="SwarmUI",
        prompt=_text(values.get("prompt"), _PROMPT_LENGTH),
        negative_prompt=_text(values.get("negativeprompt"), _PROMPT_LENGTH),
        seed=_seed(values.get("seed")),
        model_name=_text(values.get("model")),
        model_hash=model_hash,
        params=params,
    )
