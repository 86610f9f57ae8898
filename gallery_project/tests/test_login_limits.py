"""Wrong passwords are limited per (username, client address) on all three ways in: the login page (typed in
Chromium), the admin's login and POST /api/auth/token/. The owner can still log in from another address
during an attack, and from the attacker's address too once the cool-off has passed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import F
from playwright.sync_api import expect
from rest_framework.test import APIClient

from conftest import ARTIFACTS
from testing.accounts import OWNER, PASSWORD

ATTACKER, OWNER_ADDRESS = "127.0.0.5", "127.0.0.6"


def after_the_cool_off() -> None:
    """What the clock does, without waiting: every recorded failure becomes older than the cool-off."""
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))


@pytest.mark.django_db
def test_the_token_api_is_limited_per_username_and_address(user):
    attacker, owner = APIClient(REMOTE_ADDR=ATTACKER), APIClient(REMOTE_ADDR=OWNER_ADDRESS)
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        wrong = attacker.post("/api/auth/token/", {"username": OWNER, "password": "guess"})
        assert wrong.status_code == 400 and wrong.json()["code"] == "invalid"
    locked = attacker.post("/api/auth/token/", {"username": OWNER, "password": "guess"})
    assert locked.status_code == 429
    assert locked.json()["code"] == "rate_limited"
    assert int(locked["Retry-After"]) == settings.AXES_COOLOFF_TIME.total_seconds()

    # The right password does not get through from the attacker's address...
    assert attacker.post("/api/auth/token/", {"username": OWNER, "password": PASSWORD}).status_code == 429
    # ...but does from the owner's.
    token = owner.post("/api/auth/token/", {"username": OWNER, "password": PASSWORD})
    assert token.status_code == 200 and token.json()["token"]

    after_the_cool_off()
    assert attacker.post("/api/auth/token/", {"username": OWNER, "password": PASSWORD}).status_code == 200


@pytest.mark.django_db
def test_the_admin_login_is_limited_per_username_and_address(client, user):
    def log_in(password: str, address: str):
        return client.post("/admin/login/?next=/admin/", {"username": OWNER, "password": password}, REMOTE_ADDR=address)

    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in("guess", ATTACKER).status_code == 200  # the form again, with its error
    locked = log_in("guess", ATTACKER)
    assert locked.status_code == 429 and "Too many wrong passwords" in locked.content.decode()
    assert log_in(PASSWORD, ATTACKER).status_code == 429

    assert log_in(PASSWORD, OWNER_ADDRESS)["Location"] == "/admin/"
    client.logout()
    after_the_cool_off()
    assert log_in(PASSWORD, ATTACKER)["Location"] == "/admin/"


@pytest.mark.django_db
def test_a_locked_pair_does_not_lock_other_usernames_from_that_address(client, user):
    from testing.accounts import other_account

    other_account("someone")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/login/", {"username": OWNER, "password": "guess"}, REMOTE_ADDR=ATTACKER)
    response = client.post("/login/", {"username": "someone", "password": PASSWORD}, REMOTE_ADDR=ATTACKER)
    assert response.status_code == 302


def type_login(page, url: str, password: str) -> None:
    page.goto(f"{url}/login/")
    page.get_by_label("Username").fill("")
    page.get_by_label("Username").type(OWNER)
    page.get_by_label("Password").type(password)
    page.get_by_label("Password").press("Enter")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_login_page_in_a_browser(browser, live_server, user):
    """Two browsers: an attacker guessing from one address, the owner at another (both through the trusted
    proxy on 127.0.0.1, which names them in X-Forwarded-For)."""
    attacker_context = browser.new_context(extra_http_headers={"X-Forwarded-For": ATTACKER})
    owner_context = browser.new_context(extra_http_headers={"X-Forwarded-For": OWNER_ADDRESS})
    attacker, owner = attacker_context.new_page(), owner_context.new_page()
    try:
        for _ in range(settings.AXES_FAILURE_LIMIT - 1):
            type_login(attacker, live_server.url, "a wrong guess")
            expect(attacker.locator(".error")).to_contain_text("enter a correct username and password")
        type_login(attacker, live_server.url, "a wrong guess")
        expect(attacker.locator(".error")).to_contain_text("Too many wrong passwords for this username")
        type_login(attacker, live_server.url, PASSWORD)
        expect(attacker.locator(".error")).to_contain_text("Too many wrong passwords for this username")
        ARTIFACTS.mkdir(exist_ok=True)
        attacker.screenshot(path=ARTIFACTS / "login-locked.png")
        attacker.set_viewport_size({"width": 390, "height": 844})
        attacker.screenshot(path=ARTIFACTS / "login-locked-phone.png")

        # Meanwhile the owner, elsewhere, logs in.
        type_login(owner, live_server.url, PASSWORD)
        expect(owner).to_have_url(f"{live_server.url}/")
        expect(owner.locator(".topbar")).to_contain_text(OWNER)

        after_the_cool_off()
        type_login(attacker, live_server.url, PASSWORD)
        expect(attacker).to_have_url(f"{live_server.url}/")
    finally:
        attacker_context.close()
        owner_context.close()
