from django.core.management.base import BaseCommand

from generation.models_cache import models_refresh


class Command(BaseCommand):
    help = "Refresh the model cache from InvokeAI (models it no longer lists are marked unavailable)."

    def handle(self, *args, **options) -> None:
        result = models_refresh()
        self.stdout.write(
            f"{result.available} models in InvokeAI: {result.added} added, {result.updated} updated, "
            f"{result.unavailable} no longer installed"
        )
