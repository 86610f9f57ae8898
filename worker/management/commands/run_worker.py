import sys

from django.conf import settings
from django.core.management.base import BaseCommand
from django_q.conf import Conf

from worker.supervisor import Supervisor


class Command(BaseCommand):
    help = (
        "Run the django-q2 cluster (qcluster) under a supervisor that restarts the whole cluster when one of its "
        "processes dies or its heartbeat stops, and beside it the InvokeAI events listener (run_events). Runs "
        "until SIGTERM or Ctrl-C."
    )

    def handle(self, *args, **options) -> None:
        Supervisor(
            command=[sys.executable, str(settings.BASE_DIR / "manage.py"), "qcluster"],
            companion=[sys.executable, str(settings.BASE_DIR / "manage.py"), "run_events"],
            workers=Conf.WORKERS,
            interval=settings.WORKER_SUPERVISOR_INTERVAL,
        ).run()
