"""Speed and memory of `POST /api/photos/download/`: a ZIP of 500 originals streamed through Django's full stack.

    .venv/bin/python bench/zip_download.py [--photos 500] [--size-mb 2] [--s3]

Writes `--photos` files of random bytes (incompressible, like photos) into a throwaway photo store with their
rows, reads them all once as the disk's own speed, then streams the ZIP of all of them and consumes it. Before
each of the two, the files are dropped from the page cache (posix_fadvise DONTNEED on these files only), so both
read from the disk; `--warm` keeps them cached instead, which measures the CPU's side alone (the CRC-32 that
every ZIP entry needs runs at about 1 GB/s a core). Prints both rates, their ratio (target >= 0.8), the largest
chunk the response handed on and the peak of Python allocations while streaming (flat: about one read buffer,
whatever the number of photos).

With `--s3` the photo store is a bucket on moto's S3 server on 127.0.0.1 (the dev extra; testing/s3.py), the
"disk" rate is that of reading every object with GetObject, and the peak includes moto's own copy of the object
it is answering (it runs in this process).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=500)
    parser.add_argument("--size-mb", type=float, default=2.0)
    parser.add_argument("--warm", action="store_true", help="read from the page cache, not the disk")
    parser.add_argument("--s3", action="store_true", help="the photos in a bucket on a local moto server")
    args = parser.parse_args()
    if args.s3:
        from testing.s3 import ACCESS_KEY, REGION, SECRET_KEY, LocalS3

        s3 = LocalS3().start()
        bucket = s3.new_bucket()
        os.environ.update(
            AWS_STORAGE_BUCKET_NAME=bucket,
            AWS_S3_ENDPOINT_URL=s3.url,
            AWS_S3_REGION_NAME=REGION,
            AWS_ACCESS_KEY_ID=ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        )
        args.warm = True  # nothing to drop from a page cache
    data_dir = Path(tempfile.mkdtemp(prefix="gallery-zip-bench-"))
    os.environ["DATA_DIR"] = str(data_dir)
    os.environ["SECRET_KEY"] = "bench"
    os.environ["DJANGO_SETTINGS_MODULE"] = "gallery_project.settings"
    os.environ["DATABASE_URL"] = f"sqlite:///{data_dir / 'bench.sqlite3'}"
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from photos import storage
    from photos.models import Photo

    settings.ALLOWED_HOSTS.append("testserver")
    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_superuser(username="bench", password=None)
    size = int(args.size_mb * 1024 * 1024)
    rows = []
    for index in range(args.photos):
        photo_id = uuid.uuid4()
        relative = f"uploaded/2026-01-01/{photo_id}.jpg"
        with storage.staged() as files:
            files.write(relative, os.urandom(size))  # fsynced, so that dropping it from the cache really drops it
            files.publish()
        rows.append(Photo(id=photo_id, owner=user, filename=f"IMG_{index:04d}.jpg", local_storage_path=relative))
    Photo.objects.bulk_create(rows)
    total = size * args.photos
    names = [row.local_storage_path for row in rows]

    def uncache() -> None:
        if args.warm:
            return
        for path in map(storage.absolute, names):
            fd = os.open(path, os.O_RDONLY)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)

    uncache()
    began = time.perf_counter()
    for name in names:
        handle, _ = storage.open_stream(name)
        with handle:
            while handle.read(1024 * 1024):
                pass
    disk = total / (time.perf_counter() - began)

    client = Client()
    client.force_login(user)
    ids = [str(row.pk) for row in rows]

    def stream() -> tuple[int, int]:
        response = client.post("/api/photos/download/", {"photo_ids": ids}, content_type="application/json")
        streamed = largest = 0
        for chunk in response.streaming_content:
            streamed += len(chunk)
            largest = max(largest, len(chunk))
        assert response.status_code == 200 and streamed > total
        return streamed, largest

    uncache()
    began = time.perf_counter()
    streamed, largest = stream()
    rate = streamed / (time.perf_counter() - began)
    # Memory in a second run: tracing every allocation slows the first one's figure down tenfold.
    tracemalloc.start()
    stream()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    mib = 1024 * 1024
    print(f"{args.photos} photos of {args.size_mb:g} MiB ({total / mib:.0f} MiB)")
    source = "bucket, GetObject" if args.s3 else "page cache" if args.warm else "disk, uncached"
    print(f"read of the files     {disk / mib:8.0f} MiB/s   ({source})")
    print(f"ZIP streamed          {rate / mib:8.0f} MiB/s   ({rate / disk:.2f} of the disk's rate; target >= 0.80)")
    print(f"largest chunk sent    {largest / 1024:8.0f} KiB")
    print(f"peak Python memory    {peak / mib:8.1f} MiB while streaming {streamed / mib:.0f} MiB")


if __name__ == "__main__":
    main()
