from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from backends.invokeai import graphs
from gallery_project.pagination import limit_field, offset_field

from . import presets, retrieval, selectors, services
from .models import CachedModel, GenerationSession, GenerationStep, ModelInstall, Preset, StepAlternative
from .models_cache import step_options_for


class CachedModelSerializer(serializers.ModelSerializer):
    step_options = serializers.SerializerMethodField(
        help_text='Effective step options: {"fixed_steps": N}, {"steps": {"min", "max", "default"}} or null.'
    )

    class Meta:
        model = CachedModel
        fields = [
            "key",
            "hash",
            "name",
            "type",
            "base",
            "format",
            "variant",
            "description",
            "source",
            "prediction_type",
            "trigger_phrases",
            "default_settings",
            "compatible_with_base",
            "is_default_vae",
            "is_favorite",
            "options",
            "step_options",
            "available",
            "last_used_at",
            "cached_at",
        ]
        read_only_fields = fields

    def get_step_options(self, model: CachedModel) -> dict[str, Any] | None:
        options = step_options_for(model)
        return options.as_dict() if options else None


class ModelListQuerySerializer(serializers.Serializer):
    type = serializers.CharField(required=False, allow_blank=True, default="")
    base = serializers.CharField(required=False, allow_blank=True, default="")
    include_unavailable = serializers.BooleanField(required=False, default=False)


class ModelUpdateSerializer(serializers.Serializer):
    is_favorite = serializers.BooleanField(required=False)
    options = serializers.JSONField(required=False)


class InstallCreateSerializer(serializers.Serializer):
    # The metaclass takes declared fields out of the class, so this shadows no Field.source; mypy cannot know.
    source = serializers.CharField(  # type: ignore[assignment]
        max_length=2000, help_text="An absolute path on InvokeAI's host, a URL, or a Hugging Face repo id."
    )
    name = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


class ModelInstallSerializer(serializers.ModelSerializer):
    percent = serializers.IntegerField(read_only=True)

    class Meta:
        model = ModelInstall
        fields = [
            "id",
            "source",
            "name",
            "status",
            "bytes",
            "total_bytes",
            "percent",
            "error_message",
            "model_key",
            "model_type",
            "model_base",
            "created_at",
            "updated_at",
            "finished_at",
        ]
        read_only_fields = fields


class PresetLoraSerializer(serializers.Serializer):
    key = serializers.CharField(max_length=64)
    weight = serializers.FloatField(min_value=-10, max_value=10, default=1.0)


class PresetRefinerSerializer(serializers.Serializer):
    model_key = serializers.CharField(max_length=64)
    steps = serializers.IntegerField(min_value=1, max_value=graphs.MAX_STEPS, required=False, allow_null=True)
    cfg_scale = serializers.FloatField(min_value=1, max_value=30, required=False, allow_null=True)
    start = serializers.FloatField(min_value=0.01, max_value=0.99, required=False, allow_null=True)


class PresetSerializer(serializers.ModelSerializer):
    """A preset as written and read; `problems` says what keeps it from being used now (empty: usable)."""

    loras = PresetLoraSerializer(many=True, required=False)
    embeddings = serializers.ListField(child=serializers.CharField(max_length=64), required=False, max_length=50)
    controlnets = serializers.ListField(child=serializers.CharField(max_length=64), required=False, max_length=20)
    refiner = serializers.JSONField(
        required=False, allow_null=True, help_text='{"model_key", "steps", "cfg_scale", "start"}, or null for none.'
    )
    steps = serializers.IntegerField(min_value=1, max_value=graphs.MAX_STEPS, required=False, allow_null=True)
    cfg_scale = serializers.FloatField(min_value=1, max_value=30, required=False, allow_null=True)
    clip_skip = serializers.IntegerField(min_value=0, max_value=12, required=False, allow_null=True)
    problems = serializers.SerializerMethodField()

    class Meta:
        model = Preset
        fields = [
            "id",
            "name",
            "model_key",
            "vae_key",
            "loras",
            "embeddings",
            "controlnets",
            "scheduler",
            "steps",
            "cfg_scale",
            "width",
            "height",
            "clip_skip",
            "refiner",
            "problems",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "problems", "created_at", "updated_at"]
        extra_kwargs = {"loras": {"max_length": 20}}

    def get_problems(self, preset: Preset) -> list[str]:
        # A list view passes every preset's problems, found with one query.
        known = self.context.get("problems")
        return known[preset.pk] if known is not None else presets.preset_problems(preset)

    def validate_refiner(self, value: Any) -> dict[str, Any]:
        if not value:
            return {}
        refiner = PresetRefinerSerializer(data=value)
        refiner.is_valid(raise_exception=True)
        return {name: item for name, item in refiner.validated_data.items() if item is not None}

    def to_representation(self, preset: Preset) -> dict[str, Any]:
        body = super().to_representation(preset)
        body["refiner"] = body["refiner"] or None
        return body

    def values(self) -> dict[str, Any]:
        data = dict(self.validated_data)
        if "loras" in data:
            data["loras"] = [dict(lora) for lora in data["loras"]]
        return data


class RefreshResultSerializer(serializers.Serializer):
    added = serializers.IntegerField()
    updated = serializers.IntegerField()
    unavailable = serializers.IntegerField()
    available = serializers.IntegerField()


# --- the studio ---


def photo_url(photo_id, part: str) -> str:
    return f"/api/photos/{photo_id}/{part}"


class ImageSerializer(serializers.Serializer):
    """One alternative of a step, as its photo stands: downloaded or not, chosen or not."""

    id = serializers.UUIDField(source="photo.id")
    item_id = serializers.IntegerField()
    index = serializers.IntegerField()
    seed = serializers.IntegerField(source="photo.seed", allow_null=True)
    selected = serializers.BooleanField()
    retrieval_status = serializers.CharField(source="photo.retrieval_status")
    retrieval_error = serializers.CharField(source="photo.retrieval_error")
    retrieval_attempts = serializers.IntegerField(source="photo.retrieval_attempts")
    next_retry_at = serializers.SerializerMethodField()
    width = serializers.IntegerField(source="photo.width")
    height = serializers.IntegerField(source="photo.height")
    thumbnail_url = serializers.SerializerMethodField()
    file_url = serializers.SerializerMethodField()
    display_url = serializers.SerializerMethodField()

    def get_next_retry_at(self, alternative: StepAlternative) -> datetime | None:
        return retrieval.next_retry_at(alternative.photo)

    def _url(self, alternative: StepAlternative, part: str) -> str | None:
        return photo_url(alternative.photo_id, part) if alternative.photo.is_available else None

    def get_thumbnail_url(self, alternative: StepAlternative) -> str | None:
        return self._url(alternative, "thumbnail")

    def get_file_url(self, alternative: StepAlternative) -> str | None:
        return self._url(alternative, "file")

    def get_display_url(self, alternative: StepAlternative) -> str | None:
        return self._url(alternative, "display")


class LiveItemSerializer(serializers.Serializer):
    item_id = serializers.IntegerField()
    index = serializers.IntegerField(help_text="The item's place in the batch (the image's, once it is made).")
    percent = serializers.IntegerField(help_text="Its denoising, 0 to 100, from InvokeAI's progress events.")
    message = serializers.CharField(help_text="What InvokeAI is doing: Loading model, Denoising...")
    preview_url = serializers.CharField(
        allow_null=True, help_text="The latest denoising preview (JPEG); it changes with each preview."
    )


class StepProgressSerializer(serializers.Serializer):
    percent = serializers.IntegerField(
        help_text="0 to 100; moves with each denoising step of the running images (InvokeAI's progress events), "
        "not only when an image finishes. 100 once the step has completed."
    )
    images_finished = serializers.IntegerField(help_text="Images InvokeAI has finished (made, failed or cancelled).")
    images_total = serializers.IntegerField()
    items = LiveItemSerializer(
        many=True, help_text="Each image InvokeAI is working on now (running steps only), with its latest preview."
    )


class RetrievalStatsSerializer(serializers.Serializer):
    pending = serializers.IntegerField()
    completed = serializers.IntegerField()
    failed = serializers.IntegerField()


class StepSerializer(serializers.ModelSerializer):
    session_id = serializers.IntegerField()
    parent_id = serializers.IntegerField(allow_null=True)
    preset_id = serializers.IntegerField(allow_null=True)
    cancel_requested = serializers.SerializerMethodField()
    images = ImageSerializer(source="alternatives", many=True)
    items = serializers.SerializerMethodField(
        help_text="Each InvokeAI queue item that has finished: status completed, failed, canceled or lost."
    )
    retrieval_stats = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    status_url = serializers.SerializerMethodField()

    class Meta:
        model = GenerationStep
        fields = [
            "id",
            "session_id",
            "parent_id",
            "preset_id",
            "position",
            "status",
            "progress",
            "prompt",
            "negative_prompt",
            "parameters",
            "model_key",
            "model_hash",
            "model_name",
            "batch_size",
            "backend_url",
            "batch_id",
            "item_ids",
            "items",
            "images",
            "images_retrieved",
            "images_failed",
            "retrieval_stats",
            "error_message",
            "cancel_requested",
            "created_at",
            "started_at",
            "completed_at",
            "status_url",
        ]
        read_only_fields = fields

    def get_cancel_requested(self, step: GenerationStep) -> bool:
        return step.cancel_requested_at is not None

    def get_items(self, step: GenerationStep) -> list[dict[str, Any]]:
        return [
            {"item_id": item_id, **step.item_results[str(item_id)]}
            for item_id in step.item_ids
            if str(item_id) in step.item_results
        ]

    @extend_schema_field(StepProgressSerializer)
    def get_progress(self, step: GenerationStep) -> dict[str, Any]:
        return asdict(selectors.step_progress(step=step))

    @extend_schema_field(RetrievalStatsSerializer)
    def get_retrieval_stats(self, step: GenerationStep) -> dict[str, int]:
        return asdict(selectors.retrieval_stats(step=step))

    def get_status_url(self, step: GenerationStep) -> str:
        return f"/api/generation/steps/{step.pk}/status"


class StepCheckSerializer(serializers.Serializer):
    warnings = serializers.ListField(
        child=serializers.CharField(), help_text="What InvokeAI would silently ignore, e.g. an unknown <embedding>."
    )


class StepAcceptedSerializer(StepCheckSerializer):
    id = serializers.IntegerField()
    session_id = serializers.IntegerField()
    batch_id = serializers.CharField()
    status = serializers.CharField()
    status_url = serializers.CharField()


class SessionSerializer(serializers.ModelSerializer):
    source_image_id = serializers.UUIDField(allow_null=True)
    step_count = serializers.IntegerField(default=None)

    class Meta:
        model = GenerationSession
        fields = [
            "id",
            "entry_type",
            "source_image_id",
            "title",
            "status",
            "step_count",
            "created_at",
            "updated_at",
            "completed_at",
        ]
        read_only_fields = fields


class SessionDetailSerializer(SessionSerializer):
    steps = serializers.SerializerMethodField()

    class Meta(SessionSerializer.Meta):
        fields = [*SessionSerializer.Meta.fields, "steps"]
        read_only_fields = fields

    @extend_schema_field(StepSerializer(many=True))
    def get_steps(self, session: GenerationSession) -> Any:
        return StepSerializer(selectors.session_steps(session=session), many=True).data


class SessionListQuerySerializer(serializers.Serializer):
    limit = limit_field(maximum=selectors.MAX_SESSIONS)
    offset = offset_field()
    status = serializers.ChoiceField(choices=GenerationSession.Status.choices, required=False)


class SessionCreateSerializer(serializers.Serializer):
    entry_type = serializers.ChoiceField(choices=GenerationSession.EntryType.choices, required=False)
    source_image_id = serializers.UUIDField(required=False, allow_null=True)
    title = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if data.get("entry_type") == GenerationSession.EntryType.PHOTO and not data.get("source_image_id"):
            raise serializers.ValidationError({"source_image_id": "A session from a photo needs the photo's id."})
        data.pop("entry_type", None)
        return data


class SessionUpdateSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=[GenerationSession.Status.COMPLETED, GenerationSession.Status.ABANDONED], required=False
    )
    title = serializers.CharField(required=False, allow_blank=True, max_length=200)


class StepLoraSerializer(serializers.Serializer):
    key = serializers.CharField(max_length=64)
    weight = serializers.FloatField(
        required=False, allow_null=True, help_text="Omit for the LoRA's default weight from InvokeAI."
    )


class StepRefinerSerializer(serializers.Serializer):
    key = serializers.CharField(max_length=64, help_text="An installed SDXL refiner (base sdxl-refiner).")
    start = serializers.FloatField(required=False, allow_null=True, help_text="Fraction where it takes over.")
    steps = serializers.IntegerField(required=False, allow_null=True)
    cfg_scale = serializers.FloatField(required=False, allow_null=True)
    scheduler = serializers.ChoiceField(choices=graphs.SCHEDULERS, required=False, allow_null=True)
    aesthetic_score = serializers.FloatField(required=False, allow_null=True, min_value=1, max_value=10)
    negative_aesthetic_score = serializers.FloatField(required=False, allow_null=True, min_value=1, max_value=10)


class StepSeamlessSerializer(serializers.Serializer):
    x = serializers.BooleanField(default=False)
    y = serializers.BooleanField(default=False)


def _optional_key(help_text: str) -> serializers.CharField:
    """A model key the body may leave out (or empty), for the default `help_text` names."""
    return serializers.CharField(max_length=64, required=False, allow_blank=True, default="", help_text=help_text)


class StepControlNetSerializer(serializers.Serializer):
    key = _optional_key("An installed ControlNet; omit for the preset's ControlNet at this place in its list.")
    photo_id = serializers.UUIDField(
        required=False, allow_null=True, help_text="The control image: a gallery photo or an upload (category control)."
    )
    preprocessor = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text=f"Empty for none, else an InvokeAI node type: {', '.join(graphs.PREPROCESSORS)}.",
    )
    weight = serializers.FloatField(required=False, allow_null=True)
    begin = serializers.FloatField(required=False, allow_null=True, help_text="Step fraction where it starts.")
    end = serializers.FloatField(required=False, allow_null=True, help_text="Step fraction where it ends.")
    control_mode = serializers.CharField(required=False, allow_null=True, help_text=" | ".join(graphs.CONTROL_MODES))
    resize_mode = serializers.CharField(required=False, allow_null=True, help_text=" | ".join(graphs.RESIZE_MODES))


class StepOutpaintSerializer(serializers.Serializer):
    left = serializers.IntegerField(min_value=0, max_value=graphs.MAX_OUTPAINT, default=0)
    right = serializers.IntegerField(min_value=0, max_value=graphs.MAX_OUTPAINT, default=0)
    top = serializers.IntegerField(min_value=0, max_value=graphs.MAX_OUTPAINT, default=0)
    bottom = serializers.IntegerField(min_value=0, max_value=graphs.MAX_OUTPAINT, default=0)
    infill = serializers.ChoiceField(
        choices=list(graphs.INFILLS),
        default="tile",
        help_text="How the new area is filled before it is regenerated. patchmatch only where InvokeAI says it has "
        "PatchMatch (else 400 infill_unavailable); lama downloads its model the first time it runs, so it fails on "
        "an InvokeAI without internet until that model is there.",
    )
    aspect_ratio = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=20,
        help_text="Instead of the sides: the width:height to extend the photo to, centred (e.g. 16:9, 1:1, 9:16, "
        "4:3, 3:2), between 1:4 and 4:1; the canvas is kept in the base's multiple (8 px, 16 for FLUX).",
    )


class StepCreateSerializer(serializers.Serializer):
    """The flat body of a new step, as the spec's integration test sends it."""

    prompt = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")
    negative_prompt = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")
    model_key = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    model_hash = serializers.CharField(required=False, allow_blank=True, max_length=255, default="")
    width = serializers.IntegerField(required=False, allow_null=True)
    height = serializers.IntegerField(required=False, allow_null=True)
    steps = serializers.IntegerField(required=False, allow_null=True)
    cfg_scale = serializers.FloatField(required=False, allow_null=True)
    guidance = serializers.FloatField(required=False, allow_null=True)
    scheduler = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    seed = serializers.IntegerField(required=False, allow_null=True, help_text="Omit for a random seed.")
    batch_size = serializers.IntegerField(required=False, min_value=1, default=1)
    mode = serializers.ChoiceField(choices=services.MODES, default="txt2img")
    parent_id = serializers.IntegerField(required=False, allow_null=True)
    init_photo_id = serializers.UUIDField(required=False, allow_null=True)
    mask_photo_id = serializers.UUIDField(required=False, allow_null=True)
    strength = serializers.FloatField(required=False, default=graphs.DEFAULT_STRENGTH)
    vae_key = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, help_text="Omit for the model's default; empty for its own."
    )
    clip_skip = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=12)
    preset_id = serializers.IntegerField(
        required=False, allow_null=True, help_text="A preset of yours: it fills what the body leaves out."
    )
    loras = serializers.ListField(
        child=StepLoraSerializer(),
        required=False,
        allow_null=True,
        max_length=20,
        help_text="Omit for the preset's; [] for none.",
    )
    refiner = StepRefinerSerializer(
        required=False, allow_null=True, help_text="SDXL only. Omit for the preset's; null for none."
    )
    seamless = StepSeamlessSerializer(required=False, allow_null=True)
    controlnets = serializers.ListField(
        child=StepControlNetSerializer(),
        required=False,
        max_length=8,
        help_text='Omit for the preset\'s (each needs its photo_id, so give [{"photo_id": …}] for them); [] for none.',
    )
    outpaint = StepOutpaintSerializer(
        required=False,
        allow_null=True,
        help_text='mode "outpaint": px to add on each side, or an aspect_ratio to extend to; and the infill.',
    )
    upscaler_key = _optional_key('mode "upscale": a spandrel model.')
    t5_encoder_key = _optional_key("FLUX only: an installed T5 encoder; omit for the default. (Its VAE is vae_key.)")
    clip_embed_key = _optional_key("FLUX only: an installed CLIP-embed (CLIP-L) model; omit for the default.")

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if data.get("mode") == "upscale":
            if not data.get("upscaler_key"):
                raise serializers.ValidationError({"upscaler_key": "Choose an upscaler model."})
            return data
        if not data.get("model_key") and not data.get("preset_id"):
            raise serializers.ValidationError({"model_key": "Choose a model (or a preset)."})
        return data

    def to_request(self) -> services.StepRequest:
        data = dict(self.validated_data)
        data["scheduler"] = data.get("scheduler") or None
        if data.get("loras") is not None:
            data["loras"] = tuple(dict(lora) for lora in data["loras"])
        if "refiner" in data:
            # Said as null: no refiner, even if the preset has one.
            data["refiner"] = dict(data["refiner"]) if data["refiner"] else {}
        if data.get("seamless") is not None:
            data["seamless"] = dict(data["seamless"])
        if "controlnets" in data:
            data["controlnets"] = tuple(dict(control) for control in data["controlnets"])
        if data.get("outpaint") is not None:
            data["outpaint"] = dict(data["outpaint"])
        return services.StepRequest(**data)


class StepSelectSerializer(serializers.Serializer):
    image_id = serializers.UUIDField()


class RetriedSerializer(serializers.Serializer):
    stored = serializers.IntegerField()
    step = StepSerializer()
