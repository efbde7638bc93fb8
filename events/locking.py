"""Locks what becomes scarcer (pretix's rule): a session's row, held until the transaction ends.

PostgreSQL: SELECT … FOR UPDATE. SQLite: BEGIN IMMEDIATE takes the database's write lock; an
in-process lock in front of it lets this process's threads queue without SQLite's busy polling.
"""

from __future__ import annotations

import threading

from sqlalchemy import event as sa_event
from sqlalchemy import text
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session, select

from events.errors import NotFound
from events.models import Event

_sqlite_write_lock = threading.Lock()


_HELD = "kaifang_held_locks"


@sa_event.listens_for(OrmSession, "after_transaction_end")
def _release_held(session: OrmSession, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        held: list[threading.Lock] = session.info.pop(_HELD, [])
        for lock in held:
            lock.release()


def lock_event(db: Session, event_id: int) -> Event:
    """The session row, re-read under a lock that lasts until this transaction ends."""
    connection = db.connection()
    if connection.dialect.name == "sqlite":
        raw = connection.connection.dbapi_connection
        if raw is not None and not raw.in_transaction:
            _sqlite_write_lock.acquire()
            db.info.setdefault(_HELD, []).append(_sqlite_write_lock)
            connection.execute(text("BEGIN IMMEDIATE"))
        found = db.get(Event, event_id, populate_existing=True)
    else:
        found = db.exec(
            select(Event).where(Event.id == event_id).with_for_update()
            .execution_options(populate_existing=True)
        ).first()
    if found is None:
        raise NotFound("event_not_found", f"no session with id {event_id}")
    return found
