"""Photo files in an S3-compatible bucket: django-storages' S3Storage, plus what the photo store needs that
Django's storage API has no word for: an object read as a stream (a ZIP or a download never holds a whole
file), many objects deleted in one request (a purge), and every key under a prefix (previews, the check).

Keys are the photo store's relative paths, so a photo's files are found from its row on either backend.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, BinaryIO

from botocore.exceptions import ClientError
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

# DeleteObjects takes at most this many keys.
_DELETE_BATCH = 1000


def status_of(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


class PhotoS3Storage(S3Storage):
    def key(self, name: str) -> str:
        return str(self._normalize_name(clean_name(name)))

    def _client(self) -> Any:
        # The connection is per thread (django-storages keeps it thread-local); its client is safe to share.
        return self.connection.meta.client

    def open_stream(self, name: str) -> tuple[BinaryIO, int]:
        """The object's body as an unseekable file read from the network as it is consumed, and its size."""
        try:
            answer = self._client().get_object(Bucket=self.bucket_name, Key=self.key(name))
        except ClientError as exc:
            if status_of(exc) == 404:
                raise FileNotFoundError(name) from None
            raise
        return answer["Body"], int(answer["ContentLength"])

    def delete_many(self, names: Iterable[str]) -> None:
        keys = [self.key(name) for name in names]
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = keys[start : start + _DELETE_BATCH]
            answer = self._client().delete_objects(
                Bucket=self.bucket_name, Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True}
            )
            if errors := answer.get("Errors"):
                raise OSError(f"the bucket did not delete {len(errors)} objects: {errors[0].get('Message', '')}")

    def names_under(self, prefix: str) -> list[str]:
        """Every stored name under `prefix` (a folder of the layout), at any depth."""
        folder = self.key(prefix).rstrip("/")
        root = f"{folder}/" if folder else ""
        names = []
        for page in self._client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket_name, Prefix=root):
            names += [entry["Key"][len(self.location) :].lstrip("/") for entry in page.get("Contents", ())]
        return names
