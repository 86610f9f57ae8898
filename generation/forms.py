"""The studio's step form: parses what the page posts into a `StepRequest`; the service does the validating."""

from __future__ import annotations

from typing import Any

from django import forms

from backends.invokeai.graphs import DEFAULT_STRENGTH, SEED_MAX

from .models import GenerationStep
from .services import MODES, StepRequest

SEED_MODES = (("random", "Random"), ("fixed", "Fixed"), ("reuse", "Reuse last"))


class StepForm(forms.Form):
    model_key = forms.CharField(max_length=64)
    prompt = forms.CharField(
        max_length=5000, error_messages={"required": "Write a prompt: it is what the image will show."}
    )
    negative_prompt = forms.CharField(max_length=5000, required=False)
    mode = forms.ChoiceField(choices=[(mode, mode) for mode in MODES], initial="txt2img")
    width = forms.IntegerField(required=False)
    height = forms.IntegerField(required=False)
    steps = forms.IntegerField(required=False)
    cfg_scale = forms.FloatField(required=False)
    guidance = forms.FloatField(required=False)
    scheduler = forms.CharField(required=False)
    seed_mode = forms.ChoiceField(choices=SEED_MODES, initial="random")
    seed = forms.IntegerField(required=False, min_value=0, max_value=SEED_MAX)
    batch_size = forms.IntegerField(min_value=1, initial=4)
    init_photo_id = forms.UUIDField(required=False)
    mask_photo_id = forms.UUIDField(required=False)
    strength = forms.FloatField(required=False, min_value=0.01, max_value=1)
    vae_key = forms.CharField(required=False)
    preset_id = forms.IntegerField(required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("seed_mode") == "fixed" and data.get("seed") is None:
            self.add_error("seed", "Enter the seed to use, or choose Random.")
        return data

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
            batch_size=data["batch_size"],
            mode=mode,
            parent_id=parent_id,
            init_photo_id=data["init_photo_id"] if mode != "txt2img" else None,
            mask_photo_id=data["mask_photo_id"] if mode == "inpaint" else None,
            strength=data["strength"] or DEFAULT_STRENGTH,
            vae_key=data["vae_key"] if "vae_key" in self.data else None,
            preset_id=data["preset_id"],
        )

    def first_error(self) -> str:
        for field, errors in self.errors.items():
            label = "" if field == "__all__" else f"{field.replace('_', ' ')}: "
            return f"{label}{errors[0]}"
        return ""
