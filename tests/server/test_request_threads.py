"""A request waits for a request thread without holding a pooled connection. With every thread
busy and every connection held by a request that had checked its sign-in and waited for a
thread to run its endpoint, the pool and the threads would wait on each other until the pool
gave up (30 s, then 503 busy): bench/scaleout.py saw it at 128 approvals a second."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

import server.app
import server.db


@pytest.fixture
def few_threads_and_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """2 request threads and 3 pooled connections (30 and 40 in service): the same wait as
    thousands of requests would make, with 20. Set before the app and its engine exist."""
    monkeypatch.setattr(server.app, "REQUEST_THREADS", 2)
    monkeypatch.setattr(server.db, "POOL_SIZE", 3)


@pytest.mark.sqlite_pass_only  # the engine of a PostgreSQL test URL exists already, full size
def test_twenty_staff_requests_at_once_on_two_threads_all_answer(
        few_threads_and_connections: None, staff: Any, live_server: str) -> None:
    admin = staff("admin")
    cookies = dict(admin.cookies)

    def ask(_: int) -> int:
        with httpx.Client(base_url=live_server, cookies=cookies, timeout=25,
                          trust_env=False) as client:
            return client.get("/api/revisions").status_code

    started = time.monotonic()
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(ask, range(20)))
    assert answers == [200] * 20
    assert time.monotonic() - started < 10
