"""Share tokens never reach a log: Django's request warnings, tracebacks, and gunicorn's access log as
`make run` starts it (the Procfile's own command line, on a loopback port)."""

from __future__ import annotations

import io
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from django.test import Client

from albums import services
from gallery_project import logs

BASE_DIR = Path(__file__).resolve().parents[2]
TOKEN = "Sh4reT0ken_" + "k" * 32  # the shape of a real one: 43 URL-safe characters


def test_redact_finds_tokens_in_paths_request_lines_and_urls():
    assert logs.redact(f"Not Found: /s/{TOKEN}/") == "Not Found: /s/<redacted>/"
    assert logs.redact(f'"GET /s/{TOKEN}/photos/1/thumbnail HTTP/1.1" 200') == (
        '"GET /s/<redacted>/photos/1/thumbnail HTTP/1.1" 200'
    )
    assert logs.redact(f'"http://127.0.0.1:8000/s/{TOKEN}/"') == '"http://127.0.0.1:8000/s/<redacted>/"'
    assert logs.redact(f"/s/{TOKEN}?cursor=2") == "/s/<redacted>?cursor=2"
    assert logs.redact("GET /static/css/app.css") == "GET /static/css/app.css"


@pytest.fixture
def app_log():
    """What the handler configured by settings.LOGGING writes, while the test runs."""
    handler = next(
        handler
        for handler in logging.getLogger().handlers
        if any(isinstance(f, logs.RedactShareTokens) for f in handler.filters)
    )
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield stream
    handler.setStream(previous)


@pytest.mark.django_db
def test_djangos_own_request_logging_is_redacted(app_log, monkeypatch):
    Client().get(f"/s/{TOKEN}/")
    Client().get(f"/s/{TOKEN}/photos/{uuid.uuid4()}/thumbnail")
    Client(enforce_csrf_checks=True).post(f"/s/{TOKEN}/", {"password": "x"})

    def fail(*, token):
        raise RuntimeError(f"the lookup failed for /s/{token}/")

    monkeypatch.setattr(services, "share_link_resolve", fail)
    assert Client(raise_request_exception=False).get(f"/s/{TOKEN}/").status_code == 500

    written = app_log.getvalue()
    assert TOKEN not in written
    assert "Not Found: /s/<redacted>/" in written
    assert "Forbidden (CSRF cookie not set.): /s/<redacted>/" in written
    assert "Internal Server Error: /s/<redacted>/" in written
    assert "RuntimeError: the lookup failed for /s/<redacted>/" in written, "tracebacks too"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def procfile_web(tmp_path):
    """The Procfile's web process, as `make run` starts it, on a loopback port with a migrated database."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "gallery_project.settings_test",
        "DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "HOST": "127.0.0.1",
        "PORT": str(_free_port()),
        "WEB_WORKERS": "1",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=BASE_DIR, env=env, check=True)
    line = next(line for line in (BASE_DIR / "Procfile").read_text().splitlines() if line.startswith("web:"))
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        # The Procfile's line as honcho runs it, through a shell that expands its ${...}.
        server = subprocess.Popen(  # noqa: S603
            ["/bin/bash", "-c", "exec " + line.removeprefix("web:").strip()],
            cwd=BASE_DIR,
            env=env,
            stdout=stdout,
            stderr=stderr,
        )
    url = f"http://127.0.0.1:{env['PORT']}"
    try:
        # Until it answers; generous, as the machine may be busy running other tests beside this one.
        deadline = time.monotonic() + 120
        while True:
            try:
                requests.get(f"{url}/static/css/app.css", timeout=60)  # WhiteNoise: no view, no badge
                break
            except requests.ConnectionError:
                assert server.poll() is None, err.read_text()
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.1)
        yield url, server
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)


def test_the_procfiles_gunicorn_logs_no_token(procfile_web, tmp_path):
    url, server = procfile_web
    assert requests.get(f"{url}/s/{TOKEN}/", timeout=60).status_code == 404
    thumbnail = f"{url}/s/{TOKEN}/photos/{uuid.uuid4()}/thumbnail"
    assert requests.get(thumbnail, headers={"Referer": f"{url}/s/{TOKEN}/"}, timeout=60).status_code == 404
    assert requests.post(f"{url}/s/{TOKEN}/", data={"password": "x"}, timeout=60).status_code == 403
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=60)
    out, err = (tmp_path / "stdout").read_text(), (tmp_path / "stderr").read_text()

    assert TOKEN not in out + err
    # One access line per request, in whatever order the server's threads wrote them.
    access = sorted(line.split('"', 1)[1] for line in out.splitlines() if "/s/" in line)
    assert len(access) == 3, out
    assert access[0].startswith('GET /s/<redacted>/ HTTP/1.1" 404')
    assert access[1].startswith("GET /s/<redacted>/photos/")
    assert f'"{url}/s/<redacted>/"' in access[1], "the Referer too"
    assert access[2].startswith('POST /s/<redacted>/ HTTP/1.1" 403')
    assert "Not Found: /s/<redacted>/" in err
    assert "Forbidden (CSRF cookie not set.): /s/<redacted>/" in err
