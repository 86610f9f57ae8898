from __future__ import annotations

import uuid

from django.urls import reverse
from django.utils.functional import cached_property
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from gallery_project.pagination import limit_field, offset_field

from . import selectors, services
from .models import Photo

# Enough for any selection a person makes by hand; a bound on what one request makes the server do.
MAX_PHOTO_IDS = 20_000


class PhotoSerializer(serializers.ModelSerializer):
    source_image_id = serializers.UUIDField(read_only=True, allow_null=True)
    file_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    display_url = serializers.SerializerMethodField()

    class Meta:
        model = Photo
        fields = [
            "id",
            "filename",
            "width",
            "height",
            "file_size",
            "mime_type",
            "checksum",
            "image_category",
            "is_generated",
            "is_favorite",
            "generation_prompt",
            "generation_negative_prompt",
            "generation_params",
            "seed",
            "source_image_id",
            "invoke_id",
            "model_key",
            "model_hash",
            "model_name",
            "retrieval_status",
            "retrieval_attempts",
            "last_retrieval_attempt",
            "retrieval_error",
            "taken_at",
            "created_at",
            "deleted_at",
            "file_url",
            "thumbnail_url",
            "display_url",
        ]
        read_only_fields = fields

    @cached_property
    def _url_prefix(self) -> str:
        # One reverse() per list instead of three per row: it was a third of the list's serialization time.
        return reverse("photo-list").rstrip("/") + "/"

    def get_file_url(self, photo: Photo) -> str:
        return f"{self._url_prefix}{photo.pk}/file"

    def get_thumbnail_url(self, photo: Photo) -> str:
        return f"{self._url_prefix}{photo.pk}/thumbnail"

    def get_display_url(self, photo: Photo) -> str:
        return f"{self._url_prefix}{photo.pk}/display"


class PhotoCreatedSerializer(PhotoSerializer):
    """A new photo, with the ids of live photos that have the same bytes (given in the context)."""

    duplicate_of = serializers.SerializerMethodField()

    class Meta(PhotoSerializer.Meta):
        fields = [*PhotoSerializer.Meta.fields, "duplicate_of"]
        read_only_fields = fields

    def get_duplicate_of(self, photo: Photo) -> list[str]:
        return [str(pk) for pk in self.context.get("duplicate_of", [])]


class StackSerializer(serializers.Serializer):
    step_id = serializers.IntegerField(help_text="The studio step; `GET /api/photos/?stack=<step_id>` lists them.")
    count = serializers.IntegerField(help_text="Its alternatives that the list's filters keep.")


class PhotoListItemSerializer(PhotoSerializer):
    stack = serializers.SerializerMethodField(
        help_text="Set when this photo stands for the alternatives of a studio step none of which is chosen yet "
        "(`alternatives=stacked`, the default): the step and how many they are. Null for every other photo."
    )

    class Meta(PhotoSerializer.Meta):
        fields = [*PhotoSerializer.Meta.fields, "stack"]
        read_only_fields = fields

    @extend_schema_field(StackSerializer(allow_null=True))
    def get_stack(self, photo: Photo) -> dict[str, int] | None:
        size = getattr(photo, "stack_size", None)
        if not size or size < 2:
            return None
        return {"step_id": photo.stack_step, "count": size}  # type: ignore[attr-defined]  # annotated with stack_size


class PhotoPageSerializer(serializers.Serializer):
    items = PhotoListItemSerializer(many=True)
    total = serializers.IntegerField()
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()
    next_cursor = serializers.CharField(allow_null=True)


class PhotoListQuerySerializer(serializers.Serializer):
    limit = limit_field(maximum=selectors.MAX_LIMIT)
    offset = offset_field()
    generated = serializers.BooleanField(required=False, allow_null=True, default=None)
    favorite = serializers.BooleanField(required=False, allow_null=True, default=None)
    sort = serializers.ChoiceField(
        choices=[*selectors.SORTS, selectors.RELEVANCE],
        required=False,
        help_text="`taken`/`taken_oldest`: by date taken (the timeline); `newest`/`oldest`: by date added; "
        "`relevance`: the best matches of `q` first. Default: `relevance` with `q`, else `newest`.",
    )
    cursor = serializers.CharField(required=False, allow_blank=True, default="")
    q = serializers.CharField(
        required=False,
        default="",
        max_length=200,
        help_text="Words to find in the prompt, negative prompt, file name or model name (each the start of a word).",
    )
    taken_after = serializers.DateField(required=False, allow_null=True, default=None, help_text="Taken on or after.")
    taken_before = serializers.DateField(required=False, allow_null=True, default=None, help_text="Taken on or before.")
    tool = serializers.CharField(
        required=False, default="", max_length=50, help_text="The tool that made it (`generation_params.source`)."
    )
    model = serializers.CharField(required=False, default="", max_length=255, help_text="The model's name.")
    seed = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=0, max_value=2**63 - 1)
    from_day = serializers.DateField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Start at this day (YYYY-MM-DD, in TIME_ZONE) in the list's order: a jump to a date.",
    )
    album_id = serializers.CharField(
        required=False,
        allow_blank=True,
        default=None,
        help_text="An album's id (its photos in the album's order), or `none` for photos in no album.",
    )
    alternatives = serializers.ChoiceField(
        choices=selectors.ALTERNATIVES,
        required=False,
        default=selectors.STACKED,
        help_text="Of a studio step's alternatives, `stacked` (the default, as the gallery's grid) lists the chosen "
        "one only, or while none is chosen the first one, with `stack` set; `all` lists every one. "
        "An album always lists every photo.",
    )
    stack = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=1,
        help_text="A studio step's id (a photo's `stack.step_id`): its alternatives, every one.",
    )

    def validate(self, attrs: dict) -> dict:
        attrs.setdefault("sort", selectors.RELEVANCE if attrs.get("q") else "newest")
        return attrs

    def validate_album_id(self, value: str | None) -> uuid.UUID | str | None:
        if not value:
            return None
        if value == selectors.UNCATEGORIZED:
            return value
        try:
            return uuid.UUID(value)
        except ValueError:
            raise serializers.ValidationError("Must be an album id or “none”.") from None


class PhotoUploadSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True)
    image_category = serializers.ChoiceField(choices=Photo.Category.choices, default=Photo.Category.USER)


class PhotoIdsSerializer(serializers.Serializer):
    photo_ids = serializers.ListField(child=serializers.UUIDField(), allow_empty=False, max_length=MAX_PHOTO_IDS)


class PhotoBulkSerializer(PhotoIdsSerializer):
    action = serializers.ChoiceField(choices=[action.value for action in services.BulkAction])


class PhotoFavoriteSerializer(serializers.Serializer):
    is_favorite = serializers.BooleanField()
