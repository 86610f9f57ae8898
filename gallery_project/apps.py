from django.apps import AppConfig


class GalleryProjectConfig(AppConfig):
    """The project package as an app: it owns the cross-cutting system checks and management commands."""

    name = "gallery_project"
    verbose_name = "Photo Studio"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the checks)
