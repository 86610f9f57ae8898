"""View and download counters under concurrent requests: no lost counts, and never past a limit.

Real concurrency needs real connections: these run on PostgreSQL (CI runs the suite there too). SQLite
serialises every write anyway, so there is nothing to race.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connection, connections
from django.test import Client

from albums import services
from albums.models import ShareLink, SharePasswordFailures
from gallery_project.errors import TooManyRequests
from photos.tests.factories import PhotoFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs concurrent connections (PostgreSQL)"),
]

THREADS = 12
ATTEMPTS = 10


def race(work: Callable[[], bool]) -> int:
    """Run `work` ATTEMPTS times in each of THREADS threads, all starting together; count the True results."""
    start = threading.Barrier(THREADS)
    results: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            start.wait()
            outcomes = [work() for _ in range(ATTEMPTS)]
            with lock:
                results.extend(outcomes)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == THREADS * ATTEMPTS, "a worker failed"
    return sum(results)


def link(**settings) -> ShareLink:
    photo = PhotoFactory()
    return services.share_link_create(owner=photo.owner, photo_id=photo.pk, **settings).link


def test_no_view_is_lost():
    shared = link()
    assert race(lambda: services.share_link_count_view(link_id=shared.pk)) == THREADS * ATTEMPTS
    assert ShareLink.objects.get(pk=shared.pk).view_count == THREADS * ATTEMPTS


def test_views_stop_exactly_at_the_limit():
    shared = link(max_views=37)
    assert race(lambda: services.share_link_count_view(link_id=shared.pk)) == 37
    assert ShareLink.objects.get(pk=shared.pk).view_count == 37


def test_downloads_stop_exactly_at_the_limit():
    shared = link(allow_download=True, max_downloads=23)
    assert race(lambda: services.share_link_count_download(link_id=shared.pk)) == 23
    assert ShareLink.objects.get(pk=shared.pk).download_count == 23


def test_concurrent_page_loads_are_each_counted():
    photo = PhotoFactory()
    shared = services.share_link_create(owner=photo.owner, photo_id=photo.pk, max_views=50)
    url = f"/s/{shared.token}/"

    def load() -> bool:
        return Client().get(url).status_code == 200

    assert race(load) == 50
    assert ShareLink.objects.get(pk=shared.link.pk).view_count == 50


def test_wrong_passwords_are_all_counted(settings):
    settings.SHARE_PASSWORD_FAILURES_PER_LINK_AND_CLIENT = 1000
    settings.SHARE_PASSWORD_FAILURES_PER_LINK = 1000
    settings.SHARE_PASSWORD_FAILURES_PER_CLIENT = 1000
    shared = link(password="open sesame")

    def guess() -> bool:
        return services.share_link_check_password(link=shared, password="wrong", client="127.0.0.1")

    assert race(guess) == 0
    failures = dict(SharePasswordFailures.objects.values_list("key", "failures"))
    assert failures == {
        f"link:{shared.pk}:client:127.0.0.1": THREADS * ATTEMPTS,
        f"link:{shared.pk}": THREADS * ATTEMPTS,
        "client:127.0.0.1": THREADS * ATTEMPTS,
    }


def test_concurrent_guesses_never_pass_a_limit_and_refusals_give_their_slots_back(settings):
    settings.SHARE_PASSWORD_FAILURES_PER_LINK_AND_CLIENT = 7
    shared = link(password="open sesame")

    def guess() -> bool:
        try:
            services.share_link_check_password(link=shared, password="wrong", client="127.0.0.1")
        except TooManyRequests:
            return False
        return True

    assert race(guess) == 7
    failures = dict(SharePasswordFailures.objects.values_list("key", "failures"))
    assert failures[f"link:{shared.pk}"] == 7
