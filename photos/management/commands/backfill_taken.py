from django.core.management.base import BaseCommand
from tqdm import tqdm

from photos import services


class Command(BaseCommand):
    help = (
        "Read the date taken from the files of photos stored before it was read (migration 0004 gave them the "
        "date they were added). Safe to stop and run again."
    )

    def handle(self, *args, **options) -> None:
        progress = tqdm(unit="photo", disable=options["verbosity"] == 0, file=self.stderr._out)  # type: ignore[call-overload]
        result = services.photo_taken_backfill(progress=progress.update)
        progress.close()
        self.stdout.write(
            self.style.SUCCESS(f"Read {result.read} photos' files; {result.changed} had a date taken of their own.")
        )
