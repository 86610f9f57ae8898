from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from photos.models import Photo

pytestmark = pytest.mark.django_db


def test_fresh_install_sends_login_to_setup_and_setup_creates_the_owner(client):
    assert client.get("/").url.startswith("/login/")
    assert client.get("/login/").url == "/setup/"

    weak = client.post("/setup/", {"username": "me", "password1": "123", "password2": "123"})
    assert weak.status_code == 200
    assert not get_user_model().objects.exists()

    response = client.post(
        "/setup/",
        {"username": "me", "password1": "a long passphrase 42", "password2": "a long passphrase 42"},
    )
    assert response.url == "/"
    owner = get_user_model().objects.get()
    assert owner.is_superuser and owner.is_staff
    assert client.get("/").status_code == 200


def test_setup_is_closed_once_an_account_exists(client, user):
    assert client.get("/setup/").url == "/login/"
    response = client.post(
        "/setup/", {"username": "x", "password1": "another long pass 1", "password2": "another long pass 1"}
    )
    assert response.url == "/login/"
    assert get_user_model().objects.count() == 1


def test_login_form(client, user):
    assert client.get("/login/").status_code == 200
    response = client.post("/login/", {"username": "owner", "password": "correct horse battery"})
    assert response.url == "/"


def test_ensure_superuser_creates_once(monkeypatch, capsys):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "admin")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "s3cret-enough")
    call_command("ensure_superuser")
    call_command("ensure_superuser")
    admin = get_user_model().objects.get()
    assert admin.username == "admin" and admin.is_superuser and admin.check_password("s3cret-enough")
    assert "already exists" in capsys.readouterr().out


def test_ensure_superuser_without_variables_does_nothing(monkeypatch):
    monkeypatch.delenv("DJANGO_SUPERUSER_USERNAME", raising=False)
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)
    call_command("ensure_superuser")
    assert not get_user_model().objects.exists()


def test_rows_without_an_owner_go_to_the_first_account_however_it_was_made(monkeypatch):
    from albums.models import Album
    from photos.tests.factories import PhotoFactory

    photo = PhotoFactory.build(owner=None)
    photo.save()
    album = Album.objects.create(name="From before")
    monkeypatch.delenv("DJANGO_SUPERUSER_USERNAME", raising=False)
    call_command("ensure_superuser")
    assert Photo.objects.get().owner is None, "no account yet: they wait"

    admin = get_user_model().objects.create_superuser(username="made-by-createsuperuser", password="x-long-pass")
    call_command("ensure_superuser")
    photo.refresh_from_db()
    album.refresh_from_db()
    assert photo.owner == admin and album.owner == admin


def test_the_test_clients_login_still_works(client, user):
    """Logins limits apply to requests; authenticate() without one (scripts, client.login) is not refused."""
    assert client.login(username="owner", password="correct horse battery")
    assert client.get("/").status_code == 200
