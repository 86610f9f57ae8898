from django.apps import AppConfig


class BackendsConfig(AppConfig):
    name = "backends"
    verbose_name = "Backends"

    def ready(self) -> None:
        from . import receivers, signals

        signals.user_activity.connect(receivers.on_user_activity, dispatch_uid="backends.user_activity")
        signals.images_generated.connect(receivers.on_images_generated, dispatch_uid="backends.images_generated")
