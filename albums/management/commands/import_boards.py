from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from albums import services
from gallery_project.errors import AppError


class Command(BaseCommand):
    help = (
        "Import InvokeAI's boards as albums (their images as generated photos; the 'none' board as Uncategorized). "
        "Running it again adds only new images."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--board",
            action="append",
            metavar="NAME",
            help="Only this board (by name or id; repeat for more). Default: every board.",
        )
        parser.add_argument("--sync", action="store_true", help="Keep the albums in sync: new images are imported.")
        parser.add_argument(
            "--owner", metavar="USERNAME", help="The account the albums belong to (default: the first superuser)."
        )

    def _owner(self, username: str | None):
        users = get_user_model().objects
        if username:
            owner = users.filter(**{users.model.USERNAME_FIELD: username}).first()
            if owner is None:
                raise CommandError(f"There is no account named {username!r}.")
            return owner
        owner = users.filter(is_superuser=True).order_by("pk").first()
        if owner is None:
            raise CommandError("There is no superuser to own the albums: create one, or pass --owner.")
        return owner

    def handle(self, *args, **options) -> None:
        owner = self._owner(options["owner"])
        boards = options["board"]
        progress = tqdm(unit="image", disable=options["verbosity"] == 0, file=self.stderr._out)  # type: ignore[call-overload]

        def advance(label: str) -> None:
            progress.set_postfix_str(label[-40:], refresh=False)
            progress.update()

        try:
            result = services.boards_import(owner=owner, boards=boards, sync=options["sync"], progress=advance)
        except AppError as exc:
            raise CommandError(exc.message) from exc
        finally:
            progress.close()
        self.stdout.write(
            f"{result.albums} album(s): {result.added} image(s) imported, {result.already_there} already there, "
            f"{result.failed} failed."
        )
        for error in result.errors:
            self.stdout.write(f"  {error}")
