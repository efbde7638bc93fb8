"""PostgreSQL restarted under load: a PostgreSQL cluster of the test's own (initdb in a temp
dir, a free port: the machine's shared one is never restarted), a real `kaifang serve` on it,
threads reading sessions and registering all along, and `pg_ctl restart`, fast then immediate.
Requests caught by it answer 503 `busy` with Retry-After, none 500; a registration is either
answered 201 and kept, or answered 503 (kept or not), never lost after a 201 nor made twice;
and a few seconds after PostgreSQL is back every request succeeds again, without restarting
the app (its pool drops the dead connections by itself).

Self-contained (its own PostgreSQL), so it runs once per CI: in the SQLite pass, where every
test runs; it takes none of the fixtures that put a test in the PostgreSQL pass too."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlmodel import Session

from server.app import create_app
from server.cli import migrate
from server.config import Settings
from server.db import get_engine
from tests.conftest import PUBLIC_URL, TEST_SECRET_KEY, event_body, login, make_user, publish
from tests.faults.net_procs import AppProcess, PrivatePostgres, app_env, postgres_bin

# Seconds after PostgreSQL is back within which every request must succeed again.
RECOVERY_S = 3.0


@dataclass
class Answer:
    at: float
    kind: str
    status: int  # 0: no answer at all (the connection failed)
    error: str = ""
    retry_after: str | None = None
    phone: str = ""
    code: str = ""  # a registration's, when answered 201
    done: float = 0.0


@pytest.fixture
def postgres() -> Any:
    bin_dir = postgres_bin()
    if bin_dir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL's server programs (initdb) are missing: CI must have them")
        pytest.skip("PostgreSQL's server programs (initdb) are not installed here")
    cluster = PrivatePostgres(bin_dir).start()
    try:
        yield cluster
    finally:
        cluster.stop()


def _published_session(settings: Settings) -> int:
    """A published session open for registration, made through the API in this process."""
    with Session(get_engine(settings.sqlalchemy_url), expire_on_commit=False) as db:
        make_user(db, "admin", "admin")
        now = datetime.now(UTC)
        body = event_body(db, capacity=0,
                          starts_at=(now + timedelta(days=3)).isoformat(),
                          ends_at=(now + timedelta(days=3, hours=2)).isoformat(),
                          registration_opens_at=(now - timedelta(days=1)).isoformat(),
                          registration_closes_at=(now + timedelta(days=2)).isoformat())
    with TestClient(create_app(settings)) as admin:
        login(admin, "admin")
        created = admin.post("/api/events", json=body)
        assert created.status_code == 201, created.text
        publish(admin, created.json()["id"])
        return int(created.json()["id"])


class Load:
    """Threads reading the session (its JSON and its page) and registering, each request on
    its own until told to stop; every answer kept."""

    def __init__(self, base: str, event_id: int) -> None:
        self.base = base
        self.event_id = event_id
        self.answers: list[Answer] = []
        self.stop = threading.Event()
        self._numbers = iter(range(10_000_000))
        self._guard = threading.Lock()

    def _phone(self) -> str:
        with self._guard:
            return f"137{next(self._numbers):08d}"

    def _one(self, http: httpx.Client, kind: str) -> None:
        phone = ""
        started = time.monotonic()
        try:
            if kind == "register":
                phone = self._phone()
                answer = http.post(f"/api/events/{self.event_id}/registrations",
                                   json={"name": "王小明", "phone": phone, "consent": True})
            elif kind == "read":
                answer = http.get(f"/api/events/{self.event_id}")
            else:
                answer = http.get(f"/events/{self.event_id}", headers={"Accept": "text/html"})
        except httpx.TransportError:
            self.answers.append(Answer(started, kind, 0, phone=phone, done=time.monotonic()))
            return
        error = code = ""
        if answer.status_code >= 400 and kind != "page":
            error = answer.json().get("error", "")
        if answer.status_code == 201:
            code = answer.json()["code"]
        self.answers.append(Answer(started, kind, answer.status_code, error,
                                   answer.headers.get("retry-after"), phone, code,
                                   time.monotonic()))

    def _run(self, kind: str) -> None:
        with httpx.Client(base_url=self.base, timeout=30, trust_env=False) as http:
            while not self.stop.is_set():
                self._one(http, kind)
                time.sleep(0.01)

    def start(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._run, args=(kind,), daemon=True)
                   for kind in ("register", "register", "read", "page")]
        for thread in threads:
            thread.start()
        return threads


def test_a_postgresql_restart_answers_busy_never_500_and_the_pool_recovers(
        postgres: PrivatePostgres, tmp_path: Path):
    admin = create_engine(postgres.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("CREATE DATABASE kaifang"))
    admin.dispose()
    settings = Settings(data_dir=tmp_path, database_url=postgres.url("kaifang"),
                        secret_key=TEST_SECRET_KEY, public_url=PUBLIC_URL,
                        registration_limit_per_address=0, registration_limit_per_phone=0,
                        rtmp_port=0)
    migrate(settings)
    event_id = _published_session(settings)
    app = AppProcess(app_env(settings), tmp_path / "app.log").start()
    load = Load("", event_id)
    restarts: list[tuple[str, float, float]] = []
    try:
        app.wait_healthy()
        load.base = app.url
        threads = load.start()
        time.sleep(1.0)
        for mode in ("fast", "immediate"):
            began = time.monotonic()
            postgres.restart(mode)
            restarts.append((mode, began, time.monotonic()))
            time.sleep(RECOVERY_S + 1.5)
        load.stop.set()
        ended = time.monotonic()
        for thread in threads:
            thread.join(30)
        output = app.output()
    finally:
        app.stop()
        get_engine(settings.sqlalchemy_url).dispose()
    answers = load.answers

    # Nothing answered 500 (nor anything but these); every failure is 503 busy, Retry-After.
    assert {a.status for a in answers} <= {200, 201, 503}, \
        sorted({(a.kind, a.status, a.error) for a in answers if a.status not in (200, 201)})
    failed = [a for a in answers if a.status == 503]
    assert failed, "no request was caught by a restart: the test proved nothing"
    for answer in failed:
        assert answer.retry_after is not None and int(answer.retry_after) >= 1, answer
        assert answer.kind == "page" or answer.error == "busy", answer
    assert "unhandled" not in output, output[-3000:]

    # The pool recovers by itself: a few seconds after each restart, every request succeeds.
    for (mode, _, back), until in zip(restarts, [r[1] for r in restarts[1:]] + [ended],
                                      strict=True):
        later = [a for a in answers if back + RECOVERY_S <= a.at and a.done < until]
        assert len(later) >= 5 and all(a.status in (200, 201) for a in later), \
            (mode, len(later), [(a.kind, a.status) for a in later if a.status not in (200, 201)])

    # A registration answered 201 is kept; one answered 503 may or may not be; none twice.
    with create_engine(postgres.url("kaifang")).connect() as conn:
        kept = [row[0] for row in conn.execute(text(
            "SELECT code FROM registration WHERE event_id = :id"), {"id": event_id})]
        count = conn.execute(text("SELECT count(*) FROM registration")).scalar_one()
    registered = [a for a in answers if a.kind == "register"]
    confirmed = [a for a in registered if a.status == 201]
    assert len(kept) == len(set(kept)) == count
    assert {a.code for a in confirmed} <= set(kept)
    assert len(confirmed) <= count <= len(confirmed) + sum(1 for a in registered
                                                           if a.status == 503)
    summary = {mode: sum(1 for a in failed if began <= a.done <= back + RECOVERY_S)
               for mode, began, back in restarts}
    recovered = {mode: round(max([a.done for a in failed if began <= a.done <= back + RECOVERY_S]
                                 or [back]) - back, 2) for mode, began, back in restarts}
    print(f"\n{len(answers)} requests, {len(failed)} answered 503 busy {summary}, "
          f"{len(confirmed)} registrations; restarts took "
          f"{[round(back - began, 2) for _, began, back in restarts]} s; last 503 after "
          f"PostgreSQL was back: {recovered} s")
