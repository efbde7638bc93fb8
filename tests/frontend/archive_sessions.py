"""Sessions in the archive, made straight in the database (a published Recording row, no
ffmpeg): shared by the archive's page tests and its browser tests."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from events.models import Event, EventKind, EventMode, EventStatus
from streaming.models import Recording
from tests.conftest import unit_id


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def held(db: Session, title: str, *, days_ago: float = 10, unit: str = "education",
         kind: EventKind = EventKind.open_meeting, status: EventStatus = EventStatus.ended,
         summary: str = "", minutes: str = "", recording: bool = True,
         duration_s: float = 754.0, premiere_in: timedelta | None = None,
         published: bool = True) -> int:
    """A session as the database keeps it once held (and closed out when given minutes), with
    a published recording row: the listing tests need no ffmpeg."""
    starts = now() - timedelta(days=days_ago)
    event = Event(kind=kind, unit_id=unit_id(db, unit), title=title, summary=summary,
                  starts_at=starts, ends_at=starts + timedelta(hours=2), status=status,
                  mode=EventMode.hybrid, published_at=starts - timedelta(days=7)
                  if published else None, minutes=minutes,
                  closed_at=starts + timedelta(hours=3) if minutes else None,
                  premiere_at=now() + premiere_in if premiere_in is not None else None)
    db.add(event)
    db.flush()
    assert event.id is not None
    if recording:
        add_recording(db, event.id, duration_s)
    db.commit()
    return event.id


def add_recording(db: Session, event_id: int, duration_s: float = 754.0,
                  published: bool = True) -> Recording:
    row = Recording(event_id=event_id, state="succeeded" if published else "failed",
                    media_key=f"{event_id}-1-{secrets.token_hex(12)}" if published else "",
                    duration_s=duration_s, width=1280, height=720, has_audio=True,
                    renditions="720p,480p,360p", published_at=now() if published else None)
    db.add(row)
    db.commit()
    return row
