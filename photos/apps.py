from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _rebuild_tallies(sender, **kwargs) -> None:
    from .services import photo_tallies_rebuild

    photo_tallies_rebuild()


class PhotosConfig(AppConfig):
    name = "photos"
    verbose_name = "Photos"

    def ready(self) -> None:
        # flush ends by sending post_migrate, and it is the one write path the tally triggers cannot follow.
        post_migrate.connect(_rebuild_tallies, sender=self)
