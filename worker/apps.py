from django.apps import AppConfig


class WorkerConfig(AppConfig):
    """The background worker's health: its heartbeat, the supervisor `make run` starts it under, the alert."""

    name = "worker"
    verbose_name = "Background worker"
