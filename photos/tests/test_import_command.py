from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from photos.models import Photo

from .images import image_bytes, truncated

pytestmark = pytest.mark.django_db


def test_import_photos_validates_and_summarises(tmp_path, user):
    source = tmp_path / "camera"
    (source / "2024" / "summer").mkdir(parents=True)
    (source / "a.jpg").write_bytes(image_bytes("JPEG"))
    (source / "2024" / "summer" / "b.png").write_bytes(image_bytes("PNG"))
    (source / "2024" / "c.webp").write_bytes(image_bytes("WEBP"))
    (source / "broken.jpg").write_bytes(truncated(image_bytes("JPEG", (900, 900), quality=95)))
    (source / "tiny.png").write_bytes(image_bytes("PNG", (20, 20)))
    (source / "notes.txt").write_text("not a photo")
    out = io.StringIO()

    call_command("import_photos", str(source), stdout=out, stderr=io.StringIO())

    text = out.getvalue()
    assert Photo.objects.count() == 3
    assert "Imported 3 of 5 files" in text
    assert "Skipped 2:" in text
    assert "broken.jpg: 'broken.jpg' is damaged" in text
    assert "tiny.png" in text and "between 100 and 8192" in text
    assert "notes.txt" not in text


def test_import_all_files_reports_other_types(tmp_path, user):
    (tmp_path / "notes.txt").write_text("x")
    out = io.StringIO()
    call_command("import_photos", str(tmp_path), "--all-files", stdout=out, stderr=io.StringIO())
    assert "notes.txt" in out.getvalue() and "only .jpg" in out.getvalue()


def test_import_reports_duplicates(tmp_path, user):
    data = image_bytes()
    (tmp_path / "one.jpg").write_bytes(data)
    (tmp_path / "two.jpg").write_bytes(data)
    out = io.StringIO()
    call_command("import_photos", str(tmp_path), stdout=out, stderr=io.StringIO())
    assert "1 of them were already in the gallery" in out.getvalue()


def test_import_from_a_missing_directory_fails_clearly(tmp_path):
    with pytest.raises(Exception, match="is not a directory"):
        call_command("import_photos", str(tmp_path / "nope"))
