"""Studio sessions get an owner (their steps and images follow it).

Existing sessions go to the earliest superuser (else the earliest account); on an install with no account yet
they keep no owner until the first account is created (gallery_project.accounts.ownerless_adopt).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from gallery_project.accounts import ownerless_adopt


def adopt(apps, schema_editor):
    users = apps.get_model(settings.AUTH_USER_MODEL).objects.all()
    ownerless_adopt(models=[apps.get_model("generation", "GenerationSession")], users=users)


class Migration(migrations.Migration):
    dependencies = [
        ("generation", "0002_studio"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="generationsession",
            name="owner",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="generation_sessions",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.RunPython(adopt, migrations.RunPython.noop),
    ]
