import signal

from django.core.management.base import BaseCommand

from generation.events import Listener


class Command(BaseCommand):
    help = (
        "Listen to InvokeAI's Socket.IO events (denoising progress, previews, finished images) for the servers "
        "with running steps. Started beside the django-q2 cluster by `manage.py run_worker`; runs until SIGTERM."
    )

    def handle(self, *args, **options) -> None:
        listener = Listener()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: listener.stop())
        listener.run()
