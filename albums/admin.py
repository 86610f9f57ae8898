from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html

from gallery_project.permissions import OwnedAdmin
from photos.admin import ADMIN_CSS, thumbnail_html

from . import selectors, services
from .models import Album, AlbumPhoto, ShareLink

_ALBUM_PHOTO_INLINE_FIELDS = (
    "preview",
    "photo_link",
    "position",
    "added_at",
)


class AlbumPhotoInline(admin.TabularInline):
    """The album's photos in order. Read-only apart from removing: adding and ordering happen in the app, and
    a raw-id widget would look each photo up again (one query per row)."""

    model = AlbumPhoto
    extra = 0
    can_delete = True
    fields = _ALBUM_PHOTO_INLINE_FIELDS
    readonly_fields = _ALBUM_PHOTO_INLINE_FIELDS
    ordering = ["position", "id"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("photo")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="")
    def preview(self, entry: AlbumPhoto) -> str:
        return thumbnail_html(entry.photo_id) if entry.photo.is_available else "—"

    @admin.display(description="Photo")
    def photo_link(self, entry: AlbumPhoto) -> str:
        trashed = " (in the trash)" if entry.photo.deleted_at else ""
        return format_html('<a href="/admin/photos/photo/{}/change/">{}</a>{}', entry.photo_id, entry.photo, trashed)


@admin.register(Album)
class AlbumAdmin(OwnedAdmin):
    list_display = ["cover", "name", "photo_count", "is_archived", "created_at", "updated_at"]
    list_filter = ["is_archived"]
    search_fields = ["name", "description", "=id"]
    readonly_fields = ["id", "created_at", "updated_at"]
    raw_id_fields = ["cover_photo"]
    inlines = [AlbumPhotoInline]

    class Media:
        css = ADMIN_CSS

    def get_queryset(self, request):
        # Counts and covers come annotated with the album rows: one query for the whole changelist.
        return selectors.albums_annotated(super().get_queryset(request))

    @admin.display(description="")
    def cover(self, album: selectors.AnnotatedAlbum) -> str:
        return thumbnail_html(album.cover_id) if album.cover_id else "—"

    @admin.display(description="Photos", ordering="photo_count")
    def photo_count(self, album: selectors.AnnotatedAlbum) -> int:
        return album.photo_count


_SHARE_LINK_ADMIN_FIELDS = (
    "id",
    "album",
    "photo",
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
)


@admin.register(ShareLink)
class ShareLinkAdmin(OwnedAdmin):
    """Links are created in the app, which shows the token once; here they can be looked at and revoked."""

    list_display = [
        "__str__",
        "status_label",
        "created_at",
        "expires_at",
        "view_count",
        "max_views",
        "download_count",
        "max_downloads",
        "has_password",
    ]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), "allow_download"]
    list_select_related = ["album", "photo"]
    fields = _SHARE_LINK_ADMIN_FIELDS
    readonly_fields = _SHARE_LINK_ADMIN_FIELDS
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="Status")
    def status_label(self, link: ShareLink) -> str:
        return link.status_label

    @admin.display(description="Password", boolean=True)
    def has_password(self, link: ShareLink) -> bool:
        return link.has_password

    @admin.action(description="Revoke the selected links")
    def revoke(self, request, queryset) -> None:
        for link_id, owner_id in queryset.filter(revoked_at=None).values_list("id", "owner"):
            services.share_link_revoke(link_id=link_id, owner=owner_id)
        self.message_user(request, "The links are revoked: they and every URL they served answer 404.")
