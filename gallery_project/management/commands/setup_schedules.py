from django.core.management.base import BaseCommand
from django.db import transaction
from django_q.models import Schedule

from gallery_project.schedules import SCHEDULES


class Command(BaseCommand):
    help = "Create or update the django-q2 schedules by name (idempotent), and remove ones no longer defined."

    def handle(self, *args, **options) -> None:
        with transaction.atomic():
            for job in SCHEDULES:
                _, created = Schedule.objects.update_or_create(
                    name=job.name,
                    defaults={
                        "func": job.func,
                        "schedule_type": Schedule.MINUTES,
                        "minutes": job.minutes,
                        "hook": job.hook or None,
                        "repeats": -1,
                    },
                )
                self.stdout.write(f"{'created' if created else 'updated'} {job.name} (every {job.minutes} min)")
            stale = Schedule.objects.exclude(name__in=[job.name for job in SCHEDULES]).filter(
                func__regex=r"^(photos|albums|generation|backends|worker)\."
            )
            for name in stale.values_list("name", flat=True):
                self.stdout.write(f"removed {name}")
            stale.delete()
