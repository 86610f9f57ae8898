from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from albums import services
from gallery_project.errors import AppError
from gallery_project.management.accounts import add_owner_argument, command_owner


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
        add_owner_argument(parser, "the albums belong to")

    def handle(self, *args, **options) -> None:
        owner = command_owner(options["owner"])
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
