from django.apps import AppConfig


class GenerationConfig(AppConfig):
    name = "generation"
    verbose_name = "Generation"

    def ready(self) -> None:
        from backends.signals import busy_check

        busy_check.connect(_busy, dispatch_uid="generation.busy")


def _busy(sender, backend_url: str = "", **kwargs) -> bool:
    """Keep the backend up while a step generates there or its images still wait to be downloaded from it."""
    from .selectors import generation_in_flight

    return generation_in_flight(backend_url=backend_url)
