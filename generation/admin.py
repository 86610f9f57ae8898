from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from gallery_project.errors import AppError
from gallery_project.permissions import OwnedAdmin

from .models import (
    CachedModel,
    GenerationSession,
    GenerationStep,
    ModelInstall,
    Preset,
    StepAlternative,
    StudioPreference,
)
from .models_cache import models_refresh, step_options_for


@admin.register(CachedModel)
class CachedModelAdmin(admin.ModelAdmin):
    change_list_template = "admin/generation/cachedmodel/change_list.html"
    list_display = [
        "name",
        "type",
        "base",
        "available",
        "is_favorite",
        "is_default_vae",
        "steps",
        "last_used_at",
    ]
    list_filter = ["available", "type", "base", "compatible_with_base", "is_favorite"]
    search_fields = ["name", "key", "hash", "source"]
    list_editable = ["is_favorite"]
    ordering = ["-available", "type", "name"]
    fields = [
        "name",
        "is_favorite",
        "options",
        "key",
        "hash",
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
        "available",
        "default_width",
        "default_height",
        "default_steps",
        "default_cfg_scale",
        "default_scheduler",
        "default_guidance",
        "default_vae",
        "last_used_at",
        "cached_at",
    ]
    # Everything but the app's own settings comes from InvokeAI and is overwritten by the next refresh.
    readonly_fields = [name for name in fields if name not in ("is_favorite", "options")]  # type: ignore[misc]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="Steps")
    def steps(self, model: CachedModel) -> str:
        options = step_options_for(model)
        if options is None:
            return "—"
        return f"fixed {options.default}" if options.fixed else f"{options.minimum} to {options.maximum}"

    def get_urls(self):
        refresh = self.admin_site.admin_view(require_POST(self.refresh_view))
        return [path("refresh/", refresh, name="generation_cachedmodel_refresh"), *super().get_urls()]

    def refresh_view(self, request: HttpRequest) -> HttpResponseRedirect:
        try:
            result = models_refresh()
        except AppError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            self.message_user(
                request,
                f"{result.available} models in InvokeAI: {result.added} added, {result.updated} updated, "
                f"{result.unavailable} no longer installed.",
                messages.SUCCESS,
            )
        return HttpResponseRedirect(reverse("admin:generation_cachedmodel_changelist"))


class _ReadOnly:
    """The studio's records are written by its services only; the admin shows them and may delete sessions."""

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


_STEP_INLINE_FIELDS = (
    "position",
    "status",
    "prompt",
    "model_name",
    "batch_size",
    "images_retrieved",
    "images_failed",
)


class StepInline(_ReadOnly, admin.TabularInline):
    model = GenerationStep
    fields = _STEP_INLINE_FIELDS
    readonly_fields = _STEP_INLINE_FIELDS
    show_change_link = True
    extra = 0

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(GenerationSession)
class GenerationSessionAdmin(_ReadOnly, OwnedAdmin):
    list_display = ["__str__", "status", "entry_type", "created_at", "updated_at"]
    list_filter = ["status", "entry_type"]
    search_fields = ["title", "steps__prompt"]
    inlines = [StepInline]


_ALTERNATIVE_INLINE_FIELDS = (
    "index",
    "photo",
    "item_id",
    "selected",
)


class AlternativeInline(_ReadOnly, admin.TabularInline):
    model = StepAlternative
    fields = _ALTERNATIVE_INLINE_FIELDS
    readonly_fields = _ALTERNATIVE_INLINE_FIELDS
    extra = 0

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(GenerationStep)
class GenerationStepAdmin(_ReadOnly, OwnedAdmin):
    owner_field = "session__owner"
    list_display = ["__str__", "status", "progress", "model_name", "images_retrieved", "images_failed", "created_at"]
    list_filter = ["status"]
    list_select_related = ["session"]
    search_fields = ["prompt", "batch_id"]
    inlines = [AlternativeInline]

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(StudioPreference)
class StudioPreferenceAdmin(_ReadOnly, admin.ModelAdmin):
    list_display = ["user", "model_key", "steps", "updated_at"]


@admin.register(ModelInstall)
class ModelInstallAdmin(_ReadOnly, OwnedAdmin):
    """Installs are started from the Models page, the API or `manage.py install_model`; here they are shown."""

    list_display = ["__str__", "status", "percent", "model_type", "model_base", "backend_url", "created_at"]
    list_filter = ["status", "model_type", "model_base"]
    search_fields = ["source", "name", "model_key", "error_message"]


@admin.register(Preset)
class PresetAdmin(OwnedAdmin):
    list_display = ["name", "model_key", "steps", "cfg_scale", "width", "height", "updated_at"]
    search_fields = ["name", "model_key"]
