from __future__ import annotations

from typing import Any

from rest_framework import serializers

from .models import CachedModel
from .models_cache import step_options_for


class CachedModelSerializer(serializers.ModelSerializer):
    default_settings = serializers.SerializerMethodField()
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

    def get_default_settings(self, model: CachedModel) -> dict[str, Any]:
        return {
            "width": model.default_width,
            "height": model.default_height,
            "steps": model.default_steps,
            "cfg_scale": model.default_cfg_scale,
            "scheduler": model.default_scheduler or None,
            "guidance": model.default_guidance,
            "vae": model.default_vae or None,
        }

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


class RefreshResultSerializer(serializers.Serializer):
    added = serializers.IntegerField()
    updated = serializers.IntegerField()
    unavailable = serializers.IntegerField()
    available = serializers.IntegerField()
