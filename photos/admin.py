from django.contrib import admin
from django.http import Http404, HttpRequest, HttpResponseBase
from django.urls import path, reverse
from django.utils.html import format_html

from gallery_project.permissions import OwnedAdmin

from . import services
from .api import serve_photo_file
from .models import Photo

# Sizes the thumbnails below: the Content-Security-Policy allows no style attributes.
ADMIN_CSS = {"all": ["css/admin.css"]}


def thumbnail_html(photo_id) -> str:
    """A photo's grid thumbnail for admin lists (the albums admin shows them too; both load ADMIN_CSS). Served
    by the admin: the API serves only the acting user's own photos, and a superuser here sees everyone's."""
    return format_html(
        '<img src="{}" class="admin-thumbnail" alt="">', reverse("admin:photos_photo_thumbnail", args=[photo_id])
    )


@admin.register(Photo)
class PhotoAdmin(OwnedAdmin):
    list_display = [
        "preview",
        "filename",
        "is_generated",
        "image_category",
        "dimensions",
        "file_size",
        "retrieval_status",
        "created_at",
        "deleted_at",
    ]
    list_filter = [
        "is_generated",
        "image_category",
        "retrieval_status",
        "is_favorite",
        ("deleted_at", admin.EmptyFieldListFilter),
    ]
    search_fields = ["filename", "generation_prompt", "checksum", "invoke_id", "model_name", "=id"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    list_per_page = 50
    # The changelist shows no relations, so it runs one query per page whatever the row count.
    show_full_result_count = False
    raw_id_fields = ["source_image"]
    readonly_fields = [
        "id",
        "preview_large",
        "checksum",
        "file_size",
        "mime_type",
        "width",
        "height",
        "local_storage_path",
        "local_thumbnail_path",
        "created_at",
    ]
    actions = ["move_to_trash", "restore_from_trash"]

    class Media:
        css = ADMIN_CSS

    def get_urls(self):
        thumbnail = self.admin_site.admin_view(self.thumbnail_view)
        return [path("<uuid:pk>/thumbnail/", thumbnail, name="photos_photo_thumbnail"), *super().get_urls()]

    def thumbnail_view(self, request: HttpRequest, pk) -> HttpResponseBase:
        """The thumbnail for admin pages: the API serves only the acting user's own photos, and a superuser
        here sees every account's."""
        photo = self.get_object(request, str(pk))
        if photo is None or not self.has_view_permission(request, photo):
            raise Http404
        return serve_photo_file(request, photo, photo.local_thumbnail_path, "image/webp", "thumbnail")

    def delete_model(self, request, obj: Photo) -> None:
        # The stock delete removes the row only; the files must go too, and only once the delete commits.
        services.photo_purge(photo_ids=[obj.pk], only_trashed=False)

    def delete_queryset(self, request, queryset) -> None:
        services.photo_purge(photo_ids=list(queryset.values_list("pk", flat=True)), only_trashed=False)

    @admin.display(description="")
    def preview(self, photo: Photo) -> str:
        if not photo.is_available:
            return "—"
        return thumbnail_html(photo.pk)

    @admin.display(description="Preview")
    def preview_large(self, photo: Photo) -> str:
        if not photo.is_available:
            return "—"
        return format_html(
            '<img src="{}" class="admin-preview" alt="">', reverse("admin:photos_photo_thumbnail", args=[photo.pk])
        )

    @admin.display(description="Size")
    def dimensions(self, photo: Photo) -> str:
        return f"{photo.width} x {photo.height}"

    @admin.action(description="Move selected photos to the trash")
    def move_to_trash(self, request, queryset) -> None:
        for photo in queryset.select_related("owner"):
            services.photo_delete(photo_id=photo.pk, owner=photo.owner)

    @admin.action(description="Restore selected photos from the trash")
    def restore_from_trash(self, request, queryset) -> None:
        for photo in queryset.select_related("owner"):
            services.photo_restore(photo_id=photo.pk, owner=photo.owner)
