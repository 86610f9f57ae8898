"""Memory of large uploads: six 16-bit RGBA 8192x8192 PNGs uploaded at once to the app as `make run` serves it.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/upload_memory.py [--files 6] [--with-import] [--project PATH]

Starts gunicorn as the Procfile does (WEB_WORKERS=2 processes x 4 threads) on a free loopback port, with a
throwaway DATA_DIR and SQLite database, logs in for an API token, then posts the files from as many threads at
once and samples the resident memory of every gunicorn process every 10 ms (psutil). Prints the peak of their
sum and of the largest one, above what they held before the uploads, and what each upload answered.
`--with-import` also runs `manage.py import_photos` on the same files in its own process (as the worker does
for import jobs) during the uploads, and counts its memory too. `--project` runs another checkout's code (for
example `git worktree add /tmp/before main`) with this script, to compare before and after a change.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
SIDE = 8192
USERNAME, PASSWORD = "bench", "bench-password-not-secret"


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def rgba16_png(path: Path, seed: int) -> None:
    """A 16-bit RGBA gradient, written row by row (512 MB of pixels, a few MB of file): Sub-filtered rows of
    a horizontal gradient are nearly constant, so they compress to almost nothing, as any 8192^2 16-bit PNG
    under the upload limit must."""
    pixel = 8
    row = bytearray(SIDE * pixel)
    for x in range(SIDE):
        struct.pack_into(">HHHH", row, x * pixel, (x * 8 + seed) & 0xFFFF, 0, (seed * 977) & 0xFFFF, 0xFFFF)
    # Sub filter: each byte minus the byte one pixel to the left.
    filtered = bytearray(row[:pixel]) + bytes((row[i] - row[i - pixel]) & 0xFF for i in range(pixel, len(row)))
    compressor = zlib.compressobj(6)
    with path.open("wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n")
        out.write(png_chunk(b"IHDR", struct.pack(">IIBBBBB", SIDE, SIDE, 16, 6, 0, 0, 0)))
        idat = bytearray()
        for y in range(SIDE):
            struct.pack_into(">H", filtered, 2, (y * 8) & 0xFFFF)  # green follows the row: a vertical gradient
            idat += compressor.compress(b"\x01" + filtered)
        idat += compressor.flush()
        out.write(png_chunk(b"IDAT", bytes(idat)))
        out.write(png_chunk(b"IEND", b""))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Sampler(threading.Thread):
    """Peak resident memory of a set of process trees, sampled every 10 ms."""

    def __init__(self, roots: list[psutil.Process]) -> None:
        super().__init__(daemon=True)
        self.roots = roots
        self.peak_total = 0
        self.peak_single = 0
        self.running = True

    def current(self) -> tuple[int, int]:
        sizes = []
        for root in self.roots:
            try:
                processes = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            for process in processes:
                with contextlib.suppress(psutil.NoSuchProcess):
                    sizes.append(process.memory_info().rss)
        return sum(sizes), max(sizes, default=0)

    def run(self) -> None:
        while self.running:
            total, single = self.current()
            self.peak_total = max(self.peak_total, total)
            self.peak_single = max(self.peak_single, single)
            time.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=6)
    parser.add_argument("--with-import", action="store_true", help="also run import_photos on the same files")
    parser.add_argument("--project", type=Path, default=ROOT, help="the checkout whose code serves the uploads")
    args = parser.parse_args()
    project = args.project.resolve()
    python = ROOT / ".venv" / "bin" / "python"

    workdir = Path(tempfile.mkdtemp(prefix="upload-memory-bench-"))
    sources = workdir / "sources"
    sources.mkdir()
    started = time.monotonic()
    files = [sources / f"rgba16-{index}.png" for index in range(args.files)]
    for index, path in enumerate(files):
        rgba16_png(path, seed=index * 31)
    sizes = ", ".join(f"{path.stat().st_size / 1e6:.1f}" for path in files)
    print(f"{args.files} x 16-bit RGBA {SIDE}x{SIDE} PNG ({sizes} MB) made in {time.monotonic() - started:.0f} s")

    env = {
        **os.environ,
        "DATA_DIR": str(workdir / "data"),
        "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
        "SECRET_KEY": "upload-memory-bench",
        "DJANGO_SETTINGS_MODULE": "gallery_project.settings",
        "DJANGO_SUPERUSER_USERNAME": USERNAME,
        "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
        "LOG_LEVEL": "WARNING",
    }
    for command in (["migrate", "--noinput", "--verbosity", "0"], ["ensure_superuser"]):
        subprocess.run([python, "manage.py", *command], cwd=project, env=env, check=True, capture_output=True)  # noqa: S603
    port = free_port()
    workers = os.environ.get("WEB_WORKERS", "2")
    gunicorn = subprocess.Popen(  # noqa: S603  (the Procfile's command line)
        [
            *(ROOT / ".venv" / "bin" / "gunicorn", "gallery_project.wsgi", "--bind", f"127.0.0.1:{port}"),
            *("--workers", workers, "--threads", "4", "--timeout", "120", "--no-control-socket"),
        ],
        cwd=project,
        env=env,
        stderr=subprocess.DEVNULL,
    )
    importer = None
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                token = requests.post(
                    f"{url}/api/auth/token/", data={"username": USERNAME, "password": PASSWORD}, timeout=5
                ).json()["token"]
                break
            except (requests.ConnectionError, KeyError):
                time.sleep(0.1)
        else:
            raise SystemExit("gunicorn did not answer")
        server = psutil.Process(gunicorn.pid)
        time.sleep(1)  # let every worker finish booting
        sampler = Sampler([server])
        idle_total, idle_single = sampler.current()
        print(f"gunicorn: {workers} processes x 4 threads, code from {project}; idle {idle_total / 2**20:.0f} MB")

        def upload(path: Path) -> str:
            begin = time.monotonic()
            with path.open("rb") as fh:
                response = requests.post(
                    f"{url}/api/photos/",
                    headers={"Authorization": f"Token {token}"},
                    files={"file": (path.name, fh, "image/png")},
                    timeout=600,
                )
            body = response.json()
            outcome = f"{body['width']}x{body['height']}" if response.ok else f"{body['code']}: {body['message']}"
            return f"   {path.name}: {response.status_code} in {time.monotonic() - begin:.1f} s, {outcome}"

        sampler.start()
        begin = time.monotonic()
        if args.with_import:
            importer = subprocess.Popen(  # noqa: S603
                [python, "manage.py", "import_photos", str(sources), "--verbosity", "0"],
                cwd=project,
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            sampler.roots.append(psutil.Process(importer.pid))
        with ThreadPoolExecutor(max_workers=len(files)) as pool:
            outcomes = list(pool.map(upload, files))
        if importer is not None:
            imported = importer.communicate()[0].strip().splitlines()[0]
            outcomes.append(f"   import_photos: {imported}")
        elapsed = time.monotonic() - begin
        sampler.running = False
        sampler.join()
        print("\n".join(outcomes))
        print(
            f"   all done in {elapsed:.1f} s; peak RSS above idle: {(sampler.peak_total - idle_total) / 2**20:.0f} MB "
            f"(all processes together, peak {sampler.peak_total / 2**20:.0f} MB), "
            f"{(sampler.peak_single - idle_single) / 2**20:.0f} MB in the largest one"
        )
    finally:
        if importer is not None and importer.poll() is None:
            importer.kill()
        gunicorn.terminate()
        gunicorn.wait()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
