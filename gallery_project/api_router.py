"""The API's URL table. Every path answers with and without a trailing slash, for every method: scripts
written from the spec's paths (`/api/photos/{id}/file`, `/api/photos/`) must work as written."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from albums.api import UUID_PATTERN, AlbumViewSet, PhotoShareViewSet, ShareLinkViewSet
from generation.api import (
    CachedModelViewSet,
    GenerationSessionViewSet,
    GenerationStepViewSet,
    ModelInstallViewSet,
    PhotoRetrievalViewSet,
    PresetViewSet,
)
from photos.api import PhotoViewSet
from workflows.api import WorkflowViewSet


class OptionalSlashRouter(SimpleRouter):
    def __init__(self) -> None:
        super().__init__()
        # SimpleRouter only knows "/" or ""; its route patterns are regexes, so "/?" accepts both.
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
# Before PhotoViewSet: `photos/{id}/retry` needs the generation step a photo came from, which photos cannot know.
router.register("photos", PhotoRetrievalViewSet, basename="photo-retrieval")
router.register("photos", PhotoViewSet, basename="photo")
router.register(rf"photos/(?P<photo_id>{UUID_PATTERN})/shares", PhotoShareViewSet, basename="photo-share")
router.register("albums", AlbumViewSet, basename="album")
router.register("shares", ShareLinkViewSet, basename="share")
# Before CachedModelViewSet, whose `models/{key}` would take "install" for a key.
router.register("models/install", ModelInstallViewSet, basename="model-install")
router.register("models", CachedModelViewSet, basename="model")
router.register("presets", PresetViewSet, basename="preset")
router.register("generation/sessions", GenerationSessionViewSet, basename="generation-session")
router.register("generation/steps", GenerationStepViewSet, basename="generation-step")
router.register("workflows", WorkflowViewSet, basename="workflow")
