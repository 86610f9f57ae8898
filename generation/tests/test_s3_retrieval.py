"""Generated images stored in a bucket that fails: a failed download that says why, nothing half-stored, and a
retry that stores the image once the bucket works again."""

from __future__ import annotations

import pytest

from generation import retrieval, services
from photos import storage
from photos.models import Photo

from .conftest import step_request

pytestmark = pytest.mark.django_db


def test_a_bucket_refusing_the_image_is_a_failed_download_that_a_retry_stores(
    invokeai, sd1, session, follow, faulty_s3, local_s3
):
    proxy, bucket = faulty_s3
    proxy.fail("PUT", r"/thumbnails/generated/")
    step = services.step_create(session_id=session.pk, owner=session.owner, request=step_request(sd1, batch_size=1))
    follow(step.pk)
    [photo] = Photo.objects.all()
    assert photo.retrieval_status == "failed"
    assert f"S3 bucket {bucket}" in photo.retrieval_error and "could not store the file" in photo.retrieval_error
    assert photo.local_storage_path == ""
    assert local_s3.keys(bucket) == [], "the image uploaded before its thumbnail failed is removed"

    proxy.faults.clear()
    assert retrieval.step_retrievals_retry(step_id=step.pk) == 1
    photo.refresh_from_db()
    assert photo.retrieval_status == "completed"
    assert storage.read_bytes(photo.local_storage_path) == invokeai.images[photo.invoke_id].png
    assert local_s3.keys(bucket) == sorted([photo.local_storage_path, photo.local_thumbnail_path])
