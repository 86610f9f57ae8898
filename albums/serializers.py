from __future__ import annotations

import uuid

from django.urls import reverse
from django.utils import timezone
from rest_framework import serializers

from photos.selectors import UNCATEGORIZED
from photos.serializers import MAX_PHOTO_IDS, PhotoIdsSerializer

from .models import Album, ShareLink
from .services import EXPIRY_PRESETS


class AlbumSerializer(serializers.ModelSerializer):
    photo_count = serializers.IntegerField(read_only=True)
    cover_photo_id = serializers.UUIDField(read_only=True, allow_null=True, help_text="The chosen cover, if any.")
    cover_thumbnail_url = serializers.SerializerMethodField(
        help_text="The cover shown: the chosen one, else the album's first photo."
    )
    page_url = serializers.SerializerMethodField()

    class Meta:
        model = Album
        fields = [
            "id",
            "name",
            "description",
            "is_archived",
            "photo_count",
            "cover_photo_id",
            "cover_thumbnail_url",
            "page_url",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    # Album, not selectors.AnnotatedAlbum: drf-spectacular reads these hints at run time, where that type is not.
    def get_cover_thumbnail_url(self, album: Album) -> str | None:
        cover_id = album.cover_id  # type: ignore[attr-defined]  # annotated by selectors.albums_annotated
        return reverse("photo-thumbnail", kwargs={"pk": cover_id}) if cover_id else None

    def get_page_url(self, album: Album) -> str:
        return reverse("albums:detail", kwargs={"album_id": album.pk})


class AlbumDetailSerializer(AlbumSerializer):
    photo_ids = serializers.SerializerMethodField(help_text="The album's photos, in order.")

    class Meta(AlbumSerializer.Meta):
        fields = [*AlbumSerializer.Meta.fields, "photo_ids"]
        read_only_fields = fields

    def get_photo_ids(self, album: Album) -> list[str]:
        return [str(pk) for pk in self.context["photo_ids"]]


class AlbumCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(allow_blank=True, default="")


class AlbumUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(allow_blank=True, required=False)
    is_archived = serializers.BooleanField(required=False)
    cover_photo_id = serializers.UUIDField(
        required=False, allow_null=True, help_text="A photo of the album, or null for its first photo."
    )


def _album_or_uncategorized(value: str) -> uuid.UUID | None:
    if value == UNCATEGORIZED:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise serializers.ValidationError("Must be an album id or “none”.") from None


class AlbumMoveSerializer(PhotoIdsSerializer):
    from_album_id = serializers.CharField(help_text="The album the photos leave, or `none` (Uncategorized).")
    to_album_id = serializers.CharField(help_text="The album they go to, or `none`: they then leave every album.")

    def validate_from_album_id(self, value: str) -> uuid.UUID | None:
        return _album_or_uncategorized(value)

    def validate_to_album_id(self, value: str) -> uuid.UUID | None:
        return _album_or_uncategorized(value)


class ShareLinkCreateSerializer(serializers.Serializer):
    expires_in = serializers.ChoiceField(
        choices=list(EXPIRY_PRESETS),
        required=False,
        help_text="A preset; or give `expires_at`.",
        error_messages={"invalid_choice": f"Use one of {', '.join(EXPIRY_PRESETS)}, or give expires_at instead."},
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    max_views = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)
    max_downloads = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)
    allow_download = serializers.BooleanField(default=False)
    show_details = serializers.BooleanField(default=False, help_text="Show prompts and other generation details.")
    password = serializers.CharField(
        required=False, allow_blank=True, default="", trim_whitespace=False, write_only=True
    )

    def validate(self, data: dict) -> dict:
        preset = data.pop("expires_in", None)
        if preset is not None:
            if data.get("expires_at") is not None:
                raise serializers.ValidationError("Give expires_in or expires_at, not both.")
            _, delta = EXPIRY_PRESETS[preset]
            data["expires_at"] = timezone.now() + delta if delta else None
        return data


class ShareLinkSerializer(serializers.ModelSerializer):
    album_id = serializers.UUIDField(read_only=True, allow_null=True)
    photo_id = serializers.UUIDField(read_only=True, allow_null=True)
    target_name = serializers.SerializerMethodField()
    has_password = serializers.BooleanField(read_only=True)
    status = serializers.ChoiceField(choices=ShareLink.Status.choices, read_only=True)

    class Meta:
        model = ShareLink
        fields = [
            "id",
            "album_id",
            "photo_id",
            "target_name",
            "status",
            "created_at",
            "expires_at",
            "revoked_at",
            "max_views",
            "view_count",
            "max_downloads",
            "download_count",
            "allow_download",
            "show_details",
            "has_password",
        ]
        read_only_fields = fields

    def get_target_name(self, link: ShareLink) -> str:
        return link.album.name if link.album else ((link.photo and link.photo.filename) or "Photo")


class ShareLinkCreatedSerializer(ShareLinkSerializer):
    url = serializers.SerializerMethodField(help_text="The full link. It is shown this once and never again.")

    class Meta(ShareLinkSerializer.Meta):
        fields = ["url", *ShareLinkSerializer.Meta.fields]
        read_only_fields = fields

    def get_url(self, link: ShareLink) -> str:
        return self.context["url"]


class ShareLinkListQuerySerializer(serializers.Serializer):
    active = serializers.BooleanField(default=False, help_text="Only links that still work.")
    album_id = serializers.UUIDField(required=False, default=None)
    photo_id = serializers.UUIDField(required=False, default=None)


class BoardImportSerializer(serializers.Serializer):
    board_ids = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        allow_null=True,
        default=None,
        help_text="InvokeAI board ids (`none` for its uncategorized images); every board when omitted.",
    )
    sync = serializers.BooleanField(required=False, default=False, help_text="Keep importing their new images.")


class BoardSendSerializer(serializers.Serializer):
    photo_ids = serializers.ListField(
        child=serializers.UUIDField(), required=False, default=list, max_length=MAX_PHOTO_IDS
    )
    board_id = serializers.CharField(required=False, default="", allow_blank=True, max_length=64)
    board_name = serializers.CharField(required=False, default="", allow_blank=True, max_length=300)
