"""Photos get an owner; the tallies are kept per owner.

Existing photos go to the earliest superuser (else the earliest account); on an install with no account yet
they keep no owner until the first account is created (gallery_project.accounts.ownerless_adopt).
"""

import importlib

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from gallery_project.accounts import ownerless_adopt

_previous = importlib.import_module("photos.migrations.0002_photo_tally")


def _bump(row: str, sign: str) -> list[str]:
    """SQL that adds (sign "+") or removes (sign "-") the photo `row` (NEW or OLD) from its owner's tallies."""
    upsert = "ON CONFLICT (owner_id, name) DO UPDATE SET count = photos_phototally.count + excluded.count"
    # Each SELECT has a WHERE clause: SQLite needs one to read the ON CONFLICT as the upsert's.
    return [
        f"INSERT INTO photos_phototally (owner_id, name, count) "
        f"SELECT {row}.owner_id, CASE WHEN {row}.deleted_at IS NULL THEN 'live' ELSE 'trash' END, {sign}1 "
        f"WHERE {row}.owner_id IS NOT NULL {upsert};",
        f"INSERT INTO photos_phototally (owner_id, name, count) SELECT {row}.owner_id, 'live_generated', {sign}1 "
        f"WHERE {row}.owner_id IS NOT NULL AND {row}.deleted_at IS NULL AND {row}.is_generated {upsert};",
    ]


_COLUMNS = "deleted_at, is_generated, owner_id"
SQLITE_TRIGGERS = [
    "CREATE TRIGGER photos_tally_insert AFTER INSERT ON photos_photo BEGIN {} END;".format(
        " ".join(_bump("NEW", "+"))
    ),
    "CREATE TRIGGER photos_tally_delete AFTER DELETE ON photos_photo BEGIN {} END;".format(
        " ".join(_bump("OLD", "-"))
    ),
    f"CREATE TRIGGER photos_tally_update AFTER UPDATE OF {_COLUMNS} ON photos_photo BEGIN {{}} END;".format(
        " ".join(_bump("OLD", "-") + _bump("NEW", "+"))
    ),
]
POSTGRES_TRIGGERS = [
    """CREATE FUNCTION photos_tally() RETURNS trigger AS $$
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') THEN {old} END IF;
        IF TG_OP IN ('UPDATE', 'INSERT') THEN {new} END IF;
        RETURN NULL;
    END $$ LANGUAGE plpgsql;""".format(old=" ".join(_bump("OLD", "-")), new=" ".join(_bump("NEW", "+"))),
    f"CREATE TRIGGER photos_tally AFTER INSERT OR DELETE OR UPDATE OF {_COLUMNS} ON photos_photo "
    "FOR EACH ROW EXECUTE FUNCTION photos_tally();",
]
SEED = """
    INSERT INTO photos_phototally (owner_id, name, count)
    SELECT owner_id, 'live', COUNT(*) FROM photos_photo
        WHERE owner_id IS NOT NULL AND deleted_at IS NULL GROUP BY owner_id
    UNION ALL SELECT owner_id, 'live_generated', COUNT(*) FROM photos_photo
        WHERE owner_id IS NOT NULL AND deleted_at IS NULL AND is_generated GROUP BY owner_id
    UNION ALL SELECT owner_id, 'trash', COUNT(*) FROM photos_photo
        WHERE owner_id IS NOT NULL AND deleted_at IS NOT NULL GROUP BY owner_id
"""


def install_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for statement in [*(SQLITE_TRIGGERS if vendor == "sqlite" else POSTGRES_TRIGGERS), SEED]:
        schema_editor.execute(statement)


def adopt(apps, schema_editor):
    users = apps.get_model(settings.AUTH_USER_MODEL).objects.all()
    ownerless_adopt(models=[apps.get_model("photos", "Photo")], users=users)


class Migration(migrations.Migration):
    dependencies = [
        ("photos", "0002_photo_tally"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # The global tallies and their triggers go first: the owners' tallies replace them.
        migrations.RunPython(_previous.remove_triggers, _previous.install_triggers),
        migrations.DeleteModel(name="PhotoTally"),
        migrations.AddField(
            model_name="photo",
            name="owner",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="photos",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.RunPython(adopt, migrations.RunPython.noop),
        migrations.RemoveIndex(model_name="photo", name="photo_live_created"),
        migrations.RemoveIndex(model_name="photo", name="photo_live_kind_created"),
        migrations.AddIndex(
            model_name="photo",
            index=models.Index(
                condition=models.Q(("deleted_at", None)),
                fields=["owner", "created_at", "id"],
                name="photo_owner_live_created",
            ),
        ),
        migrations.AddIndex(
            model_name="photo",
            index=models.Index(
                condition=models.Q(("deleted_at", None)),
                fields=["owner", "is_generated", "created_at", "id"],
                name="photo_owner_live_kind_created",
            ),
        ),
        migrations.CreateModel(
            name="PhotoTally",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=20)),
                ("count", models.BigIntegerField(default=0)),
                (
                    "owner",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "constraints": [models.UniqueConstraint(fields=("owner", "name"), name="photo_tally_owner_name")],
            },
        ),
        # Last: a later schema change that rebuilds the SQLite table would drop triggers made before it.
        migrations.RunPython(install_triggers, _previous.remove_triggers),
    ]
