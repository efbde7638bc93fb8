"""Room for recordings on the way in: what open uploads have promised must fit on the disk.

A resumable upload declares its size when it is opened and may take a day to arrive; without a
bound, a script could open hundreds at the limit each and promise more than the disk holds. So
a staff member has at most KAIFANG_MAX_OPEN_UPLOADS under way at once (409
`too_many_uploads`; one nobody has sent to for IDLE no longer counts, so a few abandoned
attempts do not lock its owner out for a day), and an upload (resumable or whole) is refused
with 507 `no_space` when its size and what the open ones still have to send exceed the free
disk less KAIFANG_UPLOAD_DISK_MARGIN_BYTES. Uploads left unfinished past jobs.UPLOAD_KEPT no
longer count at all (the worker deletes them).

The count and the insert of a new upload are one transaction under one lock (SQLite's write
lock, a PostgreSQL advisory lock), so parallel requests cannot all pass the same check.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import ColumnElement, func, text
from sqlmodel import Session, col, select

from events.errors import Conflict, DomainError
from events.locking import write_lock
from events.timeutil import utcnow
from streaming.jobs import UPLOAD_KEPT
from streaming.models import Upload

# pg_advisory_xact_lock's key for "the open uploads" (any constant no other lock uses).
LOCK_KEY = 0x6B66_7570
# An upload untouched this long no longer counts toward its owner's limit (its bytes still
# count against the disk until it is given up).
IDLE = timedelta(hours=1)


class NoSpace(DomainError):
    status = 507

    def __init__(self, size: int) -> None:
        super().__init__("no_space", "the server has no room for this recording now: try "
                         "again once other uploads have finished", size=size)


def free_bytes(folder: Path) -> int:
    """Free space on the disk that holds `folder` (for whoever runs the service)."""
    return shutil.disk_usage(folder).free


def _open(now: datetime) -> ColumnElement[bool]:
    return col(Upload.job_id).is_(None) & (col(Upload.updated_at) >= now - UPLOAD_KEPT)


def _lock(db: Session) -> None:
    if db.connection().dialect.name == "sqlite":
        write_lock(db)
    else:
        db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})


def make_room(db: Session, size: int, *, free: int, margin: int, user_id: int | None = None,
              max_open: int | None = None, now: datetime | None = None) -> None:
    """Refuses an upload of `size` bytes that does not fit (see the module's docstring); takes
    the lock that lasts until the caller commits the new upload."""
    now = now or utcnow()
    _lock(db)
    if user_id is not None and max_open is not None:
        mine = db.exec(select(func.count()).select_from(Upload)
                       .where(_open(now), Upload.user_id == user_id,
                              col(Upload.updated_at) >= now - IDLE)).one()
        if mine >= max_open:
            raise Conflict("too_many_uploads", f"you have {mine} uploads under way: finish "
                           "one, or leave it for an hour, before starting another",
                           max_open=max_open)
    promised = db.exec(select(func.coalesce(func.sum(col(Upload.size_bytes)
                                                     - col(Upload.received)), 0))
                       .where(_open(now))).one()
    if int(promised) + size > free - margin:
        raise NoSpace(size)
