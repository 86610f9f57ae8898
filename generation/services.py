"""The studio's writes: sessions, steps (one InvokeAI batch each), selection, cancellation, preferences.

`step_create` validates against the model cache without touching the network, records the step (PENDING, with
the batch id it is about to use), then uploads the inputs and enqueues the batch on the InvokeAI of the moment;
it marks the step RUNNING and, once that has committed, hands it to a follower (`generation.follower`). If
InvokeAI refuses or does not answer, the step is FAILED with InvokeAI's reason and the error is raised. A cancel
arriving while the step is being sent ends it CANCELLED instead, with its batch cancelled on InvokeAI if it got
there; `step_create` then returns the cancelled (or cancelling) step like any other.

Every function takes the acting user as `owner`: sessions, steps and the photos they start from are that
account's, and the images a step makes belong to its session's owner.
"""

from __future__ import annotations

import logging
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Max, Q, Sum
from django.utils import timezone

from backends import manager, routing
from backends.invokeai import graphs
from backends.invokeai.client import InvokeAIClient, ModelIdentifier
from backends.invokeai.errors import InvokeAIError, ModelError
from backends.signals import user_activity
from gallery_project.errors import AppError, Conflict, InvalidInput, NotFound
from gallery_project.permissions import Owner, require_staff
from photos import selectors as photo_selectors
from photos import services as photo_services
from photos.models import Photo

from . import follower, inputs, lifecycle, models_cache, presets, selectors
from .models import CachedModel, GenerationSession, GenerationStep, Preset, StepAlternative, StudioPreference
from .selectors import session_get, step_get

logger = logging.getLogger(__name__)

StepStatus = GenerationStep.Status
MODES = tuple(graphs.Mode)
_TITLE_LENGTH = 80
# Placeholder names while validating: the real ones exist only once the inputs are uploaded.
_NOT_YET_UPLOADED = "not-yet-uploaded.png"


# --- sessions ---


def session_create(
    *, owner: User, source_photo_id: uuid.UUID | str | None = None, title: str = ""
) -> GenerationSession:
    """Start a session from scratch, or from a gallery photo (whose first step will usually be img2img)."""
    source = None
    if source_photo_id:
        source = photo_selectors.photo_get(photo_id=source_photo_id, owner=owner)
    now = timezone.now()
    return GenerationSession.objects.create(
        owner=owner,
        entry_type=GenerationSession.EntryType.PHOTO if source else GenerationSession.EntryType.SCRATCH,
        source_image=source,
        title=title.strip()[:200],
        created_at=now,
        updated_at=now,
    )


def session_update(
    *, session_id: int, owner: Owner, status: str | None = None, title: str | None = None
) -> GenerationSession:
    """Rename a session, or complete or abandon it (once no step of it is still generating)."""
    session = session_get(session_id=session_id, owner=owner)
    if title is not None:
        GenerationSession.objects.filter(pk=session.pk).update(title=title.strip()[:200], updated_at=timezone.now())
    if status is not None and status != session.status:
        if session.steps.filter(status__in=lifecycle.STEP_IN_FLIGHT).exists():
            raise Conflict(
                "A step of this session is still generating: wait for it or cancel it first.",
                code="step_in_flight",
            )
        lifecycle.session_move(session_id=session.pk, to=status)
    return session_get(session_id=session_id, owner=owner)


# --- steps ---


@dataclass(frozen=True)
class StepRequest:
    """What a person asks of a step, as the API's flat body carries it; None means the model's default."""

    prompt: str
    model_key: str
    negative_prompt: str = ""
    model_hash: str = ""
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    cfg_scale: float | None = None
    guidance: float | None = None
    scheduler: str | None = None
    seed: int | None = None
    batch_size: int = 1
    mode: str = graphs.Mode.TXT2IMG
    parent_id: int | None = None
    init_photo_id: uuid.UUID | str | None = None
    mask_photo_id: uuid.UUID | str | None = None
    strength: float = graphs.DEFAULT_STRENGTH
    # None: the model's default VAE; "": the main model's own.
    vae_key: str | None = None
    clip_skip: int | None = None
    # The preset the form came from: it fills what the request leaves unsaid, and the step records it.
    preset_id: int | None = None
    # [{key, weight}]; None: the preset's (if any). A weight left out is the LoRA's default from InvokeAI.
    loras: tuple[dict[str, Any], ...] | None = None
    # {key, start, steps, cfg_scale, scheduler, aesthetic_score, negative_aesthetic_score}; None: the preset's.
    refiner: dict[str, Any] | None = None
    # {x, y}: tile across, down, or both.
    seamless: dict[str, bool] | None = None
    # [{key, photo_id, preprocessor, weight, begin, end, control_mode, resize_mode}]; None: the preset's (each
    # still needs its control image). An entry without a key takes the preset's ControlNet at its place.
    controlnets: tuple[dict[str, Any], ...] | None = None
    # mode "outpaint": {left, right, top, bottom} in px, and `infill` (tile, color, cv2, patchmatch, lama).
    outpaint: dict[str, Any] | None = None
    # mode "upscale": the spandrel upscaler model that takes the place of the main model.
    upscaler_key: str = ""
    # FLUX's text encoders ("": the cache's choice, favorites first); its VAE is `vae_key`.
    t5_encoder_key: str = ""
    clip_embed_key: str = ""


@dataclass(frozen=True)
class _Plan:
    """A validated step, before anything is sent to InvokeAI."""

    model: CachedModel
    params: graphs.GenerationParameters
    record: dict[str, Any]
    init_photo: Photo | None
    mask_photo: Photo | None
    parent: GenerationStep | None
    preset: Preset | None = None
    control_photos: tuple[Photo, ...] = ()

    @property
    def warnings(self) -> list[str]:
        return list(self.record.get("warnings", []))


def _model_for(request: StepRequest) -> CachedModel:
    model = CachedModel.objects.filter(key=request.model_key).first()
    if model is None and request.model_hash:
        # A reinstalled model keeps its hash under a new key (FACTS #2).
        model = CachedModel.objects.filter(hash=request.model_hash, type="main").first()
    if model is None:
        model = models_cache.model_get(key=request.model_key)
    if not model.available:
        raise ModelError(
            f"Model '{model.name}' is no longer installed in InvokeAI; choose another one or reinstall it.",
            code="model_not_installed",
            details={"key": model.key},
        )
    return model


def _input_photo(photo_id: uuid.UUID | str, field: str, owner: Owner) -> Photo:
    try:
        photo = photo_selectors.photo_get(photo_id=photo_id, owner=owner)
    except NotFound:
        raise InvalidInput(
            f"The {field} photo does not exist.", code="invalid_parameter", details={"field": field}
        ) from None
    if not photo.is_available:
        raise InvalidInput(
            f"The {field} photo has not been downloaded yet.", code="invalid_parameter", details={"field": field}
        )
    return photo


def _steps_for(request: StepRequest, defaults: models_cache.StepDefaults) -> int:
    options = defaults.steps
    if request.steps is None:
        return options.default
    if options.fixed and request.steps != options.default:
        raise InvalidInput(
            f"'{defaults.model.name}' always runs {options.default} steps.",
            code="invalid_parameter",
            details={"field": "steps", "fixed_steps": options.default},
        )
    if not options.minimum <= request.steps <= options.maximum:
        raise InvalidInput(
            f"steps must be between {options.minimum} and {options.maximum} for '{defaults.model.name}'.",
            code="invalid_parameter",
            details={"field": "steps", "min": options.minimum, "max": options.maximum},
        )
    return request.steps


def _check_size(width: int, height: int, defaults: models_cache.StepDefaults) -> None:
    if width * height > defaults.max_pixels:
        side = defaults.max_square
        raise InvalidInput(
            f"{width}x{height} is too large for {defaults.base_label} models: at most {defaults.max_pixels:,} "
            f"pixels ({side}x{side}, or as many in another shape). Larger images need more memory than "
            "InvokeAI has here (MAX_IMAGE_PIXELS sets the limit).",
            code="image_too_large",
            details={"field": "width", "max_pixels": defaults.max_pixels, "width": width, "height": height},
        )


def _vae_for(request: StepRequest, defaults: models_cache.StepDefaults) -> CachedModel | None:
    key = defaults.vae_key if request.vae_key is None else request.vae_key
    if not key or defaults.model.base == "flux":
        return None
    vae = next((choice for choice in defaults.vae_choices if choice.key == key), None)
    if vae is None:
        raise InvalidInput(
            f"That VAE is not installed for {defaults.model.base} models.",
            code="invalid_parameter",
            details={"field": "vae_key"},
        )
    return vae


def _from_preset(request: StepRequest, preset: Preset) -> StepRequest:
    """The request with what it leaves unsaid taken from the preset."""
    unsaid: dict[str, Any] = {
        "model_key": request.model_key or preset.model_key,
        "width": request.width if request.width is not None else preset.width,
        "height": request.height if request.height is not None else preset.height,
        "steps": request.steps if request.steps is not None else preset.steps,
        "scheduler": request.scheduler or preset.scheduler or None,
        "vae_key": request.vae_key if request.vae_key is not None else (preset.vae_key or None),
        "clip_skip": request.clip_skip if request.clip_skip is not None else preset.clip_skip,
    }
    if request.cfg_scale is None and request.guidance is None and preset.cfg_scale is not None:
        # One field in a preset: CFG scale, or FLUX's guidance.
        unsaid["cfg_scale"] = unsaid["guidance"] = preset.cfg_scale
    return replace(request, **unsaid)


_CONTROL_FIELDS = ("preprocessor", "weight", "begin", "end", "control_mode", "resize_mode")
_REFINER_FIELDS = ("start", "steps", "cfg_scale", "scheduler", "aesthetic_score", "negative_aesthetic_score")
# A trigger InvokeAI's compel would look up as an embedding (EXTRAS.md: textual inversion).
_EMBEDDING_TRIGGER = re.compile(r"<([a-zA-Z0-9., _-]+)>")


def _component(key: str, field: str, model_type: str, label: str) -> CachedModel:
    model = CachedModel.objects.filter(key=key, type=model_type, available=True).first()
    if model is None:
        raise InvalidInput(
            f"That {label} is not installed in InvokeAI.", code="invalid_parameter", details={"field": field}
        )
    return model


def _refiner_for(request: StepRequest, preset: Preset | None) -> graphs.Refiner | None:
    if request.refiner is not None:
        chosen = request.refiner
        if not chosen:
            return None
        model = _component(str(chosen.get("key", "")), "refiner.key", "main", "refiner")
    elif preset is not None and preset.refiner:
        chosen = preset.refiner
        model = models_cache.model_get(key=chosen["model_key"])
    else:
        return None
    extra = {name: chosen[name] for name in _REFINER_FIELDS if chosen.get(name) is not None}
    return graphs.Refiner(model=model.identifier, **extra)


def _loras_for(request: StepRequest, preset: Preset | None) -> tuple[graphs.Lora, ...]:
    chosen = request.loras if request.loras is not None else (preset.loras if preset else [])
    loras = []
    for index, item in enumerate(chosen):
        model = _component(str(item.get("key", "")), f"loras[{index}]", "lora", "LoRA")
        weight = item.get("weight")
        if weight is None:
            weight = (model.default_settings or {}).get("weight") or 0.75
        loras.append(graphs.Lora(model=model.identifier, weight=float(weight)))
    return tuple(loras)


def _controlnets_for(
    request: StepRequest, owner: Owner, preset: Preset | None
) -> tuple[list[Photo], tuple[graphs.ControlNet, ...]]:
    """The ControlNets asked for (or the preset's), each with its control photo; the image names come at upload."""
    preset_keys = list(preset.controlnets) if preset else []
    asked = request.controlnets if request.controlnets is not None else tuple({} for _ in preset_keys)
    photos, controls = [], []
    for index, item in enumerate(asked):
        field = f"controlnets[{index}]"
        from_preset = not item.get("key") and index < len(preset_keys)
        key = preset_keys[index] if from_preset else str(item.get("key", ""))
        model = _component(key, f"{field}.key", "controlnet", "ControlNet")
        if not item.get("photo_id"):
            said = f" Preset '{preset.name}' uses ControlNet '{model.name}' here." if from_preset and preset else ""
            raise InvalidInput(
                f"A ControlNet needs a control image: a gallery photo or an upload.{said}",
                code="invalid_parameter",
                details={"field": f"{field}.photo_id"},
            )
        photos.append(_input_photo(item["photo_id"], f"{field}.photo_id", owner))
        chosen = {name: item[name] for name in _CONTROL_FIELDS if item.get(name) is not None}
        controls.append(graphs.ControlNet(model=model.identifier, image=_NOT_YET_UPLOADED, **chosen))
    return photos, tuple(controls)


OUTPAINT_SIDES = ("left", "right", "top", "bottom")


# "16:9": across and down, each a whole number; a canvas between 1:4 and 4:1.
_ASPECT_RATIO = re.compile(r"\s*([1-9][0-9]{0,2})\s*:\s*([1-9][0-9]{0,2})\s*")
MAX_OUTPAINT_RATIO = 4


def _aspect_ratio(value: Any) -> tuple[int, int]:
    found = _ASPECT_RATIO.fullmatch(value) if isinstance(value, str) else None
    ratio = (int(found.group(1)), int(found.group(2))) if found else (0, 0)
    if not found or not 1 / MAX_OUTPAINT_RATIO <= ratio[0] / ratio[1] <= MAX_OUTPAINT_RATIO:
        raise InvalidInput(
            f"outpaint.aspect_ratio must be width:height in whole numbers, such as 16:9, 1:1 or 9:16, between "
            f"1:{MAX_OUTPAINT_RATIO} and {MAX_OUTPAINT_RATIO}:1 (got {str(value)[:20]!r}).",
            code="invalid_parameter",
            details={"field": "outpaint.aspect_ratio"},
        )
    return ratio


def _outpaint_for(request: StepRequest, photo: Photo, multiple: int) -> tuple[graphs.Outpaint, int, int]:
    """The sides to extend the photo by: those asked for (px), or what brings it to `aspect_ratio`."""
    chosen = request.outpaint or {}
    asked = {}
    for side in OUTPAINT_SIDES:
        value = chosen.get(side) or 0
        if not isinstance(value, int) or not 0 <= value <= graphs.MAX_OUTPAINT:
            raise InvalidInput(
                f"outpaint.{side} must be a number of pixels from 0 to {graphs.MAX_OUTPAINT}.",
                code="invalid_parameter",
                details={"field": f"outpaint.{side}"},
            )
        asked[side] = value
    width, height = inputs.bounded_size(photo.width, photo.height)
    if chosen.get("aspect_ratio"):
        if any(asked.values()):
            raise InvalidInput(
                "Give either the pixels to add on each side or an aspect ratio to extend to, not both.",
                code="invalid_parameter",
                details={"field": "outpaint.aspect_ratio"},
            )
        across, down = _aspect_ratio(chosen["aspect_ratio"])
        if across * height == down * width:
            raise InvalidInput(
                f"The photo already is {across}:{down}; choose another aspect ratio to extend it to.",
                code="invalid_parameter",
                details={"field": "outpaint.aspect_ratio"},
            )
        sides, canvas_width, canvas_height = inputs.outpaint_to_ratio(
            width=width, height=height, ratio=(across, down), multiple=multiple
        )
        if max(sides.values()) > graphs.MAX_OUTPAINT:
            raise InvalidInput(
                f"Extending this photo to {across}:{down} would add more than {graphs.MAX_OUTPAINT} px on a side.",
                code="invalid_parameter",
                details={"field": "outpaint.aspect_ratio"},
            )
    else:
        if not any(asked.values()):
            raise InvalidInput(
                "Extend the image on at least one side, or to an aspect ratio.",
                code="invalid_parameter",
                details={"field": "outpaint"},
            )
        sides, canvas_width, canvas_height = inputs.outpaint_sides(
            width=width, height=height, sides=asked, multiple=multiple
        )
    outpaint = graphs.Outpaint(**sides, infill=_infill_for(chosen), original_image=_NOT_YET_UPLOADED)
    return outpaint, canvas_width, canvas_height


def _infill_for(chosen: dict[str, Any]) -> str:
    """The infill asked for, if an InvokeAI that may take the step has it (PatchMatch is not everywhere)."""
    infill = str(chosen.get("infill") or "tile")
    available = routing.infill_methods()
    if infill in graphs.INFILLS and infill not in available.names:
        why = (
            "InvokeAI did not say whether it has PatchMatch (a server before 6.9, or an answer that was no yes or no)"
            if available.patchmatch_unknown
            else "InvokeAI has no PatchMatch (its pypatchmatch is not built)"
        )
        raise InvalidInput(
            f"{why}; fill the new area with {', '.join(available.names)} instead.",
            code="infill_unavailable",
            details={"field": "outpaint.infill", "available": list(available.names)},
        )
    return infill


def _plan_upscale(session: GenerationSession | None, request: StepRequest, owner: Owner) -> _Plan:
    """An upscale step: the upscaler takes the main model's place, over one image, with no prompt."""
    upscaler = _component(request.upscaler_key, "upscaler_key", "spandrel_image_to_image", "upscaler")
    if not request.init_photo_id:
        raise InvalidInput(
            "An upscale needs the photo to upscale.", code="invalid_parameter", details={"field": "init_photo_id"}
        )
    photo = _input_photo(request.init_photo_id, "init", owner)
    parent = session.steps.filter(alternatives__photo=photo).first() if session else None
    width, height = inputs.bounded_size(photo.width, photo.height)
    params = graphs.GenerationParameters(
        model=upscaler.identifier,
        prompt=request.prompt.strip(),
        width=width,
        height=height,
        steps=1,
        mode=graphs.Mode.UPSCALE,
        init_image=_NOT_YET_UPLOADED,
    )
    record = {
        "mode": str(graphs.Mode.UPSCALE),
        "init_photo_id": str(photo.pk),
        "upscaler_key": upscaler.key,
        "upscaler_name": upscaler.name,
        "width": width,
        "height": height,
    }
    return _Plan(model=upscaler, params=params, record=record, init_photo=photo, mask_photo=None, parent=parent)


def embedding_warnings(*, prompt: str, negative_prompt: str, base: str) -> list[str]:
    """Triggers in the prompts that name no installed embedding of `base`: InvokeAI would keep them as text."""
    triggers = {*_EMBEDDING_TRIGGER.findall(prompt), *_EMBEDDING_TRIGGER.findall(negative_prompt)}
    if not triggers:
        return []
    known = CachedModel.objects.filter(type="embedding", base=base, available=True).values_list("name", "key")
    names = {value for pair in known for value in pair}
    return [
        f"<{trigger}> matches no installed {base} embedding: InvokeAI would read it as plain text."
        for trigger in sorted(triggers - names)
    ]


def _plan(session: GenerationSession | None, request: StepRequest, owner: Owner) -> _Plan:
    """Validate the request against the model cache and fill in its defaults; no network."""
    preset = presets.preset_for_step(preset_id=request.preset_id, owner=owner) if request.preset_id else None
    if preset is not None:
        request = _from_preset(request, preset)
    if request.mode not in MODES:
        raise InvalidInput(f"mode must be one of {', '.join(MODES)}.", code="invalid_parameter")
    mode = graphs.Mode(request.mode)
    if mode == graphs.Mode.UPSCALE:
        return _plan_upscale(session, request, owner)
    model = _model_for(request)
    defaults = models_cache.step_defaults(key=model.key)
    parent = None
    if request.parent_id is not None:
        parent = session.steps.filter(pk=request.parent_id).first() if session else None
        if parent is None:
            raise InvalidInput("The parent step is not a step of this session.", code="invalid_parameter")
    init_photo = _input_photo(request.init_photo_id, "init", owner) if request.init_photo_id else None
    mask_photo = _input_photo(request.mask_photo_id, "mask", owner) if request.mask_photo_id else None
    if parent is None and session is not None and init_photo is not None and mode != graphs.Mode.TXT2IMG:
        # Unsaid, a step's parent is the step of this session whose image it starts from (if it is one).
        parent = session.steps.filter(alternatives__photo=init_photo).first()
    width, height = request.width, request.height
    outpaint = None
    if mode == graphs.Mode.OUTPAINT:
        if init_photo is None:
            raise InvalidInput(
                "outpaint needs an init photo.", code="invalid_parameter", details={"field": "init_photo_id"}
            )
        outpaint, width, height = _outpaint_for(request, init_photo, defaults.size_multiple)
    elif init_photo and mode != graphs.Mode.TXT2IMG and (width is None or height is None):
        width, height = inputs.snapped_size(
            width=init_photo.width,
            height=init_photo.height,
            side=max(defaults.width, defaults.height),
            multiple=defaults.size_multiple,
        )
    # Only a missing size takes the default: 0 is a size, and a wrong one.
    width = defaults.width if width is None else width
    height = defaults.height if height is None else height
    _check_size(width, height, defaults)
    seed = secrets.randbelow(graphs.SEED_MAX + 1) if request.seed is None else request.seed
    vae = _vae_for(request, defaults)
    control_photos, controlnets = _controlnets_for(request, owner, preset)
    seamless = request.seamless or {}
    params = graphs.GenerationParameters(
        model=model.identifier,
        prompt=request.prompt.strip(),
        negative_prompt=request.negative_prompt.strip(),
        width=width,
        height=height,
        steps=_steps_for(request, defaults),
        cfg_scale=defaults.cfg_scale if request.cfg_scale is None else request.cfg_scale,
        guidance=(defaults.guidance or 3.5) if request.guidance is None else request.guidance,
        scheduler=request.scheduler or defaults.scheduler,
        seed=seed,
        batch_size=request.batch_size,
        mode=mode,
        init_image=_NOT_YET_UPLOADED if init_photo and mode != graphs.Mode.TXT2IMG else None,
        mask_image=_NOT_YET_UPLOADED
        if (mask_photo and mode == graphs.Mode.INPAINT) or mode == graphs.Mode.OUTPAINT
        else None,
        strength=request.strength,
        vae=vae.identifier if vae else None,
        clip_skip=request.clip_skip or 0,
        flux=models_cache.flux_companions(
            t5_encoder_key=request.t5_encoder_key,
            clip_embed_key=request.clip_embed_key,
            vae_key=request.vae_key or "",
        )
        if model.base == "flux"
        else None,
        refiner=_refiner_for(request, preset),
        loras=_loras_for(request, preset),
        controlnets=controlnets,
        seamless_x=bool(seamless.get("x")),
        seamless_y=bool(seamless.get("y")),
        outpaint=outpaint,
    )
    if mode != graphs.Mode.TXT2IMG and init_photo is None:
        raise InvalidInput(f"{mode} needs an init photo.", code="invalid_parameter", details={"field": "init_photo_id"})
    if mode == graphs.Mode.INPAINT and mask_photo is None:
        raise InvalidInput(
            "Inpainting needs a mask photo.", code="invalid_parameter", details={"field": "mask_photo_id"}
        )
    graphs.validate(params)
    record: dict[str, Any] = {
        "mode": str(mode),
        "width": width,
        "height": height,
        "steps": params.steps,
        "scheduler": params.scheduler,
        "seed": seed,
    }
    if model.base == "flux":
        record["guidance"] = params.guidance
    else:
        record["cfg_scale"] = params.cfg_scale
    if mode != graphs.Mode.TXT2IMG:
        record["strength"] = params.strength
        record["init_photo_id"] = str(init_photo.pk) if init_photo else None
    if mode == graphs.Mode.INPAINT:
        record["mask_photo_id"] = str(mask_photo.pk) if mask_photo else None
    if outpaint is not None:
        record["outpaint"] = {side: getattr(outpaint, side) for side in OUTPAINT_SIDES} | {"infill": outpaint.infill}
        if ratio := (request.outpaint or {}).get("aspect_ratio"):
            # Kept as asked, so that Reuse on another photo extends that one to the same shape.
            record["outpaint"]["aspect_ratio"] = "{}:{}".format(*_aspect_ratio(ratio))
    record["vae_key"] = vae.key if vae else ""
    record["vae_name"] = vae.name if vae else ""
    if params.flux is not None:
        record.update(
            t5_encoder_key=params.flux.t5_encoder.key,
            t5_encoder_name=params.flux.t5_encoder.name,
            clip_embed_key=params.flux.clip_embed.key,
            clip_embed_name=params.flux.clip_embed.name,
            vae_key=params.flux.vae.key,
            vae_name=params.flux.vae.name,
        )
    if params.clip_skip:
        record["clip_skip"] = params.clip_skip
    if params.refiner:
        record["refiner"] = {
            "key": params.refiner.model.key,
            "model_key": params.refiner.model.key,
            "model_name": params.refiner.model.name,
            **{name: getattr(params.refiner, name) for name in _REFINER_FIELDS},
        }
    if params.loras:
        record["loras"] = [
            {"key": lora.model.key, "name": lora.model.name, "weight": lora.weight} for lora in params.loras
        ]
    if params.seamless:
        record["seamless"] = {"x": params.seamless_x, "y": params.seamless_y}
    if controlnets:
        record["controlnets"] = [
            {
                "key": control.model.key,
                "name": control.model.name,
                "photo_id": str(photo.pk),
                **{name: getattr(control, name) for name in _CONTROL_FIELDS},
            }
            for photo, control in zip(control_photos, controlnets, strict=True)
        ]
    warnings = embedding_warnings(prompt=params.prompt, negative_prompt=params.negative_prompt, base=model.base)
    if warnings:
        record["warnings"] = warnings
    if preset is not None:
        record["preset_id"] = preset.pk
        record["preset_name"] = preset.name
    return _Plan(
        model=model,
        params=params,
        record=record,
        init_photo=init_photo if mode != graphs.Mode.TXT2IMG else None,
        mask_photo=mask_photo if mode == graphs.Mode.INPAINT else None,
        parent=parent,
        preset=preset,
        control_photos=tuple(control_photos),
    )


def _parts(params: graphs.GenerationParameters) -> list[tuple[str, ModelIdentifier]]:
    """The models a step uses beside its main model, each with what it is for (to say what a backend lacks)."""
    parts: list[tuple[str, ModelIdentifier]] = []
    if params.vae is not None:
        parts.append(("VAE", params.vae))
    parts += [("LoRA", lora.model) for lora in params.loras]
    parts += [("ControlNet", control.model) for control in params.controlnets]
    if params.refiner is not None:
        parts.append(("refiner", params.refiner.model))
    if params.flux is not None:
        parts += [
            ("FLUX T5 encoder", params.flux.t5_encoder),
            ("FLUX CLIP embed", params.flux.clip_embed),
            ("FLUX VAE", params.flux.vae),
        ]
    return parts


def _needs(plan: _Plan) -> tuple[routing.Need, ...]:
    """Every model the step needs on the backend it goes to, its embeddings (named in the prompts) included."""
    params = plan.params
    needs = [routing.Need("model", plan.model.hash, plan.model.name)]
    needs += [routing.Need(what, part.hash, part.name) for what, part in _parts(params)]
    triggers = {*_EMBEDDING_TRIGGER.findall(params.prompt), *_EMBEDDING_TRIGGER.findall(params.negative_prompt)}
    if triggers:
        embeddings = CachedModel.objects.filter(type="embedding", base=plan.model.base, available=True)
        for embedding in embeddings.filter(Q(name__in=triggers) | Q(key__in=triggers)).order_by("name"):
            needs.append(routing.Need("embedding", embedding.hash, embedding.name))
    return tuple(needs)


@dataclass(frozen=True)
class StepRow:
    """What a new step's row holds, whatever builds its batch (the studio's form, or a workflow)."""

    prompt: str
    negative_prompt: str
    parameters: dict[str, Any]
    model_key: str
    model_hash: str
    model_name: str
    batch_size: int
    parent: GenerationStep | None = None
    preset: Preset | None = None
    # Every model the step uses, for routing; empty: only the main model (`model_hash`).
    needs: tuple[routing.Need, ...] = ()


@dataclass(frozen=True)
class PreparedBatch:
    """A batch ready to send: the enqueue_batch body, the key of the main model it uses ("" if none), and what
    the step records of the batch only once it is built (the names InvokeAI gave the images uploaded for it)."""

    body: dict[str, Any]
    model_key: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)


# Builds a step's batch on the InvokeAI it is sent to (uploading its input images there first).
BatchPreparer = Callable[[InvokeAIClient, GenerationStep], PreparedBatch]


def _step_insert(session: GenerationSession, row: StepRow, backend_url: str) -> GenerationStep:
    with transaction.atomic():
        # Locking the session serializes positions: two steps created at once get 3 and 4, not 3 twice.
        locked = GenerationSession.objects.select_for_update().get(pk=session.pk)
        position = (locked.steps.aggregate(last=Max("position"))["last"] or 0) + 1
        step = GenerationStep.objects.create(
            session=locked,
            parent=row.parent,
            preset=row.preset,
            position=position,
            prompt=row.prompt,
            negative_prompt=row.negative_prompt,
            parameters=row.parameters,
            model_key=row.model_key,
            model_hash=row.model_hash,
            model_name=row.model_name,
            batch_size=row.batch_size,
            backend_url=backend_url,
            # Chosen here and sent with the batch, so a batch enqueued just before a crash can still be found.
            batch_id=str(uuid.uuid4()),
        )
        updates: dict[str, Any] = {"updated_at": timezone.now()}
        if not locked.title:
            updates["title"] = row.prompt[:_TITLE_LENGTH]
        GenerationSession.objects.filter(pk=locked.pk).update(**updates)
    return step


def _pending_images() -> dict[str, int]:
    """Images of steps recorded but not yet on their InvokeAI's queue, per backend URL (routing counts them)."""
    pending = GenerationStep.objects.filter(status=StepStatus.PENDING).exclude(backend_url="")
    return dict(pending.values_list("backend_url").annotate(images=Sum("batch_size")).order_by())


def _cancel_requested(step_id: int) -> bool:
    return GenerationStep.objects.filter(pk=step_id, cancel_requested_at__isnull=False).exists()


def _batch_cancel_quietly(client: InvokeAIClient, step: GenerationStep) -> None:
    """Cancel a batch nobody will follow; InvokeAI may not be answering, and the caller has its own error."""
    try:
        client.cancel_batches([step.batch_id])
    except InvokeAIError as exc:
        logger.warning("Could not cancel batch %s of step %s: %s", step.batch_id, step.pk, exc.message)


def _studio_batch(plan: _Plan) -> BatchPreparer:
    """The studio form's batch: its model checked with InvokeAI, its init and mask images uploaded there."""

    def prepare(client: InvokeAIClient, step: GenerationStep) -> PreparedBatch:
        # On an added backend the same model may have another key: the batch uses that one, the cache keeps its own.
        rekey = not routing.is_other_backend(step.backend_url)
        model = models_cache.model_verify(key=plan.model.key, client=client, rekey=rekey)
        params = replace(plan.params, model=model.identifier)
        if not rekey:
            params = _parts_rekeyed(params, client)
        if plan.init_photo and params.outpaint:
            sides = {side: getattr(params.outpaint, side) for side in OUTPAINT_SIDES}
            size = (params.width - sides["left"] - sides["right"], params.height - sides["top"] - sides["bottom"])
            padded, mask, original = inputs.outpaint_images(photo=plan.init_photo, size=size, sides=sides)
            names = [
                client.upload_image(
                    data=data, filename=f"{what}.png", category=category, is_intermediate=True
                ).image_name
                for data, what, category in (
                    (padded, "init", "general"),
                    (mask, "mask", "mask"),
                    (original, "original", "general"),
                )
            ]
            params = replace(
                params,
                init_image=names[0],
                mask_image=names[1],
                outpaint=replace(params.outpaint, original_image=names[2]),
            )
        elif plan.init_photo and params.mode == graphs.Mode.UPSCALE:
            data = inputs.control_image(photo=plan.init_photo)
            uploaded = client.upload_image(data=data, filename="init.png", category="general", is_intermediate=True)
            params = replace(params, init_image=uploaded.image_name)
        elif plan.init_photo:
            init = inputs.input_image(photo=plan.init_photo, width=params.width, height=params.height)
            uploaded = client.upload_image(data=init, filename="init.png", category="general", is_intermediate=True)
            params = replace(params, init_image=uploaded.image_name)
        if plan.mask_photo:
            mask = inputs.input_image(photo=plan.mask_photo, width=params.width, height=params.height, mask=True)
            uploaded = client.upload_image(data=mask, filename="mask.png", category="mask", is_intermediate=True)
            params = replace(params, mask_image=uploaded.image_name)
        if plan.control_photos:
            names = []
            for photo in plan.control_photos:
                control = inputs.control_image(photo=photo)
                uploaded = client.upload_image(
                    data=control, filename="control.png", category="control", is_intermediate=True
                )
                names.append(uploaded.image_name)
            params = replace(
                params,
                controlnets=tuple(replace(c, image=name) for c, name in zip(params.controlnets, names, strict=True)),
            )
        if params.mode == graphs.Mode.UPSCALE:
            assert params.init_image is not None  # uploaded above
            body = graphs.build_upscale_batch(image=params.init_image, upscaler=params.model, board_id=params.board_id)
        else:
            body = graphs.build_batch(params)
        return PreparedBatch(body=body, model_key=model.key if rekey else plan.model.key)

    return prepare


def _parts_rekeyed(params: graphs.GenerationParameters, client: InvokeAIClient) -> graphs.GenerationParameters:
    """The parameters with each part (LoRA, VAE...) under the key the added backend `client` gave it."""
    found = {part: models_cache.model_match(part, client=client, what=what) for what, part in _parts(params)}
    return replace(
        params,
        vae=found[params.vae] if params.vae is not None else None,
        loras=tuple(replace(lora, model=found[lora.model]) for lora in params.loras),
        controlnets=tuple(replace(control, model=found[control.model]) for control in params.controlnets),
        refiner=replace(params.refiner, model=found[params.refiner.model]) if params.refiner else None,
        flux=graphs.FluxModels(
            t5_encoder=found[params.flux.t5_encoder],
            clip_embed=found[params.flux.clip_embed],
            vae=found[params.flux.vae],
        )
        if params.flux
        else None,
    )


def _enqueue(step: GenerationStep, prepare: BatchPreparer) -> None:
    """Build the batch and enqueue it on the step's InvokeAI; mark the step RUNNING.

    A cancel may arrive at any moment while this runs (it only marks the step). Before the batch is sent it
    means: send nothing. After, the batch is on InvokeAI and the step RUNNING, so it is cancelled there like any
    running step's, here if the cancel came first, by the cancel request otherwise.
    """
    client = manager.invokeai_client(step.backend_url)
    prepared = prepare(client, step)
    body = prepared.body
    body["batch"]["batch_id"] = step.batch_id
    if _cancel_requested(step.pk):
        lifecycle.step_move(step_id=step.pk, to=StepStatus.CANCELLED, error_message=lifecycle.CANCELLED_UNSENT)
        return
    try:
        batch = client.enqueue(body)
    except InvokeAIError:
        # InvokeAI may have taken the batch before failing to answer (a read timeout): nobody would collect it.
        _batch_cancel_quietly(client, step)
        raise
    note = ""
    if batch.enqueued < batch.requested:
        note = f"InvokeAI's queue was full: it took {batch.enqueued} of the {batch.requested} images asked for."
    moved: dict[str, Any] = {"model_key": prepared.model_key} if prepared.model_key else {}
    if prepared.parameters:
        moved["parameters"] = {**step.parameters, **prepared.parameters}
    running = lifecycle.step_move(
        step_id=step.pk,
        to=StepStatus.RUNNING,
        batch_id=batch.batch_id,
        item_ids=list(batch.item_ids),
        error_message=note,
        last_contact_at=timezone.now(),
        **moved,
    )
    if prepared.model_key:
        models_cache.model_mark_used(key=prepared.model_key)
    if not running:
        # Only the sweep of steps stuck PENDING moves one away from under us; it cannot have seen this batch.
        _batch_cancel_quietly(client, step)
    elif _cancel_requested(step.pk):
        follower.step_poll(step_id=step.pk)


def step_validate(*, owner: Owner, request: StepRequest) -> list[str]:
    """Check a request as `step_create` would, recording nothing (before starting a session for it): its
    parameters, and that there is an InvokeAI to send it to. Returns the warnings (embedding triggers that
    match nothing), which do not stop it."""
    plan = _plan(None, request, owner)
    manager.current_backend_url()
    return plan.warnings


def active_session_get(*, session_id: int, owner: Owner) -> GenerationSession:
    """The owner's session, if new steps may still be added to it."""
    session = session_get(session_id=session_id, owner=owner)
    if session.status != GenerationSession.Status.ACTIVE:
        raise Conflict(f"This session is {session.status}; start a new one to generate again.", code="session_closed")
    return session


def step_start(*, session: GenerationSession, owner: Owner, row: StepRow, prepare: BatchPreparer) -> GenerationStep:
    """Record a step and send its batch (built by `prepare`) to the InvokeAI of the moment; return the step,
    RUNNING and followed, or CANCELLED if a cancel came while it was being sent.

    Once the step is recorded, a failure to reach or convince InvokeAI leaves it FAILED with the reason, and
    the error is raised for the caller to show.
    """
    user_activity.send(sender=GenerationStep)
    # No InvokeAI to send to (remote mode without a pod, or none has the model): refused before anything is recorded.
    infill = (row.parameters.get("outpaint") or {}).get("infill")
    backend_url = routing.backend_choose(
        needs=row.needs or [row.model_hash], patchmatch=infill == "patchmatch", pending=_pending_images
    )
    step = _step_insert(session, row, backend_url=backend_url)
    try:
        _enqueue(step, prepare)
    except Exception as exc:
        message = exc.message if isinstance(exc, AppError) else "The step could not be sent to InvokeAI."
        # A cancel that came while the step was being sent wins: the step ends cancelled, as its canceller was told.
        if lifecycle.step_end_unsent(step_id=step.pk, error_message=message) != StepStatus.CANCELLED:
            raise
    step = step_get(step_id=step.pk, owner=owner)
    if step.status == StepStatus.RUNNING:
        transaction.on_commit(lambda: follower.step_follow_enqueue(step_id=step.pk))
    return step


def step_create(*, session_id: int, owner: Owner, request: StepRequest) -> GenerationStep:
    """Generate `request.batch_size` alternatives as one InvokeAI batch; return the RUNNING step.

    Invalid parameters raise before anything is recorded (see `step_start` for what follows).
    """
    session = active_session_get(session_id=session_id, owner=owner)
    plan = _plan(session, request, owner)
    row = StepRow(
        prompt=plan.params.prompt,
        negative_prompt=plan.params.negative_prompt,
        parameters=plan.record,
        model_key=plan.model.key,
        model_hash=plan.model.hash,
        model_name=plan.model.name,
        batch_size=plan.params.batch_size,
        parent=plan.parent,
        preset=plan.preset,
        needs=_needs(plan),
    )
    return step_start(session=session, owner=owner, row=row, prepare=_studio_batch(plan))


def step_request_from(
    *, step: GenerationStep, variation: str, strength: float | None = None, prompt: str | None = None
) -> StepRequest:
    """The request for a step that follows `step`.

    `remix`: everything but the seed; `reuse_seed`: everything, seed included (usually with a new prompt);
    `continue`: img2img from the step's chosen alternative with the same settings, a new seed and `strength`.
    """
    params = step.parameters
    if "workflow_id" in params:
        raise Conflict("This step ran a workflow: run it again from the workflow's page.", code="workflow_step")
    base = StepRequest(
        prompt=prompt if prompt is not None else step.prompt,
        negative_prompt=step.negative_prompt,
        model_key=step.model_key,
        model_hash=step.model_hash,
        width=params.get("width"),
        height=params.get("height"),
        steps=params.get("steps"),
        cfg_scale=params.get("cfg_scale"),
        guidance=params.get("guidance"),
        scheduler=params.get("scheduler"),
        batch_size=step.batch_size,
        mode=params.get("mode", graphs.Mode.TXT2IMG),
        parent_id=step.pk,
        init_photo_id=params.get("init_photo_id"),
        mask_photo_id=params.get("mask_photo_id"),
        strength=params.get("strength", graphs.DEFAULT_STRENGTH),
        vae_key=params.get("vae_key", None),
        clip_skip=params.get("clip_skip"),
        preset_id=step.preset_id,
        loras=tuple({"key": lora["key"], "weight": lora["weight"]} for lora in params.get("loras", [])),
        refiner=_recorded_refiner(params.get("refiner")),
        seamless=params.get("seamless"),
        controlnets=tuple(
            {name: value for name, value in control.items() if name != "name"}
            for control in params.get("controlnets", [])
        ),
        outpaint=_recorded_outpaint(params.get("outpaint")),
        upscaler_key=params.get("upscaler_key", ""),
        t5_encoder_key=params.get("t5_encoder_key", ""),
        clip_embed_key=params.get("clip_embed_key", ""),
    )
    if variation == "remix":
        return base
    if variation == "reuse_seed":
        return replace(base, seed=step.seed)
    if variation == "continue":
        chosen = step.alternatives.filter(selected=True).first()
        if chosen is None:
            raise Conflict("Choose one of this step's images first, then continue from it.", code="nothing_selected")
        return replace(
            base,
            mode=graphs.Mode.IMG2IMG,
            init_photo_id=chosen.photo_id,
            mask_photo_id=None,
            strength=params.get("strength", graphs.DEFAULT_STRENGTH) if strength is None else strength,
        )
    raise ValueError(f"unknown variation {variation!r}")


def _recorded_outpaint(recorded: dict[str, Any] | None) -> dict[str, Any] | None:
    """The outpaint part of a request from a step's record: an aspect ratio asked for, rather than the sides it
    came to for that photo."""
    if not recorded or not recorded.get("aspect_ratio"):
        return recorded
    return {"aspect_ratio": recorded["aspect_ratio"], "infill": recorded.get("infill", "tile")}


def _recorded_refiner(recorded: dict[str, Any] | None) -> dict[str, Any]:
    """The refiner part of a request from a step's record; {} (none) when the step had none."""
    if not recorded:
        return {}
    return {"key": recorded.get("key") or recorded["model_key"], **{n: recorded.get(n) for n in _REFINER_FIELDS}}


def step_cancel(*, step_id: int, owner: Owner) -> GenerationStep:
    """Cancel a step's batch in InvokeAI; the images it already finished are kept.

    The step becomes CANCELLED once InvokeAI has confirmed what finished and what did not, normally before
    this returns; if InvokeAI is not answering, the follower cancels as soon as it answers again. A step still
    being sent is only marked: the request sending it cancels its batch as soon as InvokeAI has it.
    """
    step = step_get(step_id=step_id, owner=owner)
    requested = GenerationStep.objects.filter(pk=step.pk, status__in=lifecycle.STEP_IN_FLIGHT).update(
        cancel_requested_at=timezone.now()
    )
    if not requested:
        raise Conflict(f"This step is {step.status}; there is nothing to cancel.", code="invalid_transition")
    if step_get(step_id=step.pk, owner=owner).status == StepStatus.RUNNING:
        follower.step_poll(step_id=step.pk)
    return step_get(step_id=step.pk, owner=owner)


def steps_cancel_all(*, owner: Owner) -> int:
    """Cancel every pending and running step of the owner (the queue page's "Cancel all"); return how many."""
    cancelled = 0
    for queued in selectors.queue_steps(owner=owner):
        try:
            step_cancel(step_id=queued.step.pk, owner=owner)
        except Conflict:
            continue  # it ended meanwhile
        cancelled += 1
    return cancelled


def queue_processor_set(*, owner: Owner, started: bool) -> bool:
    """Pause or resume the processor of the InvokeAI in use (staff only: it stops everyone's work there)."""
    require_staff(owner)
    return manager.invokeai_client().processor_set(started=started)


# --- alternatives ---


def alternative_select(*, step_id: int, owner: Owner, photo_id: uuid.UUID | str) -> StepAlternative:
    """Choose one of a step's images: it is marked, and copied to selected/ and completed/{day}/."""
    step = step_get(step_id=step_id, owner=owner)
    alternative = step.alternatives.select_related("photo").filter(photo_id=_uuid(photo_id)).first()
    if alternative is None:
        raise NotFound("That image is not one of this step's.", code="not_an_alternative")
    if alternative.selected:
        return alternative
    if not alternative.photo.is_available:
        raise Conflict("This image has not been downloaded from InvokeAI yet.", code="not_retrieved")
    previous = step.alternatives.filter(selected=True).first()
    with transaction.atomic():
        # Unmark first: the database allows one selected alternative per step at any instant.
        StepAlternative.objects.filter(step=step, selected=True).update(selected=False, selected_at=None)
        StepAlternative.objects.filter(pk=alternative.pk).update(selected=True, selected_at=timezone.now())
        if previous is not None:
            photo_services.generated_photo_selection_remove(photo_id=previous.photo_id)
        photo_services.generated_photo_selection_copy(photo_id=alternative.photo_id)
        GenerationSession.objects.filter(pk=step.session_id).update(updated_at=timezone.now())
    alternative.refresh_from_db()
    return alternative


def _uuid(value: uuid.UUID | str) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise InvalidInput("image_id is not a photo id.", code="invalid_parameter") from None


# --- preferences ---


def preference_remember(*, user: User, model_key: str, steps: int | None) -> None:
    """Keep the model and step count a person generated with, for the studio form's next visit."""
    StudioPreference.objects.update_or_create(
        user=user, defaults={"model_key": model_key, "steps": steps, "updated_at": timezone.now()}
    )
