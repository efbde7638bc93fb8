"""Engine, sessions and the column types every domain package shares."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache, partial
from typing import Any

from sqlalchemy import Column, DateTime, event, make_url
from sqlalchemy import Enum as SAEnum
from sqlalchemy.engine import Engine
from sqlalchemy.types import TypeDecorator
from sqlmodel import create_engine


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, hands back aware UTC, so SQLite and PostgreSQL behave alike."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


# How long a writer waits for a lock before it gives up with 503 busy (KAIFANG_LOCK_TIMEOUT_S;
# set by create_app and the CLI). SQLite's own busy_timeout is the same.
lock_timeout_s = 10.0


def set_lock_timeout(seconds: float) -> None:
    global lock_timeout_s
    lock_timeout_s = seconds


def _sqlite_pragmas(lock_timeout_s: float, dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={round(lock_timeout_s * 1000)}")
    # FULL: a commit answered 201 survives a power cut; group commit makes the sync cheap.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _postgresql_lock_timeout(lock_timeout_s: float, dbapi_connection: Any, _record: Any
                             ) -> None:
    """Every row lock a statement waits for gives up at the same deadline (then 503 busy)."""
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    cursor = dbapi_connection.cursor()
    cursor.execute(f"SET lock_timeout = {max(1, round(lock_timeout_s * 1000))}")
    cursor.close()
    dbapi_connection.autocommit = autocommit


# Request threads (the app sets anyio's limiter to this) and the connections behind them: the
# pool is larger, so a request never waits for a connection held by one waiting for a thread.
REQUEST_THREADS = 32
POOL_SIZE = REQUEST_THREADS + 8


def private_sqlite_file(url: str) -> None:
    """Creates the SQLite file 0600 before SQLite opens it (SQLite gives -wal and -shm the main
    file's mode), and makes one left readable by others private."""
    path = make_url(url).database
    if not path or path == ":memory:" or not os.path.isdir(os.path.dirname(path) or "."):
        return
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    for name in (path, f"{path}-wal", f"{path}-shm"):
        if os.path.exists(name) and stat.S_IMODE(os.stat(name).st_mode) & 0o077:
            os.chmod(name, 0o600)


def get_engine(url: str) -> Engine:
    """hide_parameters: an error's text never quotes a statement's values (phone numbers).
    One engine per URL and lock timeout: its connections take the timeout when they open, so
    an app with another KAIFANG_LOCK_TIMEOUT_S in the same process (the suite's) gets its own."""
    return _engine(url, lock_timeout_s)


@lru_cache(maxsize=8)
def _engine(url: str, lock_timeout_s: float) -> Engine:
    if url.startswith("sqlite"):
        private_sqlite_file(url)
        engine = create_engine(url, connect_args={"check_same_thread": False,
                                                   "timeout": lock_timeout_s},
                               pool_size=POOL_SIZE, max_overflow=0, hide_parameters=True)
        event.listen(engine, "connect", partial(_sqlite_pragmas, lock_timeout_s))
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=POOL_SIZE // 2,
                               max_overflow=POOL_SIZE - POOL_SIZE // 2, hide_parameters=True)
        event.listen(engine, "connect", partial(_postgresql_lock_timeout, lock_timeout_s))
    return engine


def enum_column(enum_cls: type[StrEnum], *, index: bool = False, default: StrEnum | None = None
                ) -> Column[Any]:
    """A StrEnum stored as VARCHAR: adding a member later needs no database type change."""
    return Column(
        SAEnum(enum_cls, native_enum=False, create_constraint=False, length=20,
               values_callable=lambda members: [m.value for m in members]),
        nullable=False, index=index, default=default,
    )
