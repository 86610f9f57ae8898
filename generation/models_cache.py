"""The model cache: InvokeAI's installed models kept as rows, refreshed from InvokeAI, read by the studio.

Writes: `models_refresh`, `model_update`, `model_mark_used`, `model_verify`. Reads: `model_list`, `model_get`,
`model_find`, `generation_models`, `step_options_for`, `model_step_options`, `model_guidance_default`,
`step_defaults`, `flux_companions`. The studio validates a step with `step_defaults`
(base-aware sizes, steps and their bounds, default VAE) and calls `model_verify` right before enqueueing,
because InvokeAI accepts a stale key at enqueue and only fails the item later (FACTS #2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from backends import manager
from backends import services as backend_services
from backends.invokeai.client import InvokeAIClient, InvokeAIModel, ModelIdentifier
from backends.invokeai.errors import ModelError
from backends.invokeai.graphs import FluxModels
from gallery_project.errors import InvalidInput, NotFound

from .models import CachedModel
from .step_options import StepOptions, parse_model_lines, parse_step_options

# FLUX's text encoders are listed with base "any"; they serve FLUX main models.
_FLUX_COMPANION_TYPES = ("t5_encoder", "clip_embed")

# Sizes, steps and guidance the UI starts from when InvokeAI's default_settings leave them unset.
# `max_pixels` is the largest image (width x height) a step may ask for unless MAX_IMAGE_PIXELS says otherwise:
# InvokeAI's memory grows with it (a 4000x4000 SDXL image took more than a 24 GB machine had), and SD 1.x/2.x
# repeat their subject far past their training size anyway.
_BASE_DEFAULTS: dict[str, dict[str, Any]] = {
    "sd-1": {"size": 512, "max_pixels": 1024 * 1024, "steps": 30, "cfg_scale": 7.5, "scheduler": "dpmpp_2m_k"},
    "sd-2": {"size": 768, "max_pixels": 1024 * 1024, "steps": 30, "cfg_scale": 7.5, "scheduler": "dpmpp_2m_k"},
    "sdxl": {"size": 1024, "max_pixels": 2048 * 2048, "steps": 30, "cfg_scale": 6.0, "scheduler": "dpmpp_2m_sde_k"},
    "flux": {
        "size": 1024,
        "max_pixels": 2048 * 2048,
        "steps": 30,
        "cfg_scale": 1.0,
        "scheduler": "euler",
        "guidance": 3.5,
    },
}
BASE_LABELS = {"sd-1": "SD 1.x", "sd-2": "SD 2.x", "sdxl": "SDXL", "flux": "FLUX"}
# Distilled FLUX schnell is made for few steps.
_SCHNELL_STEPS = 4


@dataclass(frozen=True)
class RefreshResult:
    added: int
    updated: int
    unavailable: int
    available: int


@dataclass(frozen=True)
class StepDefaults:
    """What the step form starts from for one model, and the bounds it may not leave."""

    model: CachedModel
    width: int
    height: int
    # Width and height must be multiples of this, and their product at most max_pixels.
    size_multiple: int
    max_pixels: int
    steps: StepOptions
    cfg_scale: float
    guidance: float | None
    scheduler: str
    # Key of the VAE the form pre-selects; None means the model's own.
    vae_key: str | None
    vae_choices: list[CachedModel]

    @property
    def max_square(self) -> int:
        """The side of the largest square image allowed (a whole number of size multiples)."""
        return math.isqrt(self.max_pixels) // self.size_multiple * self.size_multiple

    @property
    def base_label(self) -> str:
        return BASE_LABELS[self.model.base]


def _compatible_base(model: InvokeAIModel) -> str:
    return "flux" if model.type in _FLUX_COMPANION_TYPES and model.base == "any" else model.base


def _fields(model: InvokeAIModel, now) -> dict[str, Any]:
    defaults = model.defaults
    return {
        "key": model.key,
        "hash": model.hash,
        "name": model.name,
        "type": model.type,
        "base": model.base,
        "format": model.format,
        "variant": model.variant,
        "description": model.description,
        "source": model.source,
        "prediction_type": model.prediction_type,
        "trigger_phrases": list(model.trigger_phrases),
        "default_settings": model.settings,
        "default_width": defaults.width,
        "default_height": defaults.height,
        "default_steps": defaults.steps,
        "default_cfg_scale": defaults.cfg_scale,
        "default_scheduler": defaults.scheduler or "",
        "default_guidance": defaults.guidance,
        "default_vae": defaults.vae or "",
        "compatible_with_base": _compatible_base(model),
        "available": True,
        "cached_at": now,
    }


def _choose_default_vaes() -> None:
    """One default VAE per base: the current one while it is installed, else the first fp16 one, else any."""
    vaes = CachedModel.objects.filter(type="vae", available=True)
    CachedModel.objects.filter(is_default_vae=True).exclude(pk__in=vaes).update(is_default_vae=False)
    for base in vaes.values_list("compatible_with_base", flat=True).distinct():
        candidates = list(vaes.filter(compatible_with_base=base).order_by("name"))
        if any(vae.is_default_vae for vae in candidates):
            continue
        chosen = next((vae for vae in candidates if "fp16" in vae.name.lower()), candidates[0])
        CachedModel.objects.filter(pk=chosen.pk).update(is_default_vae=True)


def models_refresh(*, client: InvokeAIClient | None = None) -> RefreshResult:
    """Bring the cache in line with what InvokeAI lists now; models it no longer lists become unavailable.

    With added backends (`backends.routing`), the cache holds what any of them lists: the InvokeAI in use first,
    so a model installed on several keeps the in-use one's key; each backend's own list is recorded for routing.
    """
    client = client or manager.invokeai_client()
    listed = client.list_models()
    now = timezone.now()
    backend_services.backend_models_record(
        url=client.base_url, hashes=[model.hash for model in listed], patchmatch=client.patchmatch_status(), now=now
    )
    seen = {model.hash for model in listed}
    for models in backend_services.backends_models(now=now):
        listed += [model for model in models if model.hash not in seen]
        seen |= {model.hash for model in models}
    added = updated = 0
    with transaction.atomic():
        rows = {row.key: row for row in CachedModel.objects.select_for_update()}
        listed_keys = {model.key for model in listed}
        # Rows whose key InvokeAI dropped may come back under a new key with the same hash (a reinstall).
        orphans = {row.hash: row for key, row in rows.items() if key not in listed_keys}
        for model in listed:
            row = rows.get(model.key) or orphans.pop(model.hash, None)
            if row is None:
                CachedModel.objects.create(**_fields(model, now))
                added += 1
            else:
                CachedModel.objects.filter(pk=row.pk).update(**_fields(model, now))
                updated += 1
        unavailable = CachedModel.objects.exclude(key__in=listed_keys).filter(available=True).update(available=False)
        _choose_default_vaes()
    return RefreshResult(added=added, updated=updated, unavailable=unavailable, available=len(listed))


def model_update(*, key: str, is_favorite: bool | None = None, options: dict[str, Any] | None = None) -> CachedModel:
    """Toggle a model's favorite flag and/or replace its step options (validated)."""
    model = model_get(key=key)
    if is_favorite is not None:
        model.is_favorite = is_favorite
    if options is not None:
        try:
            parse_step_options(options)
        except ValueError as exc:
            raise InvalidInput(str(exc), code="invalid_options", details={"field": "options"}) from None
        model.options = options
    model.save(update_fields=["is_favorite", "options"])
    return model


def model_mark_used(*, key: str) -> None:
    CachedModel.objects.filter(key=key).update(last_used_at=timezone.now())


def model_verify(*, key: str, client: InvokeAIClient | None = None, rekey: bool = True) -> CachedModel:
    """Check with InvokeAI that the model is still installed, following a reinstall to its new key.

    Without `rekey` (an added backend, whose install of the same file has a key of its own), the cache is left
    as it is and the row returned, unsaved, carries that backend's key for its batch.
    """
    model = model_get(key=key)
    client = client or manager.invokeai_client()
    current = client.get_model(model.key) or client.get_model_by_hash(model.hash)
    if current is None and not rekey:
        raise ModelError(
            f"Model '{model.name}' is not installed on the InvokeAI at {client.base_url}.",
            code="model_not_installed",
            details={"key": model.key, "name": model.name, "backend": client.base_url},
        )
    if current is None:
        CachedModel.objects.filter(pk=model.pk).update(available=False, is_default_vae=False)
        raise ModelError(
            f"Model '{model.name}' is no longer installed in InvokeAI; choose another one or reinstall it.",
            code="model_not_installed",
            details={"key": model.key, "name": model.name},
        )
    if current.key != model.key and not rekey:
        model.key = current.key
        return model
    if current.key != model.key:
        CachedModel.objects.filter(pk=model.pk).update(**_fields(current, timezone.now()))
        model.refresh_from_db()
    return model


def model_match(model: ModelIdentifier, *, client: InvokeAIClient, what: str = "model") -> ModelIdentifier:
    """The same model on another InvokeAI, under that one's key: by hash when known, else by name, base and
    type. Raises `ModelError` naming what is missing where."""
    if model.hash:
        found = client.get_model_by_hash(model.hash)
    else:
        listed = client.list_models(model_type=model.type, bases=[model.base])
        found = next((each for each in listed if (each.name, each.base) == (model.name, model.base)), None)
    if found is None:
        raise ModelError(
            f"The {what} '{model.name}' is not installed on the InvokeAI at {client.base_url}.",
            code="model_not_installed",
            details={"key": model.key, "name": model.name, "what": what, "backend": client.base_url},
        )
    return found.identifier


# --- reads ---


def model_list(
    *, model_type: str | None = None, base: str | None = None, include_unavailable: bool = False
) -> QuerySet[CachedModel]:
    """Models for a picker: favorites first, then the recently used, then by name."""
    models = CachedModel.objects.all()
    if not include_unavailable:
        models = models.filter(available=True)
    if model_type:
        models = models.filter(type=model_type)
    if base:
        models = models.filter(compatible_with_base=base)
    return models.order_by("-is_favorite", F("last_used_at").desc(nulls_last=True), "name")


def model_get(*, key: str) -> CachedModel:
    try:
        # No key is longer or has a NUL, which PostgreSQL would refuse in the query rather than find nothing.
        if len(key) > 64 or "\x00" in key:
            raise CachedModel.DoesNotExist
        return CachedModel.objects.get(key=key)
    except CachedModel.DoesNotExist:
        raise NotFound(
            "This model is not in the model cache; refresh the models from InvokeAI.",
            code="model_not_found",
            details={"key": key},
        ) from None


def model_find(*, name: str) -> CachedModel:
    """An installed main model by key or by name: scripts name models the way people do."""
    model = model_list(model_type="main").filter(Q(key=name) | Q(name=name)).first()
    if model is None:
        raise NotFound(
            f"No installed model is called '{name}'; GET /api/models/?type=main lists them.",
            code="model_not_found",
            details={"model": name},
        )
    return model


# The refiner of an SDXL model is a main model of its own base.
REFINER_BASES = {"sdxl": "sdxl-refiner"}


def model_components(*, key: str) -> dict[str, list[CachedModel]]:
    """What can go with a main model (same base): its VAEs, LoRAs, embeddings, ControlNets... by type, in one query;
    an SDXL model's refiners under "refiner"."""
    model = model_get(key=key)
    if model.type != "main":
        raise InvalidInput(
            f"'{model.name}' is a {model.type} model; only main models have components.",
            code="not_a_main_model",
            details={"key": key},
        )
    matches = Q(compatible_with_base=model.base) & ~Q(type="main")
    if refiner_base := REFINER_BASES.get(model.base):
        matches |= Q(type="main", base=refiner_base)
    components: dict[str, list[CachedModel]] = {}
    for component in model_list().filter(matches):
        kind = "refiner" if component.type == "main" else component.type
        components.setdefault(kind, []).append(component)
    return components


def step_options_for(model: CachedModel) -> StepOptions | None:
    """The model's own step options (set in the admin or the API), else those of a matching MODEL_* line."""
    own = parse_step_options(model.options)
    if own is not None or model.options:
        return own
    for line in parse_model_lines(settings.MODEL_DEFINITIONS):
        if line.name == model.name or (line.repo and line.repo.split(":")[0] == model.source.split(":")[0]):
            return parse_step_options(line.options)
    return None


def generation_models() -> QuerySet[CachedModel]:
    """The installed main models the studio can generate with (the bases it has graphs for), picker order."""
    return model_list(model_type="main").filter(base__in=_BASE_DEFAULTS)


def model_step_options(model: CachedModel) -> StepOptions:
    """The steps a step with `model` may take: its step options, else 1 to 150 around its default count."""
    default_steps = model.default_steps or (
        _SCHNELL_STEPS if model.variant == "schnell" else _BASE_DEFAULTS[model.base]["steps"]
    )
    return step_options_for(model) or StepOptions(minimum=1, maximum=150, default=default_steps)


def model_guidance_default(model: CachedModel) -> float:
    """The guidance a step starts from: FLUX's guidance for FLUX models, the CFG scale for the others."""
    base = _BASE_DEFAULTS[model.base]
    if model.base == "flux":
        return model.default_guidance or base["guidance"]
    return model.default_cfg_scale or base["cfg_scale"]


def _first_available(model_type: str, base: str) -> CachedModel | None:
    return model_list(model_type=model_type, base=base).first()


# The parts of a FLUX step a request may choose: its field -> (model type, what it is called).
FLUX_PARTS = {
    "t5_encoder_key": ("t5_encoder", "T5 encoder"),
    "clip_embed_key": ("clip_embed", "CLIP-embed model"),
    "vae_key": ("vae", "FLUX VAE"),
}


def flux_companions(*, t5_encoder_key: str = "", clip_embed_key: str = "", vae_key: str = "") -> FluxModels:
    """The T5 encoder, CLIP-embed and VAE a FLUX model needs: those chosen, else favorites first and the
    default VAE first. A chosen key that is not such a part, installed, is refused naming its field."""
    asked = {"t5_encoder_key": t5_encoder_key, "clip_embed_key": clip_embed_key, "vae_key": vae_key}
    vae = CachedModel.objects.filter(type="vae", compatible_with_base="flux", is_default_vae=True, available=True)
    defaults = {
        "t5_encoder_key": _first_available("t5_encoder", "flux"),
        "clip_embed_key": _first_available("clip_embed", "flux"),
        "vae_key": vae.first() or _first_available("vae", "flux"),
    }
    chosen: dict[str, CachedModel | None] = {}
    for field, (model_type, label) in FLUX_PARTS.items():
        if not asked[field]:
            chosen[label] = defaults[field]
            continue
        chosen[label] = model_list(model_type=model_type, base="flux").filter(key=asked[field]).first()
        if chosen[label] is None:
            raise InvalidInput(
                f"That {label} is not installed in InvokeAI for FLUX.",
                code="invalid_parameter",
                details={"field": field},
            )
    if missing := [what for what, model in chosen.items() if model is None]:
        raise ModelError(
            "FLUX needs a T5 encoder, a CLIP-embed model and a FLUX VAE in InvokeAI; "
            f"missing: {', '.join(missing)}. Install them in InvokeAI's model manager, then refresh the "
            "models.",
            code="flux_companions_missing",
            details={"missing": missing},
        )
    t5, clip, flux_vae = (model.identifier for model in chosen.values() if model is not None)
    return FluxModels(t5_encoder=t5, clip_embed=clip, vae=flux_vae)


def step_defaults(*, key: str) -> StepDefaults:
    model = model_get(key=key)
    if model.type != "main" or model.base not in _BASE_DEFAULTS:
        raise ModelError(
            f"'{model.name}' is a {model.base} {model.type} model; Photo Studio generates with "
            "SD 1.x, SD 2.x, SDXL and FLUX main models.",
            code="unsupported_base",
            details={"key": key},
        )
    base = _BASE_DEFAULTS[model.base]
    steps = model_step_options(model)
    vae_choices = list(model_list(model_type="vae", base=model.base))
    own_default = model.default_vae if any(vae.key == model.default_vae for vae in vae_choices) else ""
    base_default = next((vae.key for vae in vae_choices if vae.is_default_vae), None)
    return StepDefaults(
        model=model,
        width=model.default_width or base["size"],
        height=model.default_height or base["size"],
        size_multiple=16 if model.base == "flux" else 8,
        max_pixels=settings.MAX_IMAGE_PIXELS or base["max_pixels"],
        steps=steps,
        cfg_scale=model.default_cfg_scale or base["cfg_scale"],
        guidance=model_guidance_default(model) if model.base == "flux" else None,
        scheduler=model.default_scheduler or base["scheduler"],
        # FLUX always needs a separate VAE, and SDXL's own needs fp32 where an fp16 fix does not; SD 1/2 keep
        # their own unless InvokeAI's settings for the model name one.
        vae_key=own_default or (base_default if model.base in ("flux", "sdxl") else None),
        vae_choices=vae_choices,
    )
