"""The studio page: compose a step, watch its alternatives arrive, choose, continue; one template, named partials.

Views parse, call a service or selector, and render a partial of `generation/studio.html` for htmx (the whole
page otherwise). A running step's panel polls itself every second and stops once the step has finished and its
images are in; finishing also tells the history to refresh (`step-finished`).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import uuid
from dataclasses import astuple, dataclass
from datetime import datetime
from typing import Any, BinaryIO, cast

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect, reswap, retarget, trigger_client_event

from backends import manager, routing
from backends.invokeai import graphs
from backends.signals import user_activity
from gallery_project.errors import AppError, Conflict, InvalidInput, Unavailable
from gallery_project.http import HtmxRequest
from gallery_project.permissions import is_staff, signed_in, staff_required
from photos import selectors as photo_selectors
from photos import services as photo_services
from photos.models import Photo

from . import model_installs, models_cache, presets, retrieval, selectors, services
from .forms import MAX_CONTROLNETS, OUTPAINT_RATIOS, SEED_MODES, StepForm
from .models import CachedModel, GenerationSession, GenerationStep, Preset, StepAlternative

TEMPLATE = "generation/studio.html"
# The model-dependent controls, included in TEMPLATE's model fields.
CONTROLS_TEMPLATE = "generation/studio_controls.html"
PICKER_SIZE = 48
# "init", "mask", "control", or a workflow field's "<nodeId>.<fieldName>" (with "batch:" for its several values).
PICKER_TARGET = re.compile(r"[\w.:-]{1,200}")

# Sizes people pick most for each base: square, portrait, landscape, near the base's native area.
SIZE_PRESETS = {
    "sd-1": [(512, 512), (512, 768), (768, 512)],
    "sd-2": [(768, 768), (640, 960), (960, 640)],
    "sdxl": [(1024, 1024), (832, 1216), (1216, 832), (896, 1152), (1152, 896)],
    "flux": [(1024, 1024), (832, 1216), (1216, 832), (768, 1360), (1360, 768)],
}


@dataclass(frozen=True)
class Shown:
    """An alternative on the step panel, with when its failed download will be tried again (if it will)."""

    alternative: StepAlternative
    next_retry: datetime | None


@dataclass(frozen=True)
class ModelChoice:
    model: CachedModel
    label: str


def _model_choices() -> list[ModelChoice]:
    models = models_cache.model_list(model_type="main").filter(base__in=graphs.SUPPORTED_BASES)
    return [
        ModelChoice(
            model=model,
            label=f"{'★ ' if model.is_favorite else ''}{model.name} · {models_cache.BASE_LABELS[model.base]}",
        )
        for model in models
    ]


def _photo(request: HttpRequest, photo_id: Any) -> Photo | None:
    if not photo_id:
        return None
    try:
        return photo_selectors.photo_get(photo_id=photo_id, owner=request.user)
    except AppError:
        return None


def _values_from_step(step: GenerationStep, *, seed_mode: str = "random") -> dict[str, Any]:
    params = step.parameters
    return {
        "model_key": step.model_key,
        "prompt": step.prompt,
        "negative_prompt": step.negative_prompt,
        "mode": params.get("mode", "txt2img"),
        "width": params.get("width"),
        "height": params.get("height"),
        "steps": params.get("steps"),
        "cfg_scale": params.get("cfg_scale"),
        "guidance": params.get("guidance"),
        "scheduler": params.get("scheduler"),
        "vae_key": params.get("vae_key"),
        "seed_mode": seed_mode,
        "seed": step.seed,
        "batch_size": step.batch_size,
        "init_photo_id": params.get("init_photo_id"),
        "mask_photo_id": params.get("mask_photo_id"),
        "strength": params.get("strength", graphs.DEFAULT_STRENGTH),
        "preset_id": step.preset_id,
        **{key: params[key] for key in _PART_KEYS if params.get(key)},
        **_controls_from(params),
    }


# A step's choices of the models beside its main model: the upscaler (its "model"), FLUX's text encoders.
_PART_KEYS = ("upscaler_key", "t5_encoder_key", "clip_embed_key")


_CONTROL_KEYS = ("loras", "controlnets", "refiner", "clip_skip", "seamless", "outpaint")


def _controls_from(params: dict[str, Any]) -> dict[str, Any]:
    """The studio controls of a recipe (a step's parameters or a photo's), as the form shows them."""
    return {key: params[key] for key in _CONTROL_KEYS if params.get(key) not in (None, "", [], {})}


def _values_from_photo(photo: Photo) -> dict[str, Any]:
    """For "Generate from this photo": img2img from it, with the recipe it was generated with, if it was."""
    values: dict[str, Any] = {"mode": "img2img", "init_photo_id": str(photo.pk)}
    if not photo.is_generated:
        return values
    params = photo.generation_params
    values.update(
        model_key=photo.model_key,
        prompt=photo.generation_prompt,
        negative_prompt=photo.generation_negative_prompt,
        width=params.get("width") or photo.width,
        height=params.get("height") or photo.height,
        **{key: params[key] for key in ("steps", "cfg_scale", "guidance", "scheduler", "strength") if key in params},
        **{key: value for key, value in _controls_from(params).items() if key != "outpaint"},
    )
    return values


def _model_fields(model_key: str | None, values: dict[str, Any]) -> dict[str, Any]:
    """What the model-dependent part of the form shows: presets, the steps slider's bounds, defaults."""
    if not model_key:
        return {"defaults": None}
    defaults = models_cache.step_defaults(key=model_key)
    steps = values.get("steps") or defaults.steps.default
    if defaults.steps.fixed:
        steps = defaults.steps.default
    steps = min(max(steps, defaults.steps.minimum), defaults.steps.maximum)
    width = values.get("width") or defaults.width
    height = values.get("height") or defaults.height
    vae_key = values["vae_key"] if values.get("vae_key") is not None else (defaults.vae_key or "")
    return {
        "defaults": defaults,
        "is_flux": defaults.model.base == "flux",
        "presets": SIZE_PRESETS.get(defaults.model.base, []),
        "min_side": graphs.MIN_SIZE,
        "max_side": graphs.MAX_SIZE,
        "width": width,
        "height": height,
        "steps_value": steps,
        "cfg_scale": values.get("cfg_scale") or defaults.cfg_scale,
        "guidance": values.get("guidance") or defaults.guidance,
        "scheduler": values.get("scheduler") or defaults.scheduler,
        "schedulers": graphs.SCHEDULERS,
        "vae_key": vae_key,
        **_control_fields(defaults.model, values),
    }


def _control_fields(model: CachedModel, values: dict[str, Any]) -> dict[str, Any]:
    """The controls the model's base supports, with its installed LoRAs, embeddings, ControlNets, refiners,
    and the values chosen (from a recipe, else the last ones used with this base)."""
    components = models_cache.model_components(key=model.key)
    base = model.base
    chosen_loras = {lora["key"]: lora["weight"] for lora in values.get("loras") or []}
    loras = [
        {
            "model": lora,
            "checked": lora.key in chosen_loras,
            "weight": chosen_loras.get(lora.key) or (lora.default_settings or {}).get("weight") or 0.75,
            "min": (lora.default_settings or {}).get("weight_min") or -1,
            "max": (lora.default_settings or {}).get("weight_max") or 2,
        }
        for lora in components.get("lora", [])
    ]
    return {
        "base": base,
        "loras": loras,
        "embeddings": components.get("embedding", []),
        "controlnet_models": components.get("controlnet", []) if base in graphs.CONTROLNET_BASES else [],
        # One slot per ControlNet chosen, or one empty slot to choose the first in.
        "controls": [_control_slot(control) for control in values.get("controlnets") or [{}]],
        "empty_control": _control_slot({}),
        "max_controlnets": MAX_CONTROLNETS,
        **(_flux_fields(components, values) if base == "flux" else {}),
        "refiners": components.get("refiner", []),
        "refiner": values.get("refiner") or {},
        "clip_skip_supported": base in graphs.CLIP_SKIP_BASES,
        "clip_skip": values.get("clip_skip") or 0,
        "seamless_supported": base in graphs.SEAMLESS_BASES,
        "seamless": values.get("seamless") or {},
        "preprocessors": graphs.PREPROCESSORS,
        "control_modes": graphs.CONTROL_MODES,
        "resize_modes": graphs.RESIZE_MODES,
    }


def _control_slot(control: dict[str, Any]) -> dict[str, Any]:
    """A ControlNet slot's values: the chosen ones, InvokeAI's defaults for the rest (a weight of 0 stays 0)."""
    defaults = {"weight": 1.0, "begin": 0.0, "end": 1.0}
    return defaults | {name: value for name, value in control.items() if value is not None}


def _flux_fields(components: dict[str, list[CachedModel]], values: dict[str, Any]) -> dict[str, Any]:
    """FLUX's T5 encoder, CLIP-embed and VAE choices from the cache, the default of each preselected."""
    try:
        defaults = models_cache.flux_companions()
        chosen = {
            "t5_encoder_key": defaults.t5_encoder.key,
            "clip_embed_key": defaults.clip_embed.key,
            "vae_key": defaults.vae.key,
        }
    except AppError:
        chosen = dict.fromkeys(models_cache.FLUX_PARTS, "")
    chosen |= {field: values[field] for field in models_cache.FLUX_PARTS if values.get(field)}
    return {
        "flux_parts": [
            (field, label, components.get(model_type, []), chosen[field])
            for field, (model_type, label) in models_cache.FLUX_PARTS.items()
        ]
    }


def _remembered(request: HttpRequest, model_key: str | None) -> dict[str, Any]:
    """The controls last used with this model's base, kept in the person's session."""
    model = CachedModel.objects.filter(key=model_key or "").first()
    if model is None:
        return {}
    return dict(request.session.get(_REMEMBERED, {}).get(model.base, {}))


_REMEMBERED = "studio_controls"


def _backend_problem() -> str:
    """Why nothing can be generated right now (remote mode without a pod), or ""; said before Generate is pressed."""
    try:
        manager.current_backend_url()
    except Unavailable as exc:
        return exc.message
    return ""


@dataclass(frozen=True)
class PresetChoice:
    preset: Preset
    problems: list[str]


def _preset_choices(request: HttpRequest) -> list[PresetChoice]:
    listed = list(presets.preset_list(owner=request.user))
    problems = presets.presets_problems(listed)
    return [PresetChoice(preset, problems[preset.pk]) for preset in listed]


def _composer(request: HttpRequest, values: dict[str, Any]) -> dict[str, Any]:
    choices = _model_choices()
    keys = [choice.model.key for choice in choices]
    preference = selectors.preference_get(user=request.user)
    model_key = values.get("model_key")
    if model_key not in keys and preference and preference.model_key in keys:
        model_key = preference.model_key
        values.setdefault("steps", preference.steps)
    if model_key not in keys:
        model_key = keys[0] if keys else None
    values = {"mode": "txt2img", "seed_mode": "random", "batch_size": 4, "strength": graphs.DEFAULT_STRENGTH, **values}
    values["model_key"] = model_key
    if not any(key in values for key in _CONTROL_KEYS):
        values.update(_remembered(request, model_key))
    outpaint = values.get("outpaint") or {}
    infills = routing.infill_methods()
    return {
        "model_choices": choices,
        "values": values,
        "init_photo": _photo(request, values.get("init_photo_id")),
        "mask_photo": _photo(request, values.get("mask_photo_id")),
        "upscalers": list(models_cache.model_list(model_type="spandrel_image_to_image")),
        "prompt_warnings": _prompt_warnings(model_key, values),
        "outpaint": outpaint,
        # A recorded aspect ratio is shown as such, not as the sides it came to for that photo.
        "outpaint_fields": [
            (side, side.capitalize(), 0 if outpaint.get("aspect_ratio") else outpaint.get(side) or 0)
            for side in services.OUTPAINT_SIDES
        ],
        "outpaint_ratios": OUTPAINT_RATIOS,
        "infills": infills,
        # A remembered or recorded infill this InvokeAI lacks falls back to the first one (tile).
        "infill": outpaint.get("infill") if outpaint.get("infill") in infills.names else infills.names[0],
        "can_refresh_models": is_staff(request.user),
        "seed_modes": SEED_MODES,
        "max_batch_size": settings.MAX_BATCH_SIZE,
        "backend_problem": _backend_problem(),
        "preset_choices": _preset_choices(request),
        **_model_fields(model_key, values),
    }


def _prompt_warnings(model_key: str | None, values: dict[str, Any]) -> list[str]:
    """What InvokeAI would silently ignore in the prompts for this model (an <embedding> it does not have)."""
    model = CachedModel.objects.filter(key=model_key or "", type="main").first()
    if model is None:
        return []
    return services.embedding_warnings(
        prompt=values.get("prompt") or "", negative_prompt=values.get("negative_prompt") or "", base=model.base
    )


def _session_context(session: GenerationSession, current: GenerationStep | None = None) -> dict[str, Any]:
    steps = selectors.session_steps(session=session)
    if current is None and steps:
        current = steps[-1]
    elif current is not None:
        current = next((step for step in steps if step.pk == current.pk), current)
    history = [
        {
            "step": step,
            "chosen": next((alternative for alternative in step.alternatives.all() if alternative.selected), None),
            "count": len(step.alternatives.all()),
        }
        for step in reversed(steps)
    ]
    return {"session": session, "steps": steps, "history": history, "step": current, **_step_context(current)}


def _step_context(step: GenerationStep | None) -> dict[str, Any]:
    if step is None:
        return {}
    alternatives = list(step.alternatives.all())
    arrived = {alternative.item_id for alternative in alternatives}
    live = {item.item_id: item for item in selectors.step_live_items(step=step)}
    waiting = [
        {"item_id": item_id, "index": index, "result": step.item_results.get(str(item_id)), "live": live.get(item_id)}
        for index, item_id in enumerate(step.item_ids)
        if item_id not in arrived
    ]
    if not step.item_ids and not step.is_finished:
        waiting = [{"item_id": None, "index": index, "result": None, "live": None} for index in range(step.batch_size)]
    pending = any(alternative.photo.retrieval_status == Photo.RetrievalStatus.PENDING for alternative in alternatives)
    available = sum(alternative.photo.is_available for alternative in alternatives)
    return {
        "alternatives": [
            Shown(alternative, retrieval.next_retry_at(alternative.photo)) for alternative in alternatives
        ],
        "waiting": waiting,
        "has_selection": any(alternative.selected for alternative in alternatives),
        "failed_downloads": sum(
            alternative.photo.retrieval_status == Photo.RetrievalStatus.FAILED for alternative in alternatives
        ),
        "done_items": len(step.item_results),
        "live_items": list(live.values()),
        # What the running step's live partial was drawn from; when it changes, the whole panel is drawn again.
        "live_version": f"{step.status}.{len(step.item_results)}.{len(alternatives)}.{available}",
        "live_state": _live_state(step, list(live.values())),
        # A running step is followed by its live partial; a finished one only while images are downloading.
        "polling": step.is_finished and pending,
    }


def _live_state(step: GenerationStep, live: list[selectors.LiveItem]) -> str:
    """What the live partial shows beyond `live_version`: while it is unchanged, a poll answers 204 and nothing is
    drawn or swapped (htmx then keeps its poll's rhythm, instead of starting it over after each swap)."""
    shown = (step.progress, step.cancel_requested_at is not None, [astuple(item) for item in live])
    return hashlib.blake2b(repr(shown).encode(), digest_size=8).hexdigest()


def _render_main(request: HttpRequest, session: GenerationSession, current: GenerationStep | None = None, **extra):
    context = {**_session_context(session, current), **extra}
    return render(request, f"{TEMPLATE}#session-main", context)


# --- pages ---


@require_GET
@vary_on_headers("HX-Request")
def studio(request: HttpRequest) -> HttpResponse:
    """The studio's front page: a new session's composer (from a gallery photo with ?photo=) and past sessions."""
    user_activity.send(sender=GenerationSession)
    source = _photo(request, request.GET.get("photo"))
    values = _values_from_photo(source) if source is not None else {}
    context = {
        "sessions": selectors.session_list(owner=request.user, limit=30),
        "source_photo": source,
        **_composer(request, values),
    }
    return render(request, TEMPLATE, context)


@require_GET
@vary_on_headers("HX-Request")
def session_page(request: HttpRequest, pk: int) -> HttpResponse:
    user_activity.send(sender=GenerationSession)
    session = selectors.session_get(session_id=pk, owner=request.user)
    context = _session_context(session)
    last = context.get("step")
    values = _values_from_step(last) if last else {}
    source = _photo(request, session.source_image_id) if last is None else None
    if source is not None:
        values = _values_from_photo(source)
    return render(request, TEMPLATE, {**context, **_composer(request, values)})


@require_GET
def model_fields(request: HttpRequest) -> HttpResponse:
    """The model-dependent fields, when the model picker changes."""
    values: dict[str, Any] = {key: request.GET.get(key) for key in ("vae_key",) if key in request.GET}
    values.update(_remembered(request, request.GET.get("model_key")))
    context = _model_fields(request.GET.get("model_key"), values)
    return render(request, f"{TEMPLATE}#model-fields", context)


@require_GET
def backend_notice(request: HttpRequest) -> HttpResponse:
    """The composer's notice that nothing can be generated; polled until that changes (a pod got ready)."""
    return render(request, f"{TEMPLATE}#backend-notice", {"backend_problem": _backend_problem()})


@require_POST
@staff_required
def models_refresh(request: HttpRequest) -> HttpResponse:
    """Refresh the model cache from InvokeAI (from the composer, when it has no models yet)."""
    session = None
    if request.POST.get("session"):
        session = selectors.session_get(session_id=request.POST["session"], owner=request.user)
    error = ""
    try:
        models_cache.models_refresh()
    except AppError as exc:
        error = exc.message
    context = {"session": session, "error": error, **_composer(request, {})}
    return render(request, f"{TEMPLATE}#composer", context)


@require_GET
def prompt_check(request: HttpRequest) -> HttpResponse:
    """The composer's warnings about its prompts, checked as they are typed (before Generate is pressed)."""
    values = {field: request.GET.get(field, "")[:5000] for field in ("prompt", "negative_prompt")}
    warnings = _prompt_warnings(request.GET.get("model_key"), values)
    return render(request, f"{TEMPLATE}#prompt-warnings", {"prompt_warnings": warnings})


@require_POST
def control_upload(request: HttpRequest) -> HttpResponse:
    """A control image uploaded from a ControlNet slot: stored as a `control` photo, then picked in the slot."""
    upload = request.FILES.get("control_file")
    context: dict[str, Any] = {"control": {}}
    if upload is None:
        context["upload_error"] = "Choose an image file to upload."
    else:
        try:
            created = photo_services.photo_create(
                owner=signed_in(request.user),
                file=cast("BinaryIO", upload),
                filename=upload.name or "control.png",
                size=upload.size or 0,
                image_category=Photo.Category.CONTROL,
            )
        except AppError as exc:
            context["upload_error"] = exc.message
        else:
            context["control"] = {"photo_id": str(created.photo.pk)}
    return render(request, f"{CONTROLS_TEMPLATE}#control-picked", context)


@require_GET
def photo_picker(request: HttpRequest) -> HttpResponse:
    """Recent gallery photos to choose from: the studio's init, mask or control photo, or a workflow's image field
    (the target names the input the chosen tile fills, and comes back on the tiles and the "More photos" link)."""
    target = request.GET.get("target", "init")
    if not PICKER_TARGET.fullmatch(target):
        raise InvalidInput("Unknown picker target.", code="invalid_parameter")
    page = photo_selectors.photo_list(owner=request.user, limit=PICKER_SIZE, cursor=request.GET.get("cursor") or None)
    photos = [photo for photo in page.items if photo.is_available]
    return render(request, "includes/photo_picker.html#tiles", {"photos": photos, "target": target, "page": page})


@require_GET
def composer_from_step(request: HttpRequest, pk: int) -> HttpResponse:
    """The composer filled from a step; with ?seed=reuse its seed is kept (the "Reuse seed" button)."""
    step = selectors.step_get(step_id=pk, owner=request.user)
    seed_mode = "fixed" if request.GET.get("seed") == "reuse" else "random"
    context = {"session": step.session, **_composer(request, _values_from_step(step, seed_mode=seed_mode))}
    return render(request, f"{TEMPLATE}#composer", context)


# Composer fields a preset leaves as they are.
_KEPT_FIELDS = (
    "prompt",
    "negative_prompt",
    "mode",
    "seed_mode",
    "seed",
    "batch_size",
    "init_photo_id",
    "mask_photo_id",
    "strength",
)


@require_GET
def composer_preset(request: HttpRequest) -> HttpResponse:
    """The composer filled from the preset chosen in it (what was typed stays); a preset that cannot be used
    any more says why, and fills nothing."""
    session = None
    if request.GET.get("session"):
        session = selectors.session_get(session_id=request.GET["session"], owner=request.user)
    values: dict[str, Any] = {field: request.GET[field] for field in _KEPT_FIELDS if request.GET.get(field)}
    values["model_key"] = request.GET.get("model_key")
    error = ""
    if request.GET.get("preset_id"):
        preset = presets.preset_get(preset_id=request.GET["preset_id"], owner=request.user)
        if problems := presets.preset_problems(preset):
            error = f"Preset '{preset.name}' cannot be used: {' '.join(problems)}"
        else:
            values.update(
                preset_id=preset.pk,
                model_key=preset.model_key,
                vae_key=preset.vae_key or None,
                **{
                    field: getattr(preset, field)
                    for field in ("width", "height", "steps", "scheduler")
                    if getattr(preset, field)
                },
            )
            if preset.cfg_scale is not None:
                values["cfg_scale"] = values["guidance"] = preset.cfg_scale
            values.update(_preset_controls(preset))
            values["prompt"] = _with_embeddings(values.get("prompt", ""), preset)
    context = {"session": session, "error": error, **_composer(request, values)}
    return render(request, f"{TEMPLATE}#composer", context)


def _preset_controls(preset: Preset) -> dict[str, Any]:
    """A preset's LoRAs, refiner, clip skip and ControlNets as the composer shows them: each ControlNet a slot
    with its model chosen, waiting for its control image. Shown, they are what the form sends."""
    refiner = dict(preset.refiner)
    return {
        "loras": [{"key": lora["key"], "weight": lora.get("weight")} for lora in preset.loras],
        "refiner": {"key": refiner.pop("model_key"), **refiner} if refiner else {},
        "clip_skip": preset.clip_skip,
        "controlnets": [{"key": key} for key in preset.controlnets],
    }


def _with_embeddings(prompt: str, preset: Preset) -> str:
    """The prompt with a `<name>` for each of the preset's embeddings it lacks: InvokeAI applies an embedding only
    where its name is in the prompt, so a preset's embeddings are filled in where the person sees them."""
    names = CachedModel.objects.filter(key__in=preset.embeddings).values_list("name", flat=True)
    missing = [f"<{name}>" for name in sorted(names) if f"<{name}>" not in prompt]
    return " ".join([prompt.rstrip(), *missing]).strip() if missing else prompt


# --- generating ---


def _error(request: HttpRequest, message: str) -> HttpResponse:
    response = render(request, f"{TEMPLATE}#composer-error", {"error": message}, status=200)
    return reswap(retarget(response, "#composer-error"), "innerHTML")


def _remember(request: HttpRequest, step: GenerationStep) -> None:
    if step.parameters.get("mode") == graphs.Mode.UPSCALE:
        return  # its model is the upscaler, not one to generate with next time
    services.preference_remember(
        user=signed_in(request.user), model_key=step.model_key, steps=step.parameters.get("steps")
    )
    model = CachedModel.objects.filter(key=step.model_key, type="main").first()
    if model is not None:
        remembered = dict(request.session.get(_REMEMBERED, {}))
        remembered[model.base] = {
            **{key: value for key, value in _controls_from(step.parameters).items() if key != "outpaint"},
            # The VAE and, for FLUX, its text encoders: the parts chosen beside the main model.
            **{key: step.parameters[key] for key in models_cache.FLUX_PARTS if step.parameters.get(key)},
        }
        request.session[_REMEMBERED] = remembered


@require_POST
def session_new(request: HtmxRequest) -> HttpResponse:
    """Start a session with its first step, then go to its page."""
    form = StepForm(request.POST)
    if not form.is_valid():
        return _error(request, form.first_error())
    step_request = form.to_request(last_step=None)
    try:
        services.step_validate(owner=request.user, request=step_request)
    except AppError as exc:
        return _error(request, exc.message)
    source = step_request.init_photo_id if step_request.mode != "txt2img" else None
    session = services.session_create(owner=signed_in(request.user), source_photo_id=source)
    # A failure at InvokeAI is recorded as a failed step with its reason, which the session page shows.
    with contextlib.suppress(AppError):
        _remember(request, services.step_create(session_id=session.pk, owner=request.user, request=step_request))
    url = reverse("studio:session", args=[session.pk])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@require_POST
def generate(request: HttpRequest, pk: int) -> HttpResponse:
    """A new step in the session from the composer."""
    session = selectors.session_get(session_id=pk, owner=request.user)
    form = StepForm(request.POST)
    if not form.is_valid():
        return _error(request, form.first_error())
    steps = selectors.session_steps(session=session)
    last = steps[-1] if steps else None
    before = last.pk if last else 0
    # A step from the form builds on the last one only if it reuses its seed; one that starts from an image
    # of this session gets that image's step as its parent from the service.
    parent_id = before if last and form.cleaned_data["seed_mode"] == "reuse" else None
    try:
        step = services.step_create(
            session_id=session.pk, owner=request.user, request=form.to_request(last_step=last, parent_id=parent_id)
        )
    except AppError as exc:
        recorded = session.steps.filter(pk__gt=before).order_by("-pk").first()
        if recorded is None:
            return _error(request, exc.message)
        return _render_main(request, session, recorded)
    _remember(request, step)
    return _render_main(request, session, step)


@require_POST
def step_variation(request: HttpRequest, pk: int, variation: str) -> HttpResponse:
    """Remix (new seed) or continue (img2img from the chosen image) in one click."""
    step = selectors.step_get(step_id=pk, owner=request.user)
    try:
        strength = float(request.POST["strength"]) if request.POST.get("strength") else None
    except ValueError:
        raise InvalidInput("strength must be a number between 0 and 1.", code="invalid_parameter") from None
    try:
        step_request = services.step_request_from(step=step, variation=variation, strength=strength)
        new = services.step_create(session_id=step.session_id, owner=request.user, request=step_request)
    except AppError as exc:
        latest = step.session.steps.order_by("-pk").first()
        if latest is None or latest.pk == step.pk:
            return _render_main(request, step.session, step, error=exc.message)
        return _render_main(request, step.session, latest)
    _remember(request, new)
    # The form follows: Generate now makes more of what this button just made (img2img from the chosen image).
    response = _render_main(request, step.session, new)
    composer = {"session": step.session, **_composer(request, _values_from_step(new))}
    response.content += render_to_string(f"{TEMPLATE}#composer-oob", composer, request=request).encode()
    return response


# --- a step ---


@require_GET
def step_panel(request: HttpRequest, pk: int) -> HttpResponse:
    """The step's panel; polled while it runs. Finishing also refreshes the history beside it."""
    user_activity.send(sender=GenerationStep)
    step = selectors.step_with_alternatives(step_id=pk, owner=request.user)
    context = {"step": step, "session": step.session, **_step_context(step)}
    response = render(request, f"{TEMPLATE}#step-panel", context)
    if request.GET.get("was") == "running" and step.is_finished:
        trigger_client_event(response, "step-finished")
    return response


@require_GET
def step_live(request: HttpRequest, pk: int) -> HttpResponse:
    """The running step's previews and progress bars, polled four times a second: 204 while nothing has changed.
    Once an image has arrived or the step has moved on, the whole panel instead (retargeted), so the real image
    takes its preview's place."""
    user_activity.send(sender=GenerationStep)
    step = selectors.step_with_alternatives(step_id=pk, owner=request.user)
    context = {"step": step, "session": step.session, **_step_context(step)}
    if step.is_finished or request.GET.get("v") != context["live_version"]:
        response = render(request, f"{TEMPLATE}#step-panel", context)
        retarget(response, "#step-panel")
        reswap(response, "outerHTML")
        if step.is_finished:
            trigger_client_event(response, "step-finished")
        return response
    if request.GET.get("s") == context["live_state"]:
        return HttpResponse(status=204)
    return render(request, f"{TEMPLATE}#step-live", {**context, "oob": True})


@require_GET
def history(request: HttpRequest, pk: int) -> HttpResponse:
    session = selectors.session_get(session_id=pk, owner=request.user)
    return render(request, f"{TEMPLATE}#history", _session_context(session))


@require_GET
def step_show(request: HttpRequest, pk: int) -> HttpResponse:
    """Show an earlier step of the history as the current one."""
    step = selectors.step_get(step_id=pk, owner=request.user)
    return _render_main(request, step.session, step)


@require_POST
def step_select(request: HttpRequest, pk: int, photo_id: uuid.UUID) -> HttpResponse:
    step = selectors.step_get(step_id=pk, owner=request.user)
    services.alternative_select(step_id=step.pk, owner=request.user, photo_id=photo_id)
    return _render_main(request, step.session, step)


@require_POST
def step_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    step = services.step_cancel(step_id=pk, owner=request.user)
    return _render_main(request, step.session, step)


@require_POST
def step_retry(request: HttpRequest, pk: int) -> HttpResponse:
    step = selectors.step_get(step_id=pk, owner=request.user)
    retrieval.step_retrievals_retry(step_id=step.pk)
    return _render_main(request, step.session, step)


@require_POST
def session_close(request: HtmxRequest, pk: int, status: str) -> HttpResponse:
    services.session_update(session_id=pk, owner=request.user, status=status)
    url = reverse("studio:home")
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


# --- the Models page (staff): the model cache by type and base, installs, uninstalls ---

MODELS_TEMPLATE = "generation/models.html"
# How many of the latest installs the page lists (the unfinished ones are always among them while they run).
RECENT_INSTALLS = 8


def _models_context(request: HttpRequest) -> dict[str, Any]:
    model_type = request.GET.get("type") or ""
    base = request.GET.get("base") or ""
    every = CachedModel.objects.filter(available=True)
    return {
        "models": models_cache.model_list(model_type=model_type or None, base=base or None),
        "types": sorted(set(every.values_list("type", flat=True))),
        "bases": sorted(set(every.values_list("compatible_with_base", flat=True))),
        "chosen_type": model_type,
        "chosen_base": base,
    }


def _model_row(request: HttpRequest, model: CachedModel, error: str = "") -> HttpResponse:
    return render(request, f"{MODELS_TEMPLATE}#model-row", {"model": model, "error": error})


@require_GET
@staff_required
@vary_on_headers("HX-Request")
def models_page(request: HtmxRequest) -> HttpResponse:
    context = _models_context(request)
    if request.htmx and request.htmx.target == "model-list":
        return render(request, f"{MODELS_TEMPLATE}#model-list", context)
    installs = model_installs.install_list(owner=request.user)[:RECENT_INSTALLS]
    return render(request, MODELS_TEMPLATE, {**context, "installs": installs})


@require_POST
@staff_required
def model_favorite(request: HttpRequest, key: str) -> HttpResponse:
    model = models_cache.model_get(key=key)
    return _model_row(request, models_cache.model_update(key=key, is_favorite=not model.is_favorite))


def _step_options(post: Any) -> dict[str, Any]:
    """The step options form: a fixed count, or a range with a default; all empty clears them."""
    values = {}
    for field in ("fixed", "min", "max", "default"):
        raw = (post.get(field) or "").strip()
        if raw:
            try:
                values[field] = int(raw)
            except ValueError:
                raise InvalidInput(f"Steps {field} must be a whole number.", code="invalid_options") from None
    if "fixed" in values:
        return {"fixed_steps": values["fixed"]}
    if not values:
        return {}
    if len(values) < 3:
        raise InvalidInput("Give the least, the most and the default number of steps.", code="invalid_options")
    return {"steps": values}


@require_POST
@staff_required
def model_options(request: HttpRequest, key: str) -> HttpResponse:
    try:
        model = models_cache.model_update(key=key, options=_step_options(request.POST))
    except InvalidInput as exc:
        return _model_row(request, models_cache.model_get(key=key), exc.message)
    return _model_row(request, model)


@require_POST
@staff_required
def model_uninstall(request: HttpRequest, key: str) -> HttpResponse:
    model = models_cache.model_get(key=key)
    try:
        model_installs.model_uninstall(key=key)
    except AppError as exc:
        return _model_row(request, model, exc.message)
    return HttpResponse("")


@require_POST
@staff_required
def install_start(request: HttpRequest) -> HttpResponse:
    try:
        install = model_installs.install_start(
            owner=signed_in(request.user), source=request.POST.get("source", ""), name=request.POST.get("name", "")
        )
    except AppError as exc:
        response = render(request, f"{MODELS_TEMPLATE}#install-error", {"error": exc.message})
        return reswap(retarget(response, "#install-error"), "innerHTML")
    response = render(request, f"{MODELS_TEMPLATE}#install", {"install": install})
    if install.is_finished:
        trigger_client_event(response, "models-changed")
    return response


@require_GET
@staff_required
def install_status(request: HttpRequest, pk: int) -> HttpResponse:
    """One install, polled every second while it runs; its end tells the model list to reload."""
    install = model_installs.install_get(install_id=pk, owner=request.user)
    install = model_installs.install_poll(install_id=install.pk)
    response = render(request, f"{MODELS_TEMPLATE}#install", {"install": install})
    if install.is_finished:
        trigger_client_event(response, "models-changed")
    return response


# --- the Presets page ---

PRESETS_TEMPLATE = "generation/presets.html"


def _number(value: str, kind: type[int] | type[float], field: str) -> Any:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return kind(value)
    except ValueError:
        raise InvalidInput(f"{field.replace('_', ' ')} must be a number.", code="invalid_parameter") from None


def _preset_values(post: Any) -> dict[str, Any]:
    """What the preset form posts, as `presets.preset_create` takes it."""
    loras = [
        {"key": key, "weight": _number(post.get(f"lora_weight_{key}", ""), float, "LoRA weight") or 1.0}
        for key in post.getlist("loras")
    ]
    refiner: dict[str, Any] = {}
    if post.get("refiner_key"):
        refiner = {"model_key": post["refiner_key"]}
        for field, kind in (("start", float), ("steps", int), ("cfg_scale", float)):
            if (value := _number(post.get(f"refiner_{field}", ""), kind, f"refiner {field}")) is not None:
                refiner[field] = value
    return {
        "name": post.get("name", "").strip()[:100],
        "model_key": post.get("model_key", ""),
        "vae_key": post.get("vae_key", ""),
        "loras": loras,
        "embeddings": post.getlist("embeddings"),
        "controlnets": post.getlist("controlnets"),
        "scheduler": post.get("scheduler", ""),
        "steps": _number(post.get("steps", ""), int, "steps"),
        "cfg_scale": _number(post.get("cfg_scale", ""), float, "cfg_scale"),
        "width": _number(post.get("width", ""), int, "width"),
        "height": _number(post.get("height", ""), int, "height"),
        "clip_skip": _number(post.get("clip_skip", ""), int, "clip_skip"),
        "refiner": refiner,
    }


def _preset_form(request: HttpRequest, preset: Preset | None, values: dict[str, Any] | None = None, error: str = ""):
    if values is None:
        values = {field: getattr(preset, field) for field in presets.FIELDS} if preset else dict(presets.FIELDS)
        values["name"] = preset.name if preset else ""
    mains = list(models_cache.model_list(model_type="main").filter(base__in=graphs.SUPPORTED_BASES))
    model_key = values.get("model_key") or (mains[0].key if mains else "")
    return {
        "preset": preset,
        "values": {**values, "model_key": model_key},
        "mains": mains,
        "schedulers": graphs.SCHEDULERS,
        "error": error,
        **_components_context(model_key, values.get("loras") or []),
    }


@dataclass(frozen=True)
class LoraRow:
    model: CachedModel
    chosen: bool
    weight: float


def _components_context(model_key: str, loras: list[dict[str, Any]]) -> dict[str, Any]:
    """The components the preset form offers for the model, with the LoRAs chosen and their weights."""
    try:
        components = models_cache.model_components(key=model_key) if model_key else {}
    except AppError:
        components = {}
    weights = {lora["key"]: lora.get("weight", 1.0) for lora in loras}
    rows = [LoraRow(lora, lora.key in weights, weights.get(lora.key, 1.0)) for lora in components.get("lora", [])]
    return {"components": components, "lora_rows": rows}


# --- the queue page ---

QUEUE_TEMPLATE = "generation/queue.html"


def _queue_context(request: HttpRequest, error: str = "") -> dict[str, Any]:
    context: dict[str, Any] = {
        "queued": selectors.queue_steps(owner=request.user),
        "can_pause": is_staff(request.user),
        "error": error,
    }
    try:
        context["invokeai"] = manager.invokeai_client().queue_status()
    except AppError as exc:
        context["invokeai"], context["invokeai_error"] = None, exc.message
    return context


def _queue_panel(request: HttpRequest, error: str = "") -> HttpResponse:
    return render(request, f"{QUEUE_TEMPLATE}#queue-panel", _queue_context(request, error))


@require_GET
@vary_on_headers("HX-Request")
def presets_page(request: HttpRequest) -> HttpResponse:
    editing = None
    if request.GET.get("edit"):
        editing = presets.preset_get(preset_id=request.GET["edit"], owner=request.user)
    context = {"preset_choices": _preset_choices(request), **_preset_form(request, editing)}
    return render(request, PRESETS_TEMPLATE, context)


@require_GET
def preset_components(request: HttpRequest) -> HttpResponse:
    """The component choices of the preset form, when its main model changes."""
    values = {**presets.FIELDS, "model_key": request.GET.get("model_key", "")}
    context = {"values": values, **_components_context(values["model_key"], [])}
    return render(request, f"{PRESETS_TEMPLATE}#components", context)


def _preset_refused(request: HttpRequest, preset: Preset | None, values: dict[str, Any] | None, exc: AppError):
    """The page again with what was posted and why it was refused (every problem the check named)."""
    problems = exc.details.get("problems")
    message = " ".join(problems) if problems else exc.message
    context = {"preset_choices": _preset_choices(request), **_preset_form(request, preset, values, message)}
    return render(request, PRESETS_TEMPLATE, context, status=400)


@require_POST
def preset_save(request: HtmxRequest) -> HttpResponse:
    preset = None
    if request.POST.get("preset_id"):
        preset = presets.preset_get(preset_id=request.POST["preset_id"], owner=request.user)
    try:
        values = _preset_values(request.POST)
    except AppError as exc:
        return _preset_refused(request, preset, None, exc)
    try:
        if preset is None:
            presets.preset_create(owner=signed_in(request.user), **values)
        else:
            presets.preset_update(preset_id=preset.pk, owner=request.user, **values)
    except AppError as exc:
        return _preset_refused(request, preset, values, exc)
    url = reverse("studio:presets")
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@require_POST
def preset_delete(request: HtmxRequest, pk: int) -> HttpResponse:
    presets.preset_delete(preset_id=pk, owner=request.user)
    url = reverse("studio:presets")
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@require_GET
@vary_on_headers("HX-Request")
def queue_page(request: HtmxRequest) -> HttpResponse:
    """Our pending and running steps with their place, InvokeAI's own counts; the panel polls itself."""
    if request.htmx:
        return _queue_panel(request)
    return render(request, QUEUE_TEMPLATE, _queue_context(request))


@require_POST
def queue_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        services.step_cancel(step_id=pk, owner=request.user)
    except Conflict as exc:
        # It ended meanwhile: the panel shows it gone. Another account's step stays a 404.
        return _queue_panel(request, exc.message)
    return _queue_panel(request)


@require_POST
def queue_cancel_all(request: HttpRequest) -> HttpResponse:
    try:
        services.steps_cancel_all(owner=request.user)
    except AppError as exc:
        return _queue_panel(request, exc.message)
    return _queue_panel(request)


@require_POST
@staff_required
def queue_processor(request: HttpRequest, action: str) -> HttpResponse:
    try:
        services.queue_processor_set(owner=request.user, started=action == "resume")
    except AppError as exc:
        return _queue_panel(request, exc.message)
    return _queue_panel(request)


@require_GET
def queue_indicator(request: HttpRequest) -> HttpResponse:
    """The top bar's count of our steps in flight (no request to InvokeAI: it is on every page)."""
    return render(request, f"{QUEUE_TEMPLATE}#indicator", {"count": selectors.queue_count(owner=request.user)})
