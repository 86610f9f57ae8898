import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from gallery_project.errors import AppError
from gallery_project.management.accounts import add_owner_argument, command_owner
from generation import model_installs

# How often the command asks InvokeAI how its install is doing.
POLL_SECONDS = 0.5


class Command(BaseCommand):
    help = (
        "Install a model into the InvokeAI in use, from a path on InvokeAI's host, a URL or a Hugging Face repo id, "
        "and wait for it (the same rules as the Models page)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("source", help="An absolute path on InvokeAI's host, a URL, or a Hugging Face repo id.")
        parser.add_argument("--name", default="", help="The name InvokeAI lists it under (default: its own).")
        add_owner_argument(parser, "the install is recorded for")

    def handle(self, *args, source: str, name: str, owner: str | None, **options) -> None:
        account = command_owner(owner)
        try:
            install = model_installs.install_start(owner=account, source=source, name=name)
            with tqdm(  # type: ignore[call-overload]
                total=install.total_bytes or None,
                unit="B",
                unit_scale=True,
                desc=install.status,
                disable=options["verbosity"] == 0,
                file=self.stderr._out,
            ) as progress:
                while True:
                    progress.total = install.total_bytes or progress.total
                    progress.set_description_str(install.status, refresh=False)
                    progress.update(install.bytes - progress.n)
                    if install.is_finished:
                        break
                    time.sleep(POLL_SECONDS)
                    install = model_installs.install_poll(install_id=install.pk)
        except AppError as exc:
            raise CommandError(exc.message) from None
        except KeyboardInterrupt:
            self.stdout.write("Stopped waiting: InvokeAI goes on installing, and the app finishes the record.")
            return
        if install.status == install.Status.ERROR:
            raise CommandError(install.error_message)
        self.stdout.write(
            self.style.SUCCESS(f"Installed {install.model_base} {install.model_type} model, key {install.model_key}.")
        )
