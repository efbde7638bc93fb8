"""Locks what becomes scarcer (pretix's rule): a session's row, held until the transaction ends.

PostgreSQL: SELECT … FOR UPDATE. SQLite: BEGIN IMMEDIATE takes the database's write lock. In
front of it, a thread lock and an flock on a file beside the database make this process's
threads and the other app processes queue in the kernel, instead of in SQLite's busy handler,
which sleeps and polls (and so wastes most of a burst).

The rules every caller keeps:
- One lock order. A transaction that locks several sessions locks them by id, ascending (the
  registration desk's batches, retention's purge); every other caller locks one session. Rows
  under a session (registrations, its messages) are written only under the session's lock, and
  delivery's claims lock outbox rows (SKIP LOCKED), never a session. So no two writers wait on
  each other in a circle.
- Every wait has a deadline (server.db.lock_timeout_s, KAIFANG_LOCK_TIMEOUT_S): the thread
  lock, the flock, SQLite's busy_timeout and PostgreSQL's lock_timeout. At the deadline the
  caller gets Busy: 503 `busy` with Retry-After, never a 500 and never a wait without end.
- A lock is taken before the transaction writes. On SQLite a transaction that has written
  without it cannot become the one writer any more; asking then is a programming error
  (LockStateError), loud, never skipped.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from typing import Any, Protocol

from sqlalchemy import Connection, text
from sqlalchemy import event as sa_event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session, select

import server.db
from events.errors import Busy, NotFound
from events.models import Event

_HELD = "kaifang_held_locks"
RETRY_AFTER_S = 2
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL: lock_timeout ran out


class LockStateError(RuntimeError):
    """A lock asked for where it cannot be had safely: a bug in the caller, not a busy moment."""


def is_lock_timeout(exc: OperationalError) -> bool:
    """A statement gave up waiting for a lock: PostgreSQL's lock_timeout, SQLite's busy_timeout
    (SQLITE_BUSY, SQLITE_LOCKED)."""
    if getattr(exc.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
        return True
    return getattr(exc.orig, "sqlite_errorcode", None) in (5, 6)


def busy() -> Busy:
    return Busy("busy", "the service is busy: please try again in a moment",
                retry_after_s=RETRY_AFTER_S)


class _Releasable(Protocol):
    def release(self) -> None: ...


class _KernelWait:
    """One wait for the flock in the kernel's queue, on a helper thread the caller may leave."""

    def __init__(self) -> None:
        self.guard = threading.Lock()
        self.done = threading.Event()
        self.acquired = False
        self.error: OSError | None = None
        self.abandoned = False


class SqliteWriteLock:
    """One per database file and process: a thread lock, then an exclusive flock."""

    _registry: dict[str, SqliteWriteLock] = {}
    _registry_guard = threading.Lock()

    def __init__(self, database_path: str) -> None:
        self._threads = threading.Lock()
        self._fd = os.open(f"{database_path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        # Read by /metrics (server.ops): writers that waited, for how long in all, and those
        # that gave up (busy).
        self.waits, self.waited_s, self.timeouts = 0, 0.0, 0

    @classmethod
    def for_database(cls, database_path: str) -> SqliteWriteLock:
        with cls._registry_guard:
            lock = cls._registry.get(database_path)
            if lock is None:
                lock = cls._registry[database_path] = cls(database_path)
            return lock

    def acquire(self, timeout_s: float) -> None:
        """Held on return; Busy when not had within `timeout_s`."""
        started = time.monotonic()
        deadline = started + timeout_s
        waited = not self._threads.acquire(blocking=False)
        if waited and not self._threads.acquire(timeout=timeout_s):
            self._count_wait(started, gave_up=True)
            raise busy()
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if waited:
                self._count_wait(started)
            return
        except BlockingIOError:
            pass
        except BaseException:
            self._threads.release()
            raise
        # Another process writes: queue in the kernel (fair, no polling) on a helper thread,
        # and leave it at the deadline. The helper then owns the thread lock until the kernel
        # answers, and lets both go: this process's next writer queues behind it meanwhile.
        wait = _KernelWait()
        threading.Thread(target=self._wait_in_kernel, args=(wait,), daemon=True,
                         name="kaifang-flock").start()
        wait.done.wait(max(0.0, deadline - time.monotonic()))
        with wait.guard:
            if wait.acquired:
                self._count_wait(started)
                return
            if wait.error is not None:
                self._threads.release()
                raise wait.error
            wait.abandoned = True
        self._count_wait(started, gave_up=True)
        raise busy()

    def _count_wait(self, started: float, gave_up: bool = False) -> None:
        self.waits += 1
        self.waited_s += time.monotonic() - started
        self.timeouts += gave_up

    def _wait_in_kernel(self, wait: _KernelWait) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except OSError as exc:
            with wait.guard:
                wait.error = exc
                if wait.abandoned:
                    self._threads.release()
                wait.done.set()
            return
        with wait.guard:
            if wait.abandoned:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                self._threads.release()
            else:
                wait.acquired = True
            wait.done.set()

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
    flock, then BEGIN IMMEDIATE); asked again in the same transaction, it is already held.
    PostgreSQL: nothing; its writers lock rows, not the database."""
    connection = db.connection()
    if connection.dialect.name != "sqlite":
        return
    if db.info.get(_HELD):
        return
    raw = connection.connection.dbapi_connection
    if raw is not None and raw.in_transaction:
        raise LockStateError("this transaction wrote before it took the write lock: take the "
                             "lock first (events.locking)")
    deadline = time.monotonic() + server.db.lock_timeout_s
    lock = SqliteWriteLock.for_database(connection.engine.url.database or ":memory:")
    lock.acquire(server.db.lock_timeout_s)
    db.info.setdefault(_HELD, []).append(lock)
    try:
        _begin_immediate(connection, raw, deadline)
    except OperationalError as exc:  # a writer that did not queue on the flock held on
        if is_lock_timeout(exc):
            raise busy() from exc
        raise


def _begin_immediate(connection: Connection, raw: Any, deadline: float) -> None:
    """BEGIN IMMEDIATE, whose wait in SQLite's busy handler (a writer that did not queue on
    the flock: another program, a connection of our own outside write_lock) ends at what is
    left of the caller's deadline: the wait for the flock and this one are one deadline, not
    two after each other."""
    full_ms = max(1, round(server.db.lock_timeout_s * 1000))
    left_ms = max(1, min(full_ms, round((deadline - time.monotonic()) * 1000)))
    if raw is None or left_ms > full_ms - 100:  # the flock came at once: as it is
        connection.execute(text("BEGIN IMMEDIATE"))
        return
    raw.execute(f"PRAGMA busy_timeout = {left_ms}")
    try:
        connection.execute(text("BEGIN IMMEDIATE"))
    finally:
        raw.execute(f"PRAGMA busy_timeout = {full_ms}")


def lock_event(db: Session, event_id: int) -> Event:
    """The session row, re-read under a lock that lasts until this transaction ends."""
    connection = db.connection()
    if connection.dialect.name == "sqlite":
        write_lock(db)
        found = db.get(Event, event_id, populate_existing=True)
    else:
        milliseconds = max(1, round(server.db.lock_timeout_s * 1000))
        db.execute(text(f"SET LOCAL lock_timeout = {milliseconds}"))
        try:
            found = db.exec(
                select(Event).where(Event.id == event_id).with_for_update()
                .execution_options(populate_existing=True)
            ).first()
        except OperationalError as exc:
            if is_lock_timeout(exc):
                raise busy() from exc
            raise
    if found is None:
        raise NotFound("event_not_found", f"no session with id {event_id}")
    return found
