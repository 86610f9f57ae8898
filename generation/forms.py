"""The studio's step form: parses what the page posts into a `StepRequest`; the service does the validating."""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import QueryDict

from backends.invokeai.graphs import DEFAULT_STRENGTH, INFILLS, MAX_OUTPAINT, SEED_MAX

from .models import GenerationStep
from .services import MODES, OUTPAINT_SIDES, StepRequest

SEED_MODES = (("random", "Random"), ("fixed", "Fixed"), ("reuse", "Reuse last"))
# The shapes the form offers to outpaint to (the API takes any width:height from 1:4 to 4:1).
OUTPAINT_RATIOS = ("16:9", "3:2", "4:3", "1:1", "3:4", "2:3", "9:16")


_PROMPT_MISSING = "Write a prompt: it is what the image will show."
# One ControlNet slot's fields; the form has one of each per slot, so the i-th of each list is slot i's.
_CONTROL_SLOT = {
    "controlnet_key": forms.CharField(required=False, max_length=64),
    "control_photo_id": forms.UUIDField(required=False),
    "preprocessor": forms.CharField(required=False),
    "control_weight": forms.FloatField(required=False),
    "control_begin": forms.FloatField(required=False),
    "control_end": forms.FloatField(required=False),
    "control_mode": forms.CharField(required=False),
    "resize_mode": forms.CharField(required=False),
}
_CONTROL_REQUEST = {
    "controlnet_key": "key",
    "control_photo_id": "photo_id",
    "preprocessor": "preprocessor",
    "control_weight": "weight",
    "control_begin": "begin",
    "control_end": "end",
    "control_mode": "control_mode",
    "resize_mode": "resize_mode",
}
MAX_CONTROLNETS = 8


class StepForm(forms.Form):
    # Not needed to upscale, which runs an upscaler model over a photo with no prompt.
    model_key = forms.CharField(max_length=64, required=False)
    prompt = forms.CharField(max_length=5000, required=False)
    negative_prompt = forms.CharField(max_length=5000, required=False)
    mode = forms.ChoiceField(choices=[(mode, mode) for mode in MODES], initial="txt2img")
    width = forms.IntegerField(required=False)
    height = forms.IntegerField(required=False)
    steps = forms.IntegerField(required=False)
    cfg_scale = forms.FloatField(required=False)
    guidance = forms.FloatField(required=False)
    scheduler = forms.CharField(required=False)
    # Neither is posted for an upscale, which makes one image with no seed.
    seed_mode = forms.ChoiceField(choices=SEED_MODES, initial="random", required=False)
    seed = forms.IntegerField(required=False, min_value=0, max_value=SEED_MAX)
    batch_size = forms.IntegerField(min_value=1, initial=4, required=False)
    init_photo_id = forms.UUIDField(required=False)
    mask_photo_id = forms.UUIDField(required=False)
    strength = forms.FloatField(required=False, min_value=0.01, max_value=1)
    vae_key = forms.CharField(required=False)
    preset_id = forms.IntegerField(required=False)
    clip_skip = forms.IntegerField(required=False, min_value=0, max_value=12)
    seamless_x = forms.BooleanField(required=False)
    seamless_y = forms.BooleanField(required=False)
    outpaint_left = forms.IntegerField(required=False, min_value=0, max_value=MAX_OUTPAINT)
    outpaint_right = forms.IntegerField(required=False, min_value=0, max_value=MAX_OUTPAINT)
    outpaint_top = forms.IntegerField(required=False, min_value=0, max_value=MAX_OUTPAINT)
    outpaint_bottom = forms.IntegerField(required=False, min_value=0, max_value=MAX_OUTPAINT)
    infill = forms.ChoiceField(choices=[(name, name) for name in INFILLS], required=False)
    outpaint_aspect = forms.ChoiceField(
        choices=[("", "")] + [(ratio, ratio) for ratio in OUTPAINT_RATIOS], required=False
    )
    upscaler_key = forms.CharField(required=False, max_length=64)
    t5_encoder_key = forms.CharField(required=False, max_length=64)
    clip_embed_key = forms.CharField(required=False, max_length=64)
    refiner_key = forms.CharField(required=False)
    refiner_start = forms.FloatField(required=False)
    refiner_steps = forms.IntegerField(required=False)
    refiner_cfg_scale = forms.FloatField(required=False)
    refiner_aesthetic_score = forms.FloatField(required=False)
    refiner_negative_aesthetic_score = forms.FloatField(required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("seed_mode") == "fixed" and data.get("seed") is None:
            self.add_error("seed", "Enter the seed to use, or choose Random.")
        if data.get("mode") == "upscale":
            if not data.get("upscaler_key"):
                self.add_error("upscaler_key", "Choose an upscaler model.")
        else:
            if not data.get("prompt", "").strip():
                self.add_error("prompt", _PROMPT_MISSING)
            if not data.get("model_key"):
                self.add_error("model_key", "Choose a model.")
        data["controlnets"] = self._clean_controlnets()
        return data

    def _clean_controlnets(self) -> tuple[dict[str, Any], ...]:
        """Each ControlNet slot with a model chosen, its values parsed; a slot left on "None" is ignored."""
        posted = self.data
        columns = {
            name: posted.getlist(name) if isinstance(posted, QueryDict) else posted.get(name, [])
            for name in _CONTROL_SLOT
        }
        slots = [
            {name: values[index] if index < len(values) else "" for name, values in columns.items()}
            for index in range(len(columns["controlnet_key"]))
        ]
        controls = []
        for number, slot in enumerate((slot for slot in slots if slot["controlnet_key"]), start=1):
            if number > MAX_CONTROLNETS:
                self.add_error(None, f"At most {MAX_CONTROLNETS} ControlNets.")
                break
            control: dict[str, Any] = {}
            for name, value in slot.items():
                try:
                    cleaned = _CONTROL_SLOT[name].clean(value)
                except forms.ValidationError as exc:
                    self.add_error(None, f"ControlNet {number}, {name.replace('_', ' ')}: {exc.messages[0]}")
                    continue
                control[_CONTROL_REQUEST[name]] = None if cleaned == "" else cleaned
            control["preprocessor"] = control.get("preprocessor") or ""
            controls.append(control)
        return tuple(controls)

    def to_request(self, *, last_step: GenerationStep | None, parent_id: int | None = None) -> StepRequest:
        data = self.cleaned_data
        seed = None
        if data["seed_mode"] == "fixed":
            seed = data["seed"]
        elif data["seed_mode"] == "reuse" and last_step is not None:
            seed = last_step.seed
        mode = data["mode"]
        return StepRequest(
            prompt=data["prompt"],
            negative_prompt=data["negative_prompt"],
            model_key=data["model_key"],
            width=data["width"],
            height=data["height"],
            steps=data["steps"],
            cfg_scale=data["cfg_scale"],
            guidance=data["guidance"],
            scheduler=data["scheduler"] or None,
            seed=seed,
            batch_size=data["batch_size"] or 1,
            mode=mode,
            parent_id=parent_id,
            init_photo_id=data["init_photo_id"] if mode != "txt2img" else None,
            mask_photo_id=data["mask_photo_id"] if mode == "inpaint" else None,
            strength=data["strength"] or DEFAULT_STRENGTH,
            vae_key=data["vae_key"] if "vae_key" in self.data else None,
            preset_id=data["preset_id"],
            clip_skip=data["clip_skip"],
            seamless={"x": data["seamless_x"], "y": data["seamless_y"]}
            if data["seamless_x"] or data["seamless_y"]
            else None,
            loras=self._loras(),
            controlnets=data["controlnets"],
            refiner=self._refiner(),
            outpaint=self._outpaint() if mode == "outpaint" else None,
            upscaler_key=data["upscaler_key"] if mode == "upscale" else "",
            t5_encoder_key=data["t5_encoder_key"],
            clip_embed_key=data["clip_embed_key"],
        )

    def _outpaint(self) -> dict[str, Any]:
        """The sides to extend by, or (when one is chosen) the aspect ratio to extend to."""
        data = self.cleaned_data
        chosen: dict[str, Any] = {"infill": data["infill"] or "tile"}
        if data["outpaint_aspect"]:
            return chosen | {"aspect_ratio": data["outpaint_aspect"]}
        return chosen | {side: data[f"outpaint_{side}"] or 0 for side in OUTPAINT_SIDES}

    def _loras(self) -> tuple[dict[str, Any], ...]:
        """The checked LoRAs, each with the weight beside it (`lora_weight_<key>`)."""
        loras = []
        posted = self.data
        keys = posted.getlist("lora") if isinstance(posted, QueryDict) else posted.get("lora", [])
        for key in keys:
            try:
                weight = float(self.data.get(f"lora_weight_{key}", ""))
            except ValueError:
                weight = None
            loras.append({"key": key, "weight": weight})
        return tuple(loras)

    def _refiner(self) -> dict[str, Any] | None:
        data = self.cleaned_data
        if "refiner_key" not in self.data:
            # The form had no refiner fields (not an SDXL model): the preset's, if any.
            return None
        if not data["refiner_key"]:
            return {}
        return {"key": data["refiner_key"]} | {
            name: data[f"refiner_{name}"]
            for name in ("start", "steps", "cfg_scale", "aesthetic_score", "negative_aesthetic_score")
        }

    def first_error(self) -> str:
        for field, errors in self.errors.items():
            label = "" if field == "__all__" else f"{field.replace('_', ' ')}: "
            return f"{label}{errors[0]}"
        return ""
