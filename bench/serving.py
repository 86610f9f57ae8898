"""Photo files at static-file speed: the app's thumbnails against WhiteNoise, and the first thumbnail in Chromium.

    .venv/bin/python bench/serving.py [--rounds 40] [--loads 15] [--skip-browser]

Starts gunicorn as the Procfile does (WEB_WORKERS=2 processes x 4 threads, access log on) on a free loopback
port with a throwaway DATA_DIR and SQLite database holding 75 uploaded photos (1200x900 JPEGs). The grid's 60
thumbnails are also copied into STATIC_ROOT, so WhiteNoise serves the very same bytes from the same server.

1. Thumbnails: 60 files fetched over 6 keep-alive connections (what a browser does for one screen), timed from
   the first request to the last byte; the sides take turns round after round, and the medians are compared.
   Sides: the signed URLs the gallery mints, WhiteNoise, and the old per-photo API URL with a session
   (`/api/photos/<id>/thumbnail`, what every thumbnail cost before). Target: signed / WhiteNoise <= 1.3.
2. First thumbnail painted: Chromium (Playwright) opens the gallery in a fresh context each time (cold cache,
   a logged-in session cookie) and reads the first thumbnail's paint time from the Element Timing API
   (`elementtiming` on the grid's images), relative to the navigation's start. Median of the loads. Target:
   <= 250 ms.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
USERNAME, PASSWORD = "bench", "bench-password-not-secret"
PHOTOS, GRID, CONNECTIONS = 75, 60, 6

# Runs inside the app (manage.py shell): uploads the photos, prints each one's signed and API thumbnail URL.
_FILL = f"""
import io, json, random
from PIL import Image
from django.contrib.auth import get_user_model
from photos import media, services
owner = get_user_model().objects.get(username={USERNAME!r})
rows = []
for index in range({PHOTOS}):
    image = Image.effect_noise((1200, 900), 40 + index % 50).convert("RGB")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88)
    data = out.getvalue()
    photo = services.photo_create(owner=owner, file=io.BytesIO(data), filename=f"p{{index}}.jpg", size=len(data)).photo
    rows.append(dict(signed=media.signed_url(photo.local_thumbnail_path), api=f"/api/photos/{{photo.pk}}/thumbnail",
                     thumbnail=photo.local_thumbnail_path))
print(json.dumps(rows))
"""

_FIRST_THUMBNAIL = """
() => new Promise((resolve) => {
  new PerformanceObserver((list) => {
    const painted = list.getEntries().filter((entry) => entry.identifier === "thumbnail");
    if (!painted.length) return;
    const first = painted.reduce((a, b) => ((a.renderTime || a.loadTime) <= (b.renderTime || b.loadTime) ? a : b));
    const resource = performance.getEntriesByName(first.url)[0];
    resolve({
      painted: first.renderTime || first.loadTime,
      html: performance.getEntriesByType("navigation")[0].responseEnd,
      firstPaint: performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? null,
      requested: resource ? resource.startTime : null,
      loaded: resource ? resource.responseEnd : null,
    });
  }).observe({type: "element", buffered: true});
})
"""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch_all(port: int, paths: list[str], headers: dict[str, str]) -> float:
    """Seconds to fetch every path over CONNECTIONS keep-alive connections, each taking the next path free."""
    todo: queue.SimpleQueue[str] = queue.SimpleQueue()
    for path in paths:
        todo.put(path)
    connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(CONNECTIONS)]
    for connection in connections:
        connection.connect()
    failures: list[str] = []

    def worker(connection: http.client.HTTPConnection) -> None:
        while True:
            try:
                path = todo.get_nowait()
            except queue.Empty:
                return
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                failures.append(f"{path}: {response.status}")

    threads = [threading.Thread(target=worker, args=(connection,)) for connection in connections]
    begin = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - begin
    for connection in connections:
        connection.close()
    if failures:
        raise SystemExit(f"requests failed: {failures[:3]}")
    return elapsed


def login(url: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{url}/login/", timeout=10)
    answer = session.post(
        f"{url}/login/",
        data={"username": USERNAME, "password": PASSWORD, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": f"{url}/login/"},
        timeout=10,
        allow_redirects=False,
    )
    if answer.status_code != 302:
        raise SystemExit(f"login failed: {answer.status_code}")
    return session


def first_thumbnail(url: str, session: requests.Session, loads: int) -> list[dict[str, float]]:
    from playwright.sync_api import sync_playwright

    cookies = [
        {"name": cookie.name, "value": cookie.value or "", "url": url} for cookie in session.cookies if cookie.value
    ]
    times = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"),
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"],
        )
        for index in range(loads + 1):
            context = browser.new_context(viewport={"width": 1440, "height": 900})
            context.add_cookies(cookies)
            page = context.new_page()
            page.goto(f"{url}/")
            load = page.evaluate(_FIRST_THUMBNAIL)
            page.wait_for_load_state("load")
            load["domReady"] = page.evaluate("performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd")
            if index:  # the first load warms the server's own caches (templates, static manifest)
                times.append(load)
            context.close()
        browser.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--loads", type=int, default=15)
    parser.add_argument("--skip-browser", action="store_true")
    args = parser.parse_args()
    python = ROOT / ".venv" / "bin" / "python"
    workdir = Path(tempfile.mkdtemp(prefix="serving-bench-"))
    data_dir = workdir / "data"
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
        "SECRET_KEY": "serving-bench",
        "DJANGO_SETTINGS_MODULE": "gallery_project.settings",
        "DJANGO_SUPERUSER_USERNAME": USERNAME,
        "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
        "LOG_LEVEL": "WARNING",
    }

    def manage(*command: str) -> str:
        return subprocess.run(  # noqa: S603
            [python, "manage.py", *command], cwd=ROOT, env=env, check=True, capture_output=True, text=True
        ).stdout

    manage("migrate", "--noinput", "--verbosity", "0")
    manage("collectstatic", "--noinput", "--verbosity", "0")
    manage("ensure_superuser")
    rows = json.loads(manage("shell", "-c", _FILL).strip().splitlines()[-1])[:GRID]
    static = data_dir / "staticfiles" / "bench"
    static.mkdir(parents=True)
    for index, row in enumerate(rows):
        shutil.copyfile(data_dir / "photos" / row["thumbnail"], static / f"{index}.webp")
    size = sum((static / f"{index}.webp").stat().st_size for index in range(len(rows)))
    port = free_port()
    workers = os.environ.get("WEB_WORKERS", "2")
    gunicorn = subprocess.Popen(  # noqa: S603  (the Procfile's command line)
        [
            *(ROOT / ".venv" / "bin" / "gunicorn", "gallery_project.wsgi", "--bind", f"127.0.0.1:{port}"),
            *("--workers", workers, "--threads", "4", "--timeout", "120", "--access-logfile", "-"),
            *("--logger-class", "gallery_project.logs.GunicornLogger", "--no-control-socket"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                requests.get(f"{url}/login/", timeout=5)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        else:
            raise SystemExit("gunicorn did not answer")
        session = login(url)
        cookie = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
        sides = {
            "signed URLs": ([row["signed"] for row in rows], {}),
            "WhiteNoise": ([f"/static/bench/{index}.webp" for index in range(len(rows))], {}),
            "API with session (before)": ([row["api"] for row in rows], {"Cookie": cookie}),
        }
        timings: dict[str, list[float]] = {name: [] for name in sides}
        for paths, headers in sides.values():
            fetch_all(port, paths, headers)  # warm every worker
        for _ in range(args.rounds):
            for name, (paths, headers) in sides.items():
                timings[name].append(fetch_all(port, paths, headers))
        print(
            f"{len(rows)} thumbnails ({size / len(rows) / 1024:.1f} KiB each) over {CONNECTIONS} connections, "
            f"gunicorn {workers} processes x 4 threads, {args.rounds} rounds, medians:"
        )
        whitenoise = statistics.median(timings["WhiteNoise"])
        for name, values in timings.items():
            median = statistics.median(values)
            print(f"   {name:28} {median * 1000:6.1f} ms   {median / whitenoise:.2f}x WhiteNoise")
        if not args.skip_browser:
            loads = first_thumbnail(url, session, args.loads)
            times = [load["painted"] for load in loads]
            print(
                f"first thumbnail painted in Chromium ({PHOTOS}-photo gallery, 1440x900, {len(times)} cold loads): "
                f"median {statistics.median(times):.0f} ms, min {min(times):.0f}, max {max(times):.0f}"
            )
            steps = ", ".join(
                f"{label} {statistics.median(load[key] for load in loads):.0f} ms"
                for key, label in (
                    ("html", "HTML received"),
                    ("domReady", "DOMContentLoaded done"),
                    ("firstPaint", "first contentful paint"),
                    ("requested", "thumbnail requested"),
                    ("loaded", "loaded"),
                )
            )
            print(f"   medians after navigation start: {steps}")
    finally:
        gunicorn.terminate()
        gunicorn.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
