"""The browser tests' live server: each request thread has a database connection of its own.

Sharing the test's SQLite connection between threads deadlocked a whole run (see settings_test.py): one thread
waits for the GIL inside a SQL function while holding the connection, the other holds the GIL waiting for it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_live_server_shares_no_connection_with_the_test(live_server):
    assert connection.vendor != "sqlite" or not connection.is_in_memory_db()
    assert live_server.thread.connections_override == {}


def test_concurrent_pages_that_group_by_month_all_answer(live_server, owner_client, upload):
    for index in range(3):
        upload(f"p{index}.jpg")
    cookies = {"sessionid": owner_client.cookies["sessionid"].value}
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(
                lambda _: requests.get(f"{live_server.url}/timeline/months/", cookies=cookies, timeout=30), range(40)
            )
        )
    assert {answer.status_code for answer in answers} == {200}
