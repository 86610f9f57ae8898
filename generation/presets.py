"""Presets (automatic-spoon's engines): a main model with its components and step defaults, ready to use.

Writes: `preset_create`, `preset_update`, `preset_delete`. Reads: `preset_list`, `preset_get`, `preset_problems`.
A preset is checked against the model cache when it is saved (every component installed, of its type, and of the
main model's base; each problem named), and again when it is read or used: models come and go in InvokeAI, and a
preset whose model went says so rather than failing at enqueue.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from backends.invokeai import graphs
from backends.invokeai.errors import ModelError
from gallery_project.errors import Conflict, InvalidInput, NotFound
from gallery_project.permissions import Owner, owned_by

from .models import CachedModel, Preset
from .models_cache import BASE_LABELS, REFINER_BASES

# The fields a preset has besides its name, with what they hold when unset.
FIELDS: dict[str, Any] = {
    "model_key": "",
    "vae_key": "",
    "loras": [],
    "embeddings": [],
    "controlnets": [],
    "scheduler": "",
    "steps": None,
    "cfg_scale": None,
    "width": None,
    "height": None,
    "clip_skip": None,
    "refiner": {},
}
_COMPONENTS = (
    ("vae_key", "vae", "VAE"),
    ("embeddings", "embedding", "Embedding"),
    ("controlnets", "controlnet", "ControlNet"),
)


def _label(base: str) -> str:
    return BASE_LABELS.get(base, base)


def _a(word: str) -> str:
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


@dataclass(frozen=True)
class _Lookup:
    """The cached models a preset names, fetched in one query."""

    models: dict[str, CachedModel]

    def describe(self, key: str) -> str:
        model = self.models.get(key)
        return f"'{model.name}'" if model else f"with key {key}"

    def problem(self, key: str, what: str, model_type: str, base: str | None) -> str | None:
        """Why `key` cannot be the preset's `what` (of `base`), or None if it can."""
        model = self.models.get(key)
        if model is None or not model.available:
            return f"{what} {self.describe(key)} is not installed in InvokeAI."
        if model.type != model_type:
            return f"{what} '{model.name}' is {_a(model.type)} model, not {_a(model_type)}."
        if base is not None and model.compatible_with_base != base:
            return f"{what} '{model.name}' is for {_label(model.base)} models, not {_label(base)}."
        return None


def _keys(values: dict[str, Any]) -> set[str]:
    keys = {values["model_key"], values["vae_key"], *values["embeddings"], *values["controlnets"]}
    keys |= {lora["key"] for lora in values["loras"]}
    keys.add((values["refiner"] or {}).get("model_key", ""))
    return keys - {""}


def _lookup(keys: set[str]) -> _Lookup:
    return _Lookup({model.key: model for model in CachedModel.objects.filter(key__in=keys)})


def _problems(values: dict[str, Any], lookup: _Lookup | None = None) -> list[str]:
    """Every reason the preset's models do not go together, each naming the model."""
    lookup = lookup or _lookup(_keys(values))
    main = lookup.models.get(values["model_key"])
    problem = lookup.problem(values["model_key"], "Main model", "main", None)
    if problem is None and main is not None and main.base not in graphs.SUPPORTED_BASES:
        problem = f"Main model '{main.name}' is a {main.base} model; presets are for SD 1.x, SD 2.x, SDXL and FLUX."
    if problem:
        return [problem]
    assert main is not None
    base = main.base
    problems = []
    for field, model_type, what in _COMPONENTS:
        keys = values[field] if isinstance(values[field], list) else [values[field]] if values[field] else []
        problems += [p for key in keys if (p := lookup.problem(key, what, model_type, base))]
    problems += [p for lora in values["loras"] if (p := lookup.problem(lora["key"], "LoRA", "lora", base))]
    refiner = values["refiner"] or {}
    if refiner:
        if base not in REFINER_BASES:
            problems.append(f"A refiner only follows an SDXL model; '{main.name}' is {_label(base)}.")
        elif p := lookup.problem(refiner.get("model_key", ""), "Refiner", "main", None):
            problems.append(p)
        elif lookup.models[refiner["model_key"]].base != REFINER_BASES[base]:
            problems.append(f"Refiner {lookup.describe(refiner['model_key'])} is not an SDXL refiner.")
    return problems


def _check_settings(values: dict[str, Any], base: str | None) -> None:
    multiple = 16 if base == "flux" else 8
    for field in ("width", "height"):
        value = values[field]
        if value is not None and (value % multiple or not graphs.MIN_SIZE <= value <= graphs.MAX_SIZE):
            raise InvalidInput(
                f"{field} must be a multiple of {multiple} from {graphs.MIN_SIZE} to {graphs.MAX_SIZE}.",
                code="invalid_parameter",
                details={"field": field},
            )
    if values["scheduler"] and values["scheduler"] not in graphs.SCHEDULERS:
        raise InvalidInput(
            f"Unknown scheduler '{values['scheduler']}'.", code="invalid_parameter", details={"field": "scheduler"}
        )


def _checked_name(name: str) -> str:
    name = name.strip()
    if not name or not name.isprintable() or len(name) > 100:
        raise InvalidInput(
            "Give the preset a name: one line of at most 100 characters.",
            code="invalid_name",
            details={"field": "name"},
        )
    return name


def _validated(values: dict[str, Any]) -> dict[str, Any]:
    # Keys go into a query: one no key can be (a NUL, which PostgreSQL refuses, or too long) is refused here.
    if bad := next((key for key in _keys(values) if len(key) > 64 or not key.isprintable()), None):
        raise InvalidInput(f"{bad[:64]!r} is not a model key; GET /api/models/ lists them.", code="invalid_model_key")
    problems = _problems(values)
    if problems:
        raise InvalidInput(" ".join(problems), code="preset_models_invalid", details={"problems": problems})
    main = CachedModel.objects.get(key=values["model_key"])
    _check_settings(values, main.base)
    return values


def _save(preset: Preset) -> Preset:
    try:
        with transaction.atomic():
            preset.save()
    except IntegrityError:
        raise Conflict(
            f"You already have a preset called '{preset.name}'.", code="preset_name_taken", details={"field": "name"}
        ) from None
    return preset


def preset_create(*, owner: User, name: str, **values: Any) -> Preset:
    values = _validated({**FIELDS, **values})
    now = timezone.now()
    return _save(Preset(owner=owner, name=_checked_name(name), created_at=now, updated_at=now, **values))


def preset_update(*, preset_id: int, owner: Owner, name: str | None = None, **changes: Any) -> Preset:
    """Change some of a preset's fields; the whole preset is checked again."""
    preset = preset_get(preset_id=preset_id, owner=owner)
    values = _validated({field: changes.get(field, getattr(preset, field)) for field in FIELDS})
    for field, value in values.items():
        setattr(preset, field, value)
    if name is not None:
        preset.name = _checked_name(name)
    preset.updated_at = timezone.now()
    return _save(preset)


def preset_delete(*, preset_id: int, owner: Owner) -> None:
    preset_get(preset_id=preset_id, owner=owner).delete()


# --- reads ---


def preset_list(*, owner: Owner) -> QuerySet[Preset]:
    return owned_by(Preset.objects.all(), owner)


def preset_get(*, preset_id: int | str, owner: Owner) -> Preset:
    preset = preset_list(owner=owner).filter(pk=preset_id).first()
    if preset is None:
        raise NotFound("No such preset.", code="preset_not_found", details={"id": preset_id})
    return preset


def _values(preset: Preset) -> dict[str, Any]:
    return {field: getattr(preset, field) for field in FIELDS}


def preset_problems(preset: Preset) -> list[str]:
    """What is wrong with the preset now (a model uninstalled since it was saved); empty if it is usable."""
    return _problems(_values(preset))


def presets_problems(preset_list: Iterable[Preset]) -> dict[int, list[str]]:
    """`preset_problems` of many presets, with one query for all their models (for lists)."""
    listed = list(preset_list)
    lookup = _lookup(set().union(*(_keys(_values(preset)) for preset in listed)))
    return {preset.pk: _problems(_values(preset), lookup) for preset in listed}


def preset_for_step(*, preset_id: int, owner: Owner) -> Preset:
    """The preset a step comes from; `ModelError` naming what went missing if it cannot be used any more."""
    preset = preset_get(preset_id=preset_id, owner=owner)
    if problems := preset_problems(preset):
        raise ModelError(
            f"Preset '{preset.name}' cannot be used: {' '.join(problems)} Edit the preset, or reinstall the model.",
            code="preset_unusable",
            details={"preset": preset.pk, "problems": problems},
        )
    return preset
