"""Settings for the test suite: the real settings, pointed at a throwaway DATA_DIR, with fast hashing."""

import os
import tempfile
import uuid
from pathlib import Path

os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="gallery-test-"))
os.environ.setdefault("SECRET_KEY", "test-only-not-secret")
os.environ.setdefault("DATABASE_URL", "sqlite://:memory:")
# With REDIS_URL (the Redis pass of .ci/run), the tasks this run enqueues go under keys of its own, deleted at
# its end (conftest.py), so runs sharing one Redis never see each other's.
os.environ.setdefault("Q_CLUSTER_NAME", f"test-{uuid.uuid4().hex[:12]}")

from .settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The manifest needs collectstatic; tests serve static files from the finders instead.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
# No worker runs beside the suite: without this, every page would show the "background work has stopped" alert
# once the test database is three minutes old. The worker's own tests set it back.
WORKER_HEARTBEAT_STALE_AFTER = 10**9
# Nothing in the suite may reach an InvokeAI it did not start: the default (localhost:9090) is where the real peer
# listens on a developer's machine, and a test passing only beside it (or only without it) fails CI. Port 9 on
# loopback refuses at once; tests that want an InvokeAI point this at the fake or, with INVOKEAI_TEST_URL, the peer.
INVOKEAI_LOCAL_URL = "http://127.0.0.1:9"
# Django's test database for SQLite is in memory by default, and then the live server's request threads share the
# test's one connection. Two threads on one sqlite3 connection deadlock for good when one is inside a SQL function
# Django defines in Python (it waits for the GIL holding the connection's mutex while the other waits for that
# mutex holding the GIL): a browser test then hangs the whole run, past any timeout. A file gives each thread its
# own connection, as PostgreSQL does.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": str(Path(tempfile.mkdtemp(prefix="gallery-test-db-")) / "test.sqlite3")}  # noqa: F405
