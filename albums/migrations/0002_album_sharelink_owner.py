"""Albums and share links get an owner; album names are unique per owner.

Existing rows go to the earliest superuser (else the earliest account); on an install with no account yet
they keep no owner until the first account is created (gallery_project.accounts.ownerless_adopt).
"""

import django.db.models.deletion
import django.db.models.functions.text
from django.conf import settings
from django.db import migrations, models

from gallery_project.accounts import ownerless_adopt


def adopt(apps, schema_editor):
    users = apps.get_model(settings.AUTH_USER_MODEL).objects.all()
    ownerless_adopt(models=[apps.get_model("albums", "Album"), apps.get_model("albums", "ShareLink")], users=users)


class Migration(migrations.Migration):
    dependencies = [
        ("albums", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="album", name="album_unique_name"),
        migrations.AddField(
            model_name="album",
            name="owner",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="albums",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="sharelink",
            name="owner",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="share_links",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.RunPython(adopt, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="album",
            constraint=models.UniqueConstraint(
                models.F("owner"),
                django.db.models.functions.text.Lower("name"),
                name="album_unique_name_per_owner",
                violation_error_message="An album with this name already exists.",
            ),
        ),
    ]
