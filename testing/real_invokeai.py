"""The real InvokeAI that tests marked `invokeai` run against (INVOKEAI_TEST_URL, e.g. the peer on 127.0.0.1:9090);
without it they are skipped, so `make test` needs no InvokeAI."""

from __future__ import annotations

import os

import pytest

REAL_URL = os.environ.get("INVOKEAI_TEST_URL", "")

needs_real = pytest.mark.skipif(not REAL_URL, reason="set INVOKEAI_TEST_URL to run against a real InvokeAI")

# For a module whose every test talks to the real server and uses the database.
MODULE_MARKS = [pytest.mark.invokeai, pytest.mark.django_db, needs_real]
