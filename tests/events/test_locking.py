"""Locks: every wait has a deadline that ends in 503 `busy` with Retry-After, a lock asked for in
the wrong state is an error, and sessions are locked in one order (by id)."""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session, select

import server.db
from events import registration, retention
from events.locking import RETRY_AFTER_S, LockStateError, lock_event
from events.models import Event, Registration
from events.registration import RegistrationIn, RegistrationRequest, register_many
from server.db import get_engine
from server.security import Signer
from tests.conftest import TEST_SECRET_KEY, assign_hosts, door_open
from tests.events import writer_processes
from tests.helpers import open_session, post_registration

SHORT = 0.3  # seconds: the lock timeout these tests run with


@pytest.fixture
def short_locks(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(server.db, "lock_timeout_s", SHORT)
    return SHORT


def _while_locked(settings: Any, event_id: int, call: Any) -> tuple[Any, float]:
    """Runs `call` in a thread while another session holds the session's lock; the holder
    lets go after 5 s at the latest, so a lock without a deadline shows as a slow answer."""
    result: dict[str, Any] = {}

    def run() -> None:
        started = time.monotonic()
        result["answer"] = call()
        result["seconds"] = time.monotonic() - started

    with Session(get_engine(settings.sqlalchemy_url)) as holder:
        lock_event(holder, event_id)
        worker = threading.Thread(target=run)
        worker.start()
        worker.join(5)
        holder.rollback()
    worker.join(10)
    return result["answer"], result["seconds"]


def test_a_cancel_waiting_on_a_held_lock_is_503_busy_with_retry_after(
        app, client, staff, db, settings, short_locks):
    event_id = open_session(staff, db, capacity=2)
    ticket = post_registration(client, event_id, "13800000001").json()

    def cancel() -> Any:
        with TestClient(app) as own:
            return own.delete(f"/api/registrations/{ticket['manage_token']}")

    answer, seconds = _while_locked(settings, event_id, cancel)
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"] == "busy"
    assert int(answer.headers["Retry-After"]) >= 1
    assert seconds < 3
    # Nothing changed, and once the lock is free the same request goes through.
    assert client.get(f"/api/registrations/{ticket['manage_token']}").json()["status"] == \
        "confirmed"
    assert client.delete(f"/api/registrations/{ticket['manage_token']}").status_code == 200


def test_a_registration_waiting_on_a_held_lock_is_503_busy_and_not_written(
        app, staff, db, settings, short_locks):
    event_id = open_session(staff, db, capacity=2)

    def register() -> Any:
        with TestClient(app) as own:
            return post_registration(own, event_id, "13800000002")

    answer, seconds = _while_locked(settings, event_id, register)
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"] == "busy" and "Retry-After" in answer.headers
    assert seconds < 3
    with TestClient(app) as own:
        event = own.get(f"/api/events/{event_id}").json()
    assert event["registered_count"] == 0


def test_a_check_in_waiting_on_a_held_lock_is_503_busy(app, client, staff, db, settings,
                                                        short_locks):
    event_id = open_session(staff, db, capacity=2, **door_open())
    ticket = post_registration(client, event_id, "13800000003").json()
    host = staff("host")
    assign_hosts(db, event_id)

    answer, seconds = _while_locked(settings, event_id, lambda: host.post(
        f"/api/events/{event_id}/checkins", json={"code": ticket["code"]}))
    assert answer.status_code == 503 and answer.json()["error"] == "busy"
    assert seconds < 3


def test_a_lock_asked_for_after_writing_without_it_is_an_error(staff, db, settings):
    if db.connection().dialect.name != "sqlite":
        pytest.skip("SQLite's write lock: PostgreSQL locks rows whenever asked")
    db.rollback()
    event_id = open_session(staff, db, capacity=2)
    with Session(get_engine(settings.sqlalchemy_url)) as session:
        session.execute(text("UPDATE event SET venue = venue WHERE id = :id"), {"id": event_id})
        with pytest.raises(LockStateError):
            lock_event(session, event_id)
        session.rollback()
    # Asked for twice in one transaction, it is simply held.
    with Session(get_engine(settings.sqlalchemy_url)) as session:
        lock_event(session, event_id)
        lock_event(session, event_id)
        session.rollback()


def test_purge_locks_sessions_in_id_order(staff, db, settings, monkeypatch):
    """Batches lock by id; purge too, whatever the order the sessions ended in."""
    admin = staff("admin")
    now = datetime.now(UTC)
    ids = []
    for days_ago in (100, 120, 110):  # the later the id, not the later the end
        starts = now - timedelta(days=days_ago)
        created = admin.post("/api/events", json={
            **_body(db), "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=2)).isoformat()})
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    locked: list[int] = []
    original = retention.lock_event

    def recorded(session: Session, event_id: int) -> Event:
        locked.append(event_id)
        return original(session, event_id)

    monkeypatch.setattr(retention, "lock_event", recorded)
    with Session(get_engine(settings.sqlalchemy_url)) as session:
        assert retention.purge_due(session, settings)[0] == 3
        session.commit()
    assert locked == sorted(ids)


def _body(db: Session) -> dict[str, Any]:
    from tests.conftest import event_body

    return event_body(db, registration_opens_at=None, registration_closes_at=None)


def test_a_closed_session_refuses_a_registration_without_taking_its_lock(
        staff, db, monkeypatch):
    past = datetime.now(UTC) - timedelta(days=1)
    closed_id = open_session(staff, db, capacity=5,
                             registration_opens_at=(past - timedelta(days=1)).isoformat(),
                             registration_closes_at=past.isoformat())
    open_id = open_session(staff, db, capacity=5)
    locked: list[int] = []
    original = registration.lock_event

    def recorded(session: Session, event_id: int) -> Event:
        locked.append(event_id)
        return original(session, event_id)

    monkeypatch.setattr(registration, "lock_event", recorded)
    data = RegistrationIn(name="甲", phone="13900000001", consent=True)
    closed, made = register_many(db, Signer(TEST_SECRET_KEY), [
        RegistrationRequest(closed_id, data), RegistrationRequest(open_id, data)])
    db.commit()
    assert getattr(closed, "code", None) == "registration_closed"
    assert made.status.value == "confirmed"  # type: ignore[union-attr]
    assert locked == [open_id]


def test_many_writers_on_two_sessions_all_finish(app, staff, db):
    """Registrations and cancels on two sessions at once: one lock order, no deadlock."""
    first, second = open_session(staff, db, capacity=3), open_session(staff, db, capacity=3)

    def attempt(i: int) -> int:
        with TestClient(app) as own:
            made = post_registration(own, (first, second)[i % 2], f"139{i:08d}")
            if i % 3 == 0 and made.status_code == 201:
                return own.delete(
                    f"/api/registrations/{made.json()['manage_token']}").status_code
            return made.status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(attempt, range(24)))
    assert set(answers) <= {200, 201}


def test_another_process_holding_the_write_lock_gives_503_then_lets_go(
        app, client, staff, db, settings, short_locks):
    """Another process's writer (an flock of its own on the lock file): the wait in the
    kernel's queue ends at the deadline, and the next request goes through once it is free."""
    import fcntl
    import os

    if db.connection().dialect.name != "sqlite":
        pytest.skip("the flock is SQLite's")
    db.rollback()
    event_id = open_session(staff, db, capacity=2)
    ticket = post_registration(client, event_id, "13800000001").json()
    other = os.open(f"{settings.data_dir / 'kaifang.db'}.lock", os.O_RDWR)
    try:
        fcntl.flock(other, fcntl.LOCK_EX)
        started = time.monotonic()
        answer = client.delete(f"/api/registrations/{ticket['manage_token']}")
        assert answer.status_code == 503 and answer.json()["error"] == "busy"
        assert time.monotonic() - started < 3
        fcntl.flock(other, fcntl.LOCK_UN)
    finally:
        os.close(other)
    assert client.delete(f"/api/registrations/{ticket['manage_token']}").status_code == 200


def test_a_write_outside_our_locks_that_waits_too_long_is_503_busy(
        app, staff, db, settings, short_locks):
    """An edit that takes no lock of ours still waits for the database's (SQLite's write lock,
    PostgreSQL's row lock): at the deadline it is 503 busy, never a 500 nor a wait without end."""
    editor = staff("editor", "education")
    created = editor.post("/api/events", json=_body(db))
    assert created.status_code == 201, created.text
    event_id = created.json()["id"]
    get_engine(settings.sqlalchemy_url).dispose()  # new connections take the short deadline

    answer, seconds = _while_locked(settings, event_id, lambda: editor.patch(
        f"/api/events/{event_id}", json={"title": "改过的标题"}))
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"] == "busy" and "Retry-After" in answer.headers
    assert seconds < 3
    assert editor.patch(f"/api/events/{event_id}", json={"title": "改过的标题"}).status_code == 200


def test_two_processes_on_one_session_take_its_lock_in_turn(staff, db, settings):
    """Two OS processes (spawn) register on one session with one seat left. While the first
    holds the session's lock (SQLite: the flock and BEGIN IMMEDIATE; PostgreSQL: the row lock),
    the second, with a short lock timeout, is answered Busy at its deadline; with a long one it
    waits until the first commits, then re-counts under the lock: one seat, one confirmed."""
    event_id = open_session(staff, db, capacity=1)
    db.rollback()
    spawn = multiprocessing.get_context("spawn")
    held, release, again, asking = (spawn.Event() for _ in range(4))
    results = spawn.Queue()
    url = settings.sqlalchemy_url
    holder = spawn.Process(target=writer_processes.hold_the_lock,
                           args=(url, TEST_SECRET_KEY, event_id, held, release, results))
    waiter = spawn.Process(target=writer_processes.register_twice,
                           args=(url, TEST_SECRET_KEY, event_id, SHORT, held, again, asking,
                                 results))
    holder.start()
    waiter.start()
    try:
        assert held.wait(30), "the first process did not take the lock"
        name, outcome, _position, seconds = results.get(timeout=30)
        assert (name, outcome) == ("waiter", f"busy:busy:{RETRY_AFTER_S}")
        assert SHORT * 0.9 <= seconds < 3  # it waited for its deadline, and no longer

        again.set()
        assert asking.wait(30)
        with pytest.raises(queue.Empty):  # it cannot finish while the first holds the lock
            results.get(timeout=SHORT)
        release.set()
        answers = {answer[0]: answer[1:] for answer in (results.get(timeout=30),
                                                         results.get(timeout=30))}
        assert answers["holder"][:2] == ("confirmed", None)
        status, position, seconds = answers["waiter"]
        assert (status, position) == ("waitlisted", 1)
        assert seconds >= SHORT  # it waited for the first to let go
    finally:
        release.set()
        again.set()
        for process in (holder, waiter):
            process.join(30)
            if process.is_alive():
                process.terminate()
    assert (holder.exitcode, waiter.exitcode) == (0, 0)
    db.expire_all()
    statuses = sorted(r.status.value for r in db.exec(
        select(Registration).where(Registration.event_id == event_id)))
    assert statuses == ["confirmed", "waitlisted"]
