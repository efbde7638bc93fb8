"""Writers that run in processes of their own (multiprocessing, spawn), for the tests of locks
between processes (tests/events/test_locking.py). Kept apart from the tests so that a child
imports only the domain, not the suite's fixtures and the app."""

from __future__ import annotations

import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event as ProcessEvent
from typing import Any

from sqlmodel import Session

import server.db
from events.errors import Busy
from events.registration import Registered, RegistrationIn, RegistrationRequest, register_many
from server.db import get_engine
from server.security import Signer

WAIT_S = 30  # no step of a healthy run comes near this; it only keeps a broken one from hanging


def _register(url: str, secret_key: str, event_id: int, phone: str) -> tuple[Session, Registered]:
    """One registration in a transaction left open: the session's lock is held on return."""
    db = Session(get_engine(url), expire_on_commit=False)
    try:
        outcome, = register_many(db, Signer(secret_key), [RegistrationRequest(
            event_id, RegistrationIn(name="市民", phone=phone, consent=True))])
        assert isinstance(outcome, Registered), outcome
    except BaseException:
        db.close()
        raise
    return db, outcome


def hold_the_lock(url: str, secret_key: str, event_id: int, held: ProcessEvent,
                  release: ProcessEvent, results: Queue[Any]) -> None:
    """Registers under the session's lock, says so (`held`), and commits (letting the lock go)
    only once told to (`release`). Every answer is (who, outcome, waitlist place, seconds)."""
    db, outcome = _register(url, secret_key, event_id, "13900000001")
    held.set()
    if not release.wait(WAIT_S):
        db.rollback()
        results.put(("holder", "never released", None, 0.0))
        return
    db.commit()
    db.close()
    results.put(("holder", outcome.status.value, outcome.waitlist_position, 0.0))


def register_twice(url: str, secret_key: str, event_id: int, short_timeout_s: float,
                   held: ProcessEvent, again: ProcessEvent, asking: ProcessEvent,
                   results: Queue[Any]) -> None:
    """Once `held`: registers with a short lock timeout (answered Busy while the lock is held),
    then, once told `again`, with a long one, saying `asking` just before it waits."""
    server.db.set_lock_timeout(short_timeout_s)  # before the engine: SQLite's busy_timeout too
    get_engine(url)
    if not held.wait(WAIT_S):
        results.put(("waiter", "holder never held", None, 0.0))
        return
    started = time.monotonic()
    try:
        db, outcome = _register(url, secret_key, event_id, "13900000002")
    except Busy as exc:
        results.put(("waiter", f"busy:{exc.code}:{exc.retry_after_s}", None,
                     time.monotonic() - started))
    else:
        db.close()
        results.put(("waiter", f"not busy: {outcome.status.value}", None, 0.0))
    if not again.wait(WAIT_S):
        return
    server.db.set_lock_timeout(WAIT_S)
    started = time.monotonic()  # before `asking`: the test holds the lock at least SHORT after it
    asking.set()
    db, outcome = _register(url, secret_key, event_id, "13900000002")
    db.commit()
    db.close()
    results.put(("waiter", outcome.status.value, outcome.waitlist_position,
                 time.monotonic() - started))
