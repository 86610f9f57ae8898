"""Defence in depth: cookies behind HTTPS, a private DATA_DIR, API tokens stored hashed."""

from __future__ import annotations

import importlib
import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from knox.models import AuthToken
from rest_framework.test import APIClient

from photos import services as photo_services
from photos.tests.images import image_bytes
from testing.accounts import OWNER, PASSWORD

ROOT = Path(__file__).resolve().parents[2]
hash_legacy_tokens = importlib.import_module("gallery_project.migrations.0001_api_tokens_hashed").hash_legacy_tokens
_SETTINGS = ["SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_PROXY_SSL_HEADER", "SECURE_HSTS_SECONDS"]


def settings_with(tmp_path, **env) -> dict:
    """The settings a fresh process computes from this environment (no .env file is read for the test)."""
    script = (
        "import json, django; from django.conf import settings; django.setup(); "
        f"print(json.dumps({{name: getattr(settings, name, None) for name in {_SETTINGS!r}}}))"
    )
    environment = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "gallery_project.settings",
        "DATA_DIR": str(tmp_path / "settings-data"),
        "SECRET_KEY": "test",
        "DATABASE_URL": "sqlite://:memory:",
        **env,
    }
    result = subprocess.run(  # noqa: S603 (this interpreter, a constant script)
        [sys.executable, "-c", script], cwd=ROOT, env=environment, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_cookies_are_secure_behind_https_and_settable_alone(tmp_path):
    plain = settings_with(tmp_path)
    assert plain == {
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
        "SECURE_PROXY_SSL_HEADER": None,
        "SECURE_HSTS_SECONDS": 0,
    }
    https = settings_with(tmp_path, HTTPS="true")
    assert https["SESSION_COOKIE_SECURE"] and https["CSRF_COOKIE_SECURE"]
    assert https["SECURE_PROXY_SSL_HEADER"] is None, "a proxy's header is trusted only when told to"
    assert settings_with(tmp_path, HTTPS="true", SESSION_COOKIE_SECURE="false")["SESSION_COOKIE_SECURE"] is False
    assert settings_with(tmp_path, CSRF_COOKIE_SECURE="true")["CSRF_COOKIE_SECURE"] is True
    proxied = settings_with(tmp_path, HTTPS="true", TRUST_X_FORWARDED_PROTO="true", SECURE_HSTS_SECONDS="3600")
    assert proxied["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert proxied["SECURE_HSTS_SECONDS"] == 3600


@pytest.mark.django_db
def test_secure_cookies_are_sent_secure(client, settings, user):
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    client.get("/login/", secure=True)
    response = client.post("/login/", {"username": OWNER, "password": PASSWORD}, secure=True)
    assert response.cookies["sessionid"]["secure"]
    assert client.get("/", secure=True).status_code == 200


def _open_to_others(path: Path) -> bool:
    return bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))


def test_a_fresh_data_dir_and_its_database_are_private(tmp_path):
    data = tmp_path / "fresh"
    data.mkdir(mode=0o755)
    data.chmod(0o755)  # as an install from before made it
    environment = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "gallery_project.settings",
        "DATA_DIR": str(data),
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=ROOT, env=environment, check=True)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "db.sqlite3").stat().st_mode) == 0o600
    assert stat.S_IMODE((data / "secret_key").stat().st_mode) == 0o600
    assert not [path for path in data.rglob("*") if _open_to_others(path)]


@pytest.mark.django_db
def test_nothing_written_under_data_dir_is_readable_by_others(user):
    data = image_bytes()
    photo_services.photo_create(owner=user, file=io.BytesIO(data), filename="a.jpg", size=len(data))
    written = list(Path(settings.DATA_DIR).rglob("*"))
    assert len(written) > 3  # the original, its renditions, their directories
    assert not [path for path in written if _open_to_others(path)]


@pytest.mark.django_db
def test_api_tokens_are_stored_hashed_and_work_as_documented(user):
    api = APIClient()
    response = api.post("/api/auth/token/", {"username": OWNER, "password": PASSWORD})
    assert response.status_code == 200
    token = response.json()["token"]
    stored = AuthToken.objects.get()
    assert token not in (stored.digest, stored.token_key) and token not in json.dumps(
        list(AuthToken.objects.values()), default=str
    )
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/photos/").status_code == 200
    altered = token[:-1] + ("1" if token[-1] == "0" else "0")
    api.credentials(HTTP_AUTHORIZATION=f"Token {altered}")
    assert api.get("/api/photos/").status_code == 401


# Transactional: SQLite's schema editor cannot run inside the test's transaction.
@pytest.mark.django_db(transaction=True)
def test_tokens_from_before_keep_working_and_their_plain_copies_are_dropped(user):
    """The migration that replaced DRF's plain tokens: an existing token is hashed, its table dropped."""
    legacy = "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created timestamp, user_id integer)")
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, CURRENT_TIMESTAMP, %s)", [legacy, user.pk])
    from django.apps import apps

    with connection.schema_editor() as editor:
        hash_legacy_tokens(apps, editor)
    assert "authtoken_token" not in connection.introspection.table_names()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {legacy}")
    assert api.get("/api/photos/").status_code == 200


def test_a_data_dir_left_open_is_reported(settings):
    from gallery_project.checks import check_data_dir

    assert check_data_dir() == []
    Path(settings.DATA_DIR).chmod(0o755)
    assert [warning.id for warning in check_data_dir()] == ["gallery.W010"]
