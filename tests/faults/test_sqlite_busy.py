"""SQLite busy under concurrent writes, on a real `kaifang serve` (its request threads, its
registration desk and its embedded worker writing the outbox meanwhile): a burst of citizens
registering on one session and on several, staff editing sessions, all at once, every answer
2xx (or a correct 409), none a 500, none a 503 before KAIFANG_LOCK_TIMEOUT_S; with another
connection holding SQLite's write lock for less than the deadline, requests wait and succeed;
held past it, they get 503 `busy` with Retry-After at the deadline, then succeed once it is
free.

SQLite only: its one write lock is what is held here (PostgreSQL's row locks and its restart
are tests/faults/test_pg_restart.py's)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PASSWORD
from tests.faults.media_procs import ready, serve
from tests.helpers import open_session

pytestmark = pytest.mark.sqlite_pass_only

DEADLINE_S = 10.0  # KAIFANG_LOCK_TIMEOUT_S's default, the first server's
SHORT_DEADLINE_S = 1.0  # the second server's
NO_LIMITS = {"KAIFANG_REGISTRATION_LIMIT_PER_ADDRESS": "0",
             "KAIFANG_REGISTRATION_LIMIT_PER_PHONE": "0", "KAIFANG_WORKER_INTERVAL_S": "0.2"}

Answer = tuple[str, int, float, httpx.Response]  # what, status, seconds, response


def _run(scenario: Awaitable[Any]) -> Any:
    """On an event loop of its own, in a thread (a browser test's loop may run in this one)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, scenario).result()  # type: ignore[arg-type]


class Site:
    """One server as its users reach it: citizens (no account) and a signed-in admin."""

    def __init__(self, url: str, admin: str) -> None:
        self.url, self.admin = url, admin

    async def __aenter__(self) -> Site:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        self.public = httpx.AsyncClient(base_url=self.url, timeout=60, limits=limits)
        self.staff = httpx.AsyncClient(base_url=self.url, timeout=60, limits=limits)
        signed = await self.staff.post("/api/session",
                                       json={"username": self.admin, "password": PASSWORD})
        assert signed.status_code == 200, signed.text
        self.staff.headers["X-CSRF-Token"] = signed.json()["csrf_token"]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.public.aclose()
        await self.staff.aclose()

    async def timed(self, what: str, call: Callable[[], Awaitable[httpx.Response]]) -> Answer:
        started = time.monotonic()
        response = await call()
        return what, response.status_code, time.monotonic() - started, response

    def register(self, event_id: int, phone: int) -> Awaitable[Answer]:
        return self.timed("register", lambda: self.public.post(
            f"/api/events/{event_id}/registrations",
            json={"name": "市民", "phone": f"139{phone:08d}", "consent": True}))

    def edit(self, event_id: int, n: int) -> Awaitable[Answer]:
        return self.timed("edit", lambda: self.staff.patch(
            f"/api/events/{event_id}", json={"summary": f"第{n}次更新的会议简介。"}))


def _admin_name(db: Any) -> str:
    from sqlmodel import select

    from events.models import Role, StaffUser

    admin = db.exec(select(StaffUser).where(StaffUser.role == Role.admin)).first()
    assert admin is not None
    return str(admin.username)


class HeldLock:
    """Another connection holding SQLite's write lock (BEGIN IMMEDIATE) until released."""

    def __init__(self, database: Path) -> None:
        self.connection = sqlite3.connect(database, isolation_level=None, timeout=30)

    def __enter__(self) -> HeldLock:
        self.connection.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, *exc: object) -> None:
        self.connection.execute("COMMIT")
        self.connection.close()


async def _while_held(database: Path, hold_s: float,
                      requests: Callable[[], list[Awaitable[Answer]]]) -> list[Answer]:
    """The requests, sent once the write lock is held; it is let go after `hold_s`."""
    with HeldLock(database):
        sent = asyncio.gather(*requests())
        await asyncio.sleep(hold_s)
    return list(await sent)


async def _retried(send: Callable[[], Awaitable[Answer]], within_s: float = 15.0) -> Answer:
    """The request again after each 503 `busy` (as a page does, after a moment), until it
    gets another answer or `within_s` is over."""
    deadline = time.monotonic() + within_s
    while True:
        answer = await send()
        if answer[1] != 503 or time.monotonic() > deadline:
            return answer
        assert answer[3].json()["error"] == "busy"
        await asyncio.sleep(0.2)


def test_concurrent_writers_wait_within_their_deadline_and_succeed(staff, db, settings,
                                                                   tmp_path):
    busy = open_session(staff, db, capacity=20)
    others = [open_session(staff, db, capacity=30) for _ in range(4)]
    admin = _admin_name(db)
    database = settings.data_dir / "kaifang.db"
    first, first_url = serve(settings, tmp_path / "serve.log", **NO_LIMITS)
    second, second_url = serve(settings, tmp_path / "serve-short.log", **NO_LIMITS,
                               KAIFANG_LOCK_TIMEOUT_S=str(SHORT_DEADLINE_S))
    try:
        started = time.monotonic()
        ready(first, first_url)
        ready(second, second_url)
        print(f"\ntwo servers up in {time.monotonic() - started:.1f} s")

        async def scenario() -> dict[str, list[Answer]]:
            async with Site(first_url, admin) as site, Site(second_url, admin) as short:
                # 1. The burst: 50 citizens on one session (20 seats), 40 on four others, 10
                # second tries by a phone already registered, 10 edits by the office.
                burst = [site.register(busy, n) for n in range(50)]
                burst += [site.register(others[n % 4], 100 + n) for n in range(40)]
                burst += [site.register(busy, n) for n in range(10)]
                burst += [site.edit([busy, *others][n % 5], n) for n in range(10)]
                answers = {"burst": list(await asyncio.gather(*burst))}

                # 2. The write lock held 2 s by another connection: they wait, then go on.
                answers["held"] = await _while_held(database, 2.0, lambda: [
                    *(site.register(others[0], 200 + n) for n in range(6)),
                    site.edit(busy, 100), site.edit(others[1], 101)])

                # 3. Held 3 s against a server whose deadline is 1 s: 503 busy at it.
                answers["past"] = await _while_held(database, 3.0, lambda: [
                    *(short.register(others[1], 300 + n) for n in range(3)),
                    short.edit(others[2], 200)])
                # 4. Free again: each goes through, at once or on a retry after a 503 (the
                # workers of both servers write too, and 1 s is short on a loaded machine).
                answers["after"] = list(await asyncio.gather(
                    *(_retried(lambda n=n: short.register(others[1], 300 + n))
                      for n in range(3)),
                    _retried(lambda: short.edit(others[2], 200))))
                return answers

        started = time.monotonic()
        answers = _run(scenario())
        print(f"the scenario took {time.monotonic() - started:.1f} s")
    finally:
        first.stop()
        second.stop()
    said = first.said() + second.said()
    assert "Traceback" not in said and "unhandled" not in said, said[-4000:]

    burst = answers["burst"]
    statuses = sorted({status for _, status, _, _ in burst})
    assert statuses == [200, 201, 409], [(w, s, r.text) for w, s, _, r in burst if s >= 500]
    refused = [r.json()["error"] for _, status, _, r in burst if status == 409]
    assert refused == ["already_registered"] * 10
    # A phone's first try and its second race (gathered together): either one is refused.
    on_busy = [r.json()["status"] for what, status, _, r in burst[:50] + burst[90:100]
               if status == 201]
    assert on_busy.count("confirmed") == 20 and on_busy.count("waitlisted") == 30
    longest = max(seconds for _, _, seconds, _ in burst)
    assert longest < DEADLINE_S, longest
    print(f"burst of {len(burst)} writers: the longest waited {longest:.2f} s "
          f"(deadline {DEADLINE_S:g} s)")

    held = answers["held"]
    assert [status for _, status, _, _ in held] == [201] * 6 + [200, 200], held
    waits = [seconds for _, _, seconds, _ in held]
    assert min(waits) > 1.5 and max(waits) < DEADLINE_S, waits  # they waited, within it
    print(f"lock held 2 s: waited {min(waits):.2f}-{max(waits):.2f} s, all answered 2xx")

    for what, status, seconds, response in answers["past"]:
        assert status == 503, (what, response.text)
        assert response.json()["error"] == "busy" and response.headers["Retry-After"]
        # At the deadline: not twice it (a wait for the flock, then as long again in SQLite's
        # busy handler, as before), nor at the lock's end.
        assert SHORT_DEADLINE_S - 0.1 < seconds < 2 * SHORT_DEADLINE_S, (what, seconds)
    print("lock held 3 s, deadline 1 s: " + ", ".join(
        f"{what} 503 after {seconds:.2f} s" for what, _, seconds, _ in answers["past"]))
    assert [status for _, status, _, _ in answers["after"]] == [201, 201, 201, 200]
