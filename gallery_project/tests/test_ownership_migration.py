"""The migrations that gave rows an owner, run on a database with rows from before: they go to the earliest
superuser, or, with no account yet, wait for the first account created."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from gallery_project.accounts import admin_create

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("photos", "0002_photo_tally"), ("albums", "0001_initial"), ("generation", "0002_studio")]
AFTER = [
    ("photos", "0003_photo_owner"),
    ("albums", "0002_album_sharelink_owner"),
    ("generation", "0003_generationsession_owner"),
]


def migrate(targets) -> object:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def rows_from_before():
    """Two live photos (one generated), one in the trash, an album, a link and a session, made before owners."""
    old = migrate(BEFORE)
    Photo = old.get_model("photos", "Photo")
    now = timezone.now()
    photos = [
        Photo.objects.create(id=uuid.uuid4(), created_at=now),
        Photo.objects.create(id=uuid.uuid4(), created_at=now, is_generated=True),
        Photo.objects.create(id=uuid.uuid4(), created_at=now, deleted_at=now),
    ]
    album = old.get_model("albums", "Album").objects.create(id=uuid.uuid4(), name="Old album", created_at=now)
    old.get_model("albums", "ShareLink").objects.create(
        id=uuid.uuid4(), album=album, token_hash="0" * 64, created_at=now
    )
    old.get_model("generation", "GenerationSession").objects.create(created_at=now, updated_at=now)
    yield photos
    # Whatever the test did, the next one finds the schema it expects.
    executor = MigrationExecutor(connection)
    migrate(executor.loader.graph.leaf_nodes())


def owners(apps) -> set:
    labels = [("photos", "Photo"), ("albums", "Album"), ("albums", "ShareLink"), ("generation", "GenerationSession")]
    return {
        owner for app, model in labels for owner in apps.get_model(app, model).objects.values_list("owner", flat=True)
    }


def test_rows_from_before_go_to_the_earliest_superuser(rows_from_before):
    old = migrate(BEFORE)
    User = old.get_model("auth", "User")
    User.objects.create(username="early-user")
    first = User.objects.create(username="first-admin", is_superuser=True, is_staff=True)
    User.objects.create(username="later-admin", is_superuser=True, is_staff=True)

    new = migrate(AFTER)
    assert owners(new) == {first.pk}
    counts = dict(new.get_model("photos", "PhotoTally").objects.filter(owner=first.pk).values_list("name", "count"))
    assert counts == {"live": 2, "live_generated": 1, "trash": 1}


def test_with_no_account_yet_the_first_account_adopts_them(rows_from_before):
    new = migrate(AFTER)
    assert owners(new) == {None}
    owner = admin_create(username="me", password="a long passphrase 42", first_run=True)
    assert owners(new) == {owner.pk}
    # The totals the gallery shows (its selectors read the tallies; they need the latest schema, not this one).
    counts = dict(new.get_model("photos", "PhotoTally").objects.filter(owner=owner.pk).values_list("name", "count"))
    assert (counts.get("live"), counts.get("trash")) == (2, 1)
