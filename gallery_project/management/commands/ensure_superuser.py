import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from gallery_project.accounts import admin_create, ownerless_adopt_all


class Command(BaseCommand):
    help = (
        "Create the admin account from DJANGO_SUPERUSER_USERNAME and DJANGO_SUPERUSER_PASSWORD "
        "when both are set and no user of that name exists, and give rows from before accounts had owners to "
        "the first superuser. Safe to run on every start."
    )

    def handle(self, *args, **options) -> None:
        self._create()
        # Also when the first account came from elsewhere (`manage.py createsuperuser`): `make run` runs this.
        ownerless_adopt_all()

    def _create(self) -> None:
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME", "")
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD", "")
        if not (username and password):
            self.stdout.write("DJANGO_SUPERUSER_USERNAME/PASSWORD not set: the first visit shows the setup page.")
            return
        if get_user_model().objects.filter(username=username).exists():
            self.stdout.write(f"Admin account '{username}' already exists.")
            return
        admin_create(username=username, password=password)
        self.stdout.write(self.style.SUCCESS(f"Created admin account '{username}'."))
