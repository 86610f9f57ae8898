from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from gallery_project.errors import Unavailable
from photos import services
from photos.models import Photo

from .images import camera_mpo, image_bytes, truncated

pytestmark = pytest.mark.django_db


def test_import_photos_validates_and_summarises(tmp_path, user):
    source = tmp_path / "camera"
    (source / "2024" / "summer").mkdir(parents=True)
    (source / "a.jpg").write_bytes(image_bytes("JPEG"))
    (source / "2024" / "summer" / "b.png").write_bytes(image_bytes("PNG"))
    (source / "2024" / "c.webp").write_bytes(image_bytes("WEBP"))
    (source / "broken.jpg").write_bytes(truncated(image_bytes("JPEG", (900, 900), quality=95)))
    (source / "tiny.png").write_bytes(image_bytes("PNG", (20, 20)))
    (source / "DSC_0042.JPG").write_bytes(camera_mpo())
    (source / "icon.png").write_bytes(image_bytes("PNG", (32, 32)))
    (source / "notes.txt").write_text("not a photo")
    out = io.StringIO()

    call_command("import_photos", str(source), stdout=out, stderr=io.StringIO())

    text = out.getvalue()
    assert Photo.objects.count() == 4
    assert "Imported 4 of 7 files" in text
    assert "Skipped 3:" in text
    assert "broken.jpg: 'broken.jpg' is damaged" in text
    assert "tiny.png" in text and "between 100 and 8192" in text
    assert "icon.png: 'icon.png' is 32x32 px" in text and "Resize it to fit" in text
    assert Photo.objects.get(filename="DSC_0042.JPG").mime_type == "image/jpeg"
    assert "notes.txt" not in text


def test_import_all_files_reports_other_types(tmp_path, user):
    (tmp_path / "notes.txt").write_text("x")
    out = io.StringIO()
    call_command("import_photos", str(tmp_path), "--all-files", stdout=out, stderr=io.StringIO())
    assert "notes.txt" in out.getvalue() and "the gallery takes JPEG, PNG, WebP or HEIC" in out.getvalue()


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


def test_import_waits_again_while_uploads_hold_the_decode_memory(tmp_path, monkeypatch, user):
    (tmp_path / "a.jpg").write_bytes(image_bytes("JPEG"))
    (tmp_path / "b.jpg").write_bytes(image_bytes("JPEG", color=(10, 10, 10)))
    real_create = services.photo_create
    busy = {"a.jpg": 2, "b.jpg": 99}

    def create(**kwargs):
        if busy[kwargs["filename"]] > 0:
            busy[kwargs["filename"]] -= 1
            raise Unavailable("The server is busy opening other large images.", code="decoder_busy")
        return real_create(**kwargs)

    monkeypatch.setattr(services, "photo_create", create)
    out = io.StringIO()
    call_command("import_photos", str(tmp_path), stdout=out, stderr=io.StringIO())

    assert "Imported 1 of 2 files" in out.getvalue()
    assert "b.jpg: The server is busy" in out.getvalue()
    assert busy["a.jpg"] == 0 and Photo.objects.get().filename == "a.jpg"
