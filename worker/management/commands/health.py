from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from worker import selectors


class Command(BaseCommand):
    help = (
        "Say whether the background worker works: exit 0 when its heartbeat is recent (or it has just started), "
        "non-zero when the heartbeat is late or never came, printing why."
    )

    def handle(self, *args, **options) -> None:
        try:
            health = selectors.worker_health()
        except DatabaseError as exc:
            raise CommandError(f"Cannot read the database: {exc}") from exc
        restarts = f" The supervisor restarted it {health.restarts} times (last: {health.restart_reason})."
        detail = f"{health.message}{restarts if health.restarts and health.healthy else ''}"
        if not health.healthy:
            raise CommandError(f"{health.state}: {health.title} {detail}")
        self.stdout.write(f"{health.state}: {detail}")
