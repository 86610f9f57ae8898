import contextlib
from datetime import UTC, datetime
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from gallery_project.errors import AppError, Unavailable
from gallery_project.management.accounts import add_owner_argument, command_owner
from photos import services
from photos.imaging import ALLOWED_EXTENSIONS

# Each waits IMAGE_DECODE_WAIT seconds for decode memory that uploads hold.
BUSY_ATTEMPTS = 5


class Command(BaseCommand):
    help = "Import every image in a directory (recursively) with the same validation as uploads."

    def add_arguments(self, parser) -> None:
        parser.add_argument("directory", type=Path)
        parser.add_argument(
            "--all-files",
            action="store_true",
            help="Also try files whose extension is not an image type (they are reported as skipped).",
        )
        add_owner_argument(parser, "the photos belong to")

    def _import(self, path: Path, owner) -> services.PhotoCreated:
        """One file; while uploads hold the decode memory it waits its turn again, as nobody is there to retry."""
        for _ in range(BUSY_ATTEMPTS - 1):
            with contextlib.suppress(Unavailable):
                return self._create(path, owner)
        return self._create(path, owner)

    def _create(self, path: Path, owner) -> services.PhotoCreated:
        stat = path.stat()
        with path.open("rb") as fh:
            return services.photo_create(
                owner=owner,
                file=fh,
                filename=path.name,
                size=stat.st_size,
                # A file without a date of its own was most likely last written when it was taken.
                taken_fallback=datetime.fromtimestamp(stat.st_mtime, UTC),
            )

    def handle(self, *args, directory: Path, all_files: bool, owner: str | None, **options) -> None:
        if not directory.is_dir():
            raise CommandError(f"{directory} is not a directory.")
        account = command_owner(owner)
        files = sorted(
            path
            for path in directory.rglob("*")
            if path.is_file() and (all_files or path.suffix.lower() in ALLOWED_EXTENSIONS)
        )
        imported, duplicates = 0, 0
        skipped: list[tuple[Path, str]] = []
        progress = tqdm(files, unit="photo", disable=options["verbosity"] == 0, file=self.stderr._out)  # type: ignore[call-overload]
        for path in progress:
            progress.set_postfix_str(path.name[-30:], refresh=False)
            try:
                created = self._import(path, account)
            except AppError as exc:
                skipped.append((path, exc.message))
                continue
            except OSError as exc:
                skipped.append((path, f"could not be read ({exc.strerror})"))
                continue
            imported += 1
            duplicates += bool(created.duplicate_of)

        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {imported} of {len(files)} files from {directory} for {account.get_username()}."
            )
        )
        if duplicates:
            self.stdout.write(f"{duplicates} of them were already in the gallery (kept as duplicates).")
        if skipped:
            self.stdout.write(self.style.WARNING(f"Skipped {len(skipped)}:"))
            for path, reason in skipped:
                self.stdout.write(f"  {path}: {reason}")
