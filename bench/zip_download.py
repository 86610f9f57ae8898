"""Speed and memory of `POST /api/photos/download/`: a ZIP of 500 originals streamed through Django's full stack.

    .venv/bin/python bench/zip_download.py [--photos 500] [--size-mb 2]

Writes `--photos` files of random bytes (incompressible, like photos) into a throwaway photo store with their
rows, reads them all once as the disk's own speed, then streams the ZIP of all of them and consumes it. Before
each of the two, the files are dropped from the page cache (posix_fadvise DONTNEED on these files only), so both
read from the disk; `--warm` keeps them cached instead, which measures the CPU's side alone (the CRC-32 that
every ZIP entry needs runs at about 1 GB/s a core). Prints both rates, their ratio (target >= 0.8), the largest
chunk the response handed on and the peak of Python allocations while streaming (flat: about one read buffer,
whatever the number of photos).
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
    args = parser.parse_args()
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
        path = storage.absolute(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            handle.write(os.urandom(size))
            handle.flush()
            os.fsync(handle.fileno())  # written out, so that dropping it from the cache really drops it
        rows.append(Photo(id=photo_id, owner=user, filename=f"IMG_{index:04d}.jpg", local_storage_path=relative))
    Photo.objects.bulk_create(rows)
    total = size * args.photos
    paths = [storage.absolute(row.local_storage_path) for row in rows]

    def uncache() -> None:
        if args.warm:
            return
        for path in paths:
            fd = os.open(path, os.O_RDONLY)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)

    uncache()
    began = time.perf_counter()
    for path in paths:
        with path.open("rb") as handle:
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
    print(f"read of the files     {disk / mib:8.0f} MiB/s   ({'page cache' if args.warm else 'disk, uncached'})")
    print(f"ZIP streamed          {rate / mib:8.0f} MiB/s   ({rate / disk:.2f} of the disk's rate; target >= 0.80)")
    print(f"largest chunk sent    {largest / 1024:8.0f} KiB")
    print(f"peak Python memory    {peak / mib:8.1f} MiB while streaming {streamed / mib:.0f} MiB")


if __name__ == "__main__":
    main()
