from django.contrib import admin
from django.http import HttpRequest

from .models import Backend, BackendSettings, PodSession
from .services import EDITABLE_FIELDS

# What the app learns from InvokeAI and RunPod: shown, never edited.
_KNOWN_FIELDS = (
    "is_connected",
    "api_version",
    "last_connected_at",
    "connection_error",
    "last_activity_at",
    "lifetime_usage_hours",
    "lifetime_cost",
    "lifetime_images",
    "stopped_pods",
    "reconciled_at",
)


@admin.register(BackendSettings)
class BackendSettingsAdmin(admin.ModelAdmin):
    # The encrypted API key is not a field here at all: it is entered on the backend page and never shown.
    fieldsets = [
        (None, {"fields": ["backend_mode", *EDITABLE_FIELDS]}),
        ("What the app knows", {"fields": _KNOWN_FIELDS}),
    ]
    readonly_fields = _KNOWN_FIELDS
    list_display = ["__str__", "backend_mode", "is_connected", "api_version", "lifetime_cost"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(PodSession)
class PodSessionAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "pod_id",
        "gpu_type",
        "state",
        "stop_reason",
        "cost_per_hour",
        "estimated_cost",
        "images_generated",
    ]
    list_filter = ["state", "stop_reason", "gpu_type"]
    search_fields = ["pod_id", "name", "message"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]

    # A record of what RunPod did: changing it here would only make the costs lie.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Backend)
class BackendAdmin(admin.ModelAdmin):
    """Added InvokeAI backends; what the minute check reads is shown, not edited."""

    list_display = ["name", "url", "enabled", "is_connected", "api_version", "queue_pending", "queue_in_progress"]
    list_filter = ["enabled", "is_connected"]
    search_fields = ["name", "url"]
    readonly_fields = [
        "is_connected",
        "api_version",
        "connection_error",
        "checked_at",
        "queue_pending",
        "queue_in_progress",
        "models_listed_at",
        "created_at",
    ]
    fields = ["name", "url", "enabled", *readonly_fields]
