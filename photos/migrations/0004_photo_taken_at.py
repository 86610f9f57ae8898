"""Photos get a date taken, indexed for the timeline (and for favourites), and a full-text search index
(photos.search: a GIN index on PostgreSQL, an FTS5 table kept by triggers on SQLite).

Existing photos start with the date they were added (one UPDATE, however many photos there are); the dates their
files hold are read afterwards by `manage.py backfill_taken`, which can take a while and be resumed.

SQLite cannot make a column NOT NULL in place: Django rebuilds the table, which drops its triggers, so the
tally triggers of migration 0003 are installed again, after the rebuild either way (the copy of the rows does
not go through them, so the tallies stay exact).
"""

import importlib

import django.utils.timezone
from django.db import migrations, models
from django.db.models import F, Q

from photos import search

_tallies = importlib.import_module("photos.migrations.0003_photo_owner")
_SQLITE_TRIGGER_NAMES = ("photos_tally_insert", "photos_tally_delete", "photos_tally_update")


def taken_from_added(apps, schema_editor):
    apps.get_model("photos", "Photo").objects.update(taken_at=F("created_at"))


def reinstall_sqlite_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for name in _SQLITE_TRIGGER_NAMES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}")
    for statement in _tallies.SQLITE_TRIGGERS:
        schema_editor.execute(statement)


def install_search(apps, schema_editor):
    search.install(schema_editor, apps.get_model("photos", "Photo"))


def uninstall_search(apps, schema_editor):
    search.uninstall(schema_editor, apps.get_model("photos", "Photo"))


class Migration(migrations.Migration):
    dependencies = [
        ("photos", "0003_photo_owner"),
    ]

    operations = [
        # Undoing this migration rebuilds the table too: the triggers are installed again at the very end.
        migrations.RunPython(migrations.RunPython.noop, reinstall_sqlite_triggers),
        migrations.AddField(
            model_name="photo",
            name="taken_at",
            field=models.DateTimeField(null=True, verbose_name="date taken"),
        ),
        migrations.RunPython(taken_from_added, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="photo",
            name="taken_at",
            field=models.DateTimeField(default=django.utils.timezone.now, verbose_name="date taken"),
        ),
        migrations.RunPython(reinstall_sqlite_triggers, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="photo",
            index=models.Index(
                condition=Q(("deleted_at", None)), fields=["owner", "taken_at", "id"], name="photo_owner_live_taken"
            ),
        ),
        migrations.AddIndex(
            model_name="photo",
            index=models.Index(
                condition=Q(("deleted_at", None)),
                fields=["owner", "is_generated", "taken_at", "id"],
                name="photo_owner_live_kind_taken",
            ),
        ),
        migrations.AddIndex(
            model_name="photo",
            index=models.Index(
                condition=Q(("deleted_at", None), ("is_favorite", True)),
                fields=["owner", "taken_at", "id"],
                name="photo_owner_favorite_taken",
            ),
        ),
        # After the rebuild above, which would drop the search triggers too; undone first.
        migrations.RunPython(install_search, uninstall_search),
    ]
