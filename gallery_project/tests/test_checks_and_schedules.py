from __future__ import annotations

import pytest
from django.core.management import call_command
from django_q.models import Schedule

from gallery_project import checks
from gallery_project.schedules import SCHEDULES


def test_environment_checks_pass_here():
    assert checks.check_image_codecs() == []
    assert checks.check_data_dir() == []
    assert checks.check_backend_settings() == []


def test_unwritable_data_dir_is_an_error(settings, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    settings.DATA_DIR = blocker / "data"
    [error] = checks.check_data_dir()
    assert error.id == "gallery.E003"
    assert "not writable" in error.msg


def test_bad_backend_settings_are_errors(settings):
    settings.INVOKEAI_LOCAL_URL = "localhost:9090"
    settings.INVOKEAI_READ_TIMEOUT = 0
    ids = {error.id for error in checks.check_backend_settings()}
    assert ids == {"gallery.E004", "gallery.E005"}


def test_bad_runpod_settings_are_errors(settings):
    settings.RUNPOD_PROXY_URL_TEMPLATE = "{pod}.proxy.runpod.net"
    settings.RUNPOD_START_TIMEOUT = 0
    settings.RUNPOD_POD_PREFIX = 'photo"studio'
    ids = {error.id for error in checks.check_backend_settings()}
    assert ids == {"gallery.E006", "gallery.E008", "gallery.E009"}
    settings.RUNPOD_PROXY_URL_TEMPLATE = "http://127.0.0.1:9090"
    settings.RUNPOD_START_TIMEOUT = 20
    settings.RUNPOD_POD_PREFIX = "photo-studio"
    assert checks.check_backend_settings() == []


@pytest.mark.django_db
def test_setup_schedules_is_idempotent_and_removes_stale_ones():
    Schedule.objects.create(name="photos.gone", func="photos.tasks.gone", schedule_type=Schedule.HOURLY)
    Schedule.objects.create(name="someone-elses", func="other.module.task", schedule_type=Schedule.HOURLY)
    call_command("setup_schedules")
    call_command("setup_schedules")
    names = set(Schedule.objects.values_list("name", flat=True))
    assert names == {job.name for job in SCHEDULES} | {"someone-elses"}
    for job in SCHEDULES:
        schedule = Schedule.objects.get(name=job.name)
        assert (schedule.func, schedule.minutes, schedule.repeats) == (job.func, job.minutes, -1)


def test_a_working_photo_bucket_passes_and_keeps_nothing(s3_media, local_s3):
    assert checks.check_photo_bucket() == []
    assert local_s3.keys(s3_media) == []


def test_sendfile_with_a_bucket_is_a_warning(s3_media, settings):
    settings.SENDFILE = "x-accel"
    [warning] = checks.check_photo_bucket()
    assert warning.id == "gallery.W031"


def test_a_missing_bucket_is_an_error_that_names_it(settings, local_s3):
    from conftest import use_bucket

    use_bucket(settings, local_s3.url, "no-such-bucket")
    [error] = checks.check_photo_bucket()
    assert error.id == "gallery.E030"
    assert "'no-such-bucket'" in error.msg and local_s3.url in error.msg
    assert "PutObject" in error.hint


def test_an_endpoint_that_does_not_answer_is_an_error(settings):
    from conftest import use_bucket
    from testing.s3 import free_port

    use_bucket(settings, f"http://127.0.0.1:{free_port()}", "photos", timeout=1)
    [error] = checks.check_photo_bucket()
    assert error.id == "gallery.E030"
    assert "Could not connect" in error.msg


@pytest.mark.local_media
def test_the_local_disk_needs_no_bucket_check():
    assert checks.check_photo_bucket() == []
