"""Fixtures shared by every app's tests."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from gallery_project.settings import media_storage
from testing.accounts import owner_account

# TEST_MEDIA=s3 (`make test-s3`): every test's photo store is a bucket of its own on a local moto server.
TEST_MEDIA = os.environ.get("TEST_MEDIA", "disk")


@pytest.fixture(scope="session")
def local_s3():
    """moto's S3 in server mode on 127.0.0.1 (a free port), for the whole run."""
    from testing.s3 import LocalS3

    server = LocalS3().start()
    yield server
    server.stop()


def use_bucket(settings, endpoint_url: str, bucket: str, **options) -> None:
    """Keep the photo store in `bucket`, as AWS_STORAGE_BUCKET_NAME and AWS_S3_ENDPOINT_URL would."""
    from gallery_project.settings import media_image_sources
    from testing.s3 import bucket_storage

    policy = settings.CONTENT_SECURITY_POLICY
    sources = media_image_sources(bucket, endpoint_url)
    settings.CONTENT_SECURITY_POLICY = {**policy, "DIRECTIVES": {**policy["DIRECTIVES"], "img-src": sources}}
    settings.AWS_STORAGE_BUCKET_NAME = bucket
    settings.AWS_S3_ENDPOINT_URL = endpoint_url
    settings.STORAGES = {**settings.STORAGES, "media": bucket_storage(endpoint_url, bucket, **options)}


@pytest.fixture(autouse=True)
def _photo_store(settings, tmp_path, request):
    """Every test gets its own empty DATA_DIR and photo store, so files from one test never leak into another."""
    settings.DATA_DIR = tmp_path / "data"
    settings.PHOTOS_DIR = settings.DATA_DIR / "photos"
    settings.PHOTOS_DIR.mkdir(parents=True)
    if TEST_MEDIA == "s3" and not request.node.get_closest_marker("local_media"):
        s3 = request.getfixturevalue("local_s3")
        use_bucket(settings, s3.url, s3.new_bucket())
    else:
        settings.STORAGES = {**settings.STORAGES, "media": media_storage(location=settings.PHOTOS_DIR)}
    return settings.PHOTOS_DIR


@pytest.fixture
def faulty_s3(settings, local_s3, _photo_store):
    """The photo store is a bucket reached through a proxy that spoils the requests a test picks (1 s timeout)."""
    from testing.s3 import FaultyS3

    proxy = FaultyS3(local_s3).start()
    bucket = local_s3.new_bucket()
    use_bucket(settings, proxy.url, bucket, timeout=1)
    yield proxy, bucket
    proxy.stop()


@pytest.fixture
def s3_media(settings, local_s3, _photo_store):
    """This test's photo store is a fresh bucket on the local moto server (whatever TEST_MEDIA says)."""
    bucket = local_s3.new_bucket()
    use_bucket(settings, local_s3.url, bucket)
    return bucket


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch):
    """No test sends a packet beyond this machine (not even one the code under test was right to try): a
    connection to any address but 127.0.0.0/8 or ::1 is refused and fails the test."""
    attempts: list[str] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def loopback(sock: socket.socket, address) -> bool:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return True
        host = str(address[0])
        if host == "localhost":
            return True
        try:
            if ipaddress.ip_address(host.split("%")[0]).is_loopback:
                return True
        except ValueError:
            pass  # another name: connecting would look it up, which is already a packet out
        attempts.append(str(address[0]))
        return False

    def connect(sock, address):
        if not loopback(sock, address):
            raise ConnectionRefusedError(f"tests may not connect to {address[0]}")
        return real_connect(sock, address)

    def connect_ex(sock, address):
        return real_connect_ex(sock, address) if loopback(sock, address) else 111  # ECONNREFUSED

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield attempts
    assert not attempts, f"the test tried to connect beyond loopback: {attempts}"


@pytest.fixture(scope="session", autouse=True)
def _forget_redis_keys():
    """With REDIS_URL, the tasks the suite enqueued (nobody runs them) leave Redis with the run."""
    yield
    from django.conf import settings

    if settings.REDIS_URL:
        from worker.tests.stack import forget_cluster

        forget_cluster(settings.REDIS_URL, settings.Q_CLUSTER["name"])


@pytest.fixture
def user(db):
    """The gallery's owner (a superuser); the photos, albums and sessions tests make belong to it."""
    return owner_account()


@pytest.fixture
def owner_client(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def api(user) -> APIClient:
    api_client = APIClient()
    api_client.force_authenticate(user)
    return api_client


@pytest.fixture
def anon_api() -> APIClient:
    return APIClient()


@pytest.fixture(scope="session")
def live_server(django_db_setup, live_server):
    """pytest-django's live server, started only once the test database exists: started before, it takes the
    database for SQLite's in memory one and shares the test's connection with every request thread (see
    settings_test.py for the deadlock that makes)."""
    return live_server


# --- InvokeAI ---


@pytest.fixture
def fake_invokeai():
    """A fake InvokeAI 6.14 on 127.0.0.1 (random port): move its `clock`, inject faults (see its module)."""
    from testing.fake_invokeai import FakeInvokeAI

    server = FakeInvokeAI().start()
    yield server
    server.stop()


@pytest.fixture
def use_fake_invokeai(settings, fake_invokeai):
    """Point the app's InvokeAI settings at the fake, with short timeouts."""
    settings.INVOKEAI_LOCAL_URL = fake_invokeai.url
    settings.INVOKEAI_CONNECTION_TIMEOUT = 2
    settings.INVOKEAI_READ_TIMEOUT = 2
    return fake_invokeai


# --- Browser tests (real Chromium through Playwright) ---

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "test-artifacts"


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Browser tests need Chromium at {CHROMIUM}: `apt-get install chromium`, or set CHROMIUM_PATH.")
    # Playwright's sync API keeps an event loop in this thread; the test's ORM calls are still synchronous.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-dev-shm-usage",
            ],
        )
        yield chromium
        chromium.close()


# Every page of a context reports its Content-Security-Policy violations to the test, navigations included.
_CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportCspViolation(`${location.pathname}: ${event.violatedDirective} blocked ${event.blockedURI || "inline"}`
    + ` (${event.sourceFile}:${event.lineNumber} ${event.sample})`);
});
"""


def watch_csp(context) -> list[str]:
    """The CSP violations the pages of this browser context report (a page's `watch_console` adds its console's)."""
    violations: list[str] = []
    context.expose_function("reportCspViolation", lambda violation: violations.append(violation))
    context.add_init_script(_CSP_LISTENER)
    return violations


def watch_console(browser_page, violations: list[str]) -> None:
    """Chromium also logs what the policy blocked before any script could listen (a page's own first scripts)."""

    def on_console(message) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            violations.append(f"console on {browser_page.url}: {message.text}")

    browser_page.on("console", on_console)


@pytest.fixture
def page(browser, request):
    """A fresh browser context per test; a screenshot is kept in test-artifacts/ when the test fails.

    The test fails on a JavaScript error or a Content-Security-Policy violation on any page it went through.
    """
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    violations = watch_csp(context)
    browser_page = context.new_page()
    browser_page.set_default_timeout(15_000)
    watch_console(browser_page, violations)
    errors: list[str] = []
    browser_page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield browser_page
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    if failed:
        ARTIFACTS.mkdir(exist_ok=True)
        browser_page.screenshot(path=ARTIFACTS / f"{request.node.name}.png", full_page=True)
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
    assert not violations, "Content-Security-Policy violations:\n" + "\n".join(violations)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def log_in(context, live_server, client, user) -> None:
    """Give a browser context the user's session (for tests that make their own context, e.g. a phone's)."""
    client.force_login(user)
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])


BROWSER_VIEWPORTS = [{"width": 1440, "height": 900}, {"width": 390, "height": 844}]


@pytest.fixture(params=BROWSER_VIEWPORTS, ids=["desktop", "phone"])
def sized_page(request, browser, live_server, user, client):
    """A signed-in page at a desktop's and at a phone's size (`page.viewport`); like `page`, the test fails on a
    JavaScript error or a Content-Security-Policy violation."""
    context = browser.new_context(viewport=request.param)
    violations = watch_csp(context)
    log_in(context, live_server, client, user)
    page = context.new_page()
    page.set_default_timeout(15_000)
    watch_console(page, violations)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.viewport = request.param
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
    assert not violations, "Content-Security-Policy violations:\n" + "\n".join(violations)


@pytest.fixture
def logged_in_page(page, live_server, user, client):
    """A page whose context carries the owner's session (tests of the login form itself use `page`)."""
    log_in(page.context, live_server, client, user)
    return page
