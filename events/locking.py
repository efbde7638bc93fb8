"""Locks what becomes scarcer (pretix's rule): a session's row, held until the transaction ends.

PostgreSQL: SELECT … FOR UPDATE. SQLite: BEGIN IMMEDIATE takes the database's write lock. In
front of it, a thread lock and an flock on a file beside the database make this process's
threads and the other app processes queue in the kernel, instead of in SQLite's busy handler,
which sleeps and polls (and so wastes most of a burst).
"""

from __future__ import annotations

import fcntl
import os
import threading
from typing import Protocol

from sqlalchemy import event as sa_event
from sqlalchemy import text
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session, select

from events.errors import NotFound
from events.models import Event

_HELD = "kaifang_held_locks"


class _Releasable(Protocol):
    def release(self) -> None: ...


class SqliteWriteLock:
    """One per database file and process: a thread lock, then an exclusive flock."""

    _registry: dict[str, SqliteWriteLock] = {}
    _registry_guard = threading.Lock()

    def __init__(self, database_path: str) -> None:
        self._threads = threading.Lock()
        self._fd = os.open(f"{database_path}.lock", os.O_RDWR | os.O_CREAT, 0o600)

    @classmethod
    def for_database(cls, database_path: str) -> SqliteWriteLock:
        with cls._registry_guard:
            lock = cls._registry.get(database_path)
            if lock is None:
                lock = cls._registry[database_path] = cls(database_path)
            return lock

    def acquire(self) -> None:
        self._threads.acquire()
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise

    def release(self) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()


@sa_event.listens_for(OrmSession, "after_transaction_end")
def _release_held(session: OrmSession, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        held: list[_Releasable] = session.info.pop(_HELD, [])
        for lock in held:
            lock.release()


def write_lock(db: Session) -> None:
    """SQLite: this transaction becomes the database's one writer until it ends (queued on the
    flock, then BEGIN IMMEDIATE). PostgreSQL: nothing; its writers lock rows, not the database."""
    connection = db.connection()
    if connection.dialect.name != "sqlite":
        return
    raw = connection.connection.dbapi_connection
    if raw is not None and not raw.in_transaction:
        lock = SqliteWriteLock.for_database(connection.engine.url.database or ":memory:")
        lock.acquire()
        db.info.setdefault(_HELD, []).append(lock)
        connection.execute(text("BEGIN IMMEDIATE"))


def lock_event(db: Session, event_id: int) -> Event:
    """The session row, re-read under a lock that lasts until this transaction ends."""
    connection = db.connection()
    if connection.dialect.name == "sqlite":
        write_lock(db)
        found = db.get(Event, event_id, populate_existing=True)
    else:
        found = db.exec(
            select(Event).where(Event.id == event_id).with_for_update()
            .execution_options(populate_existing=True)
        ).first()
    if found is None:
        raise NotFound("event_not_found", f"no session with id {event_id}")
    return found
