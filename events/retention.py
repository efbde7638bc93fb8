"""Retention: a session's personal data is erased a set time after it ends; counts remain.

Run by the worker (once an hour) and by `kaifang purge`. Each session is re-read under its row
lock, so two workers never purge the same one twice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlmodel import Session, col, or_, select

from events import audit
from events.locking import lock_event
from events.models import Event, OutboxMessage, Registration
from events.registration import purge_event
from events.timeutil import utcnow
from server.config import Settings

log = logging.getLogger("kaifang.retention")


def _blank_outbox(db: Session, event: Event) -> int:
    """The session's notifications keep their text and masked recipient, lose the number."""
    registrations = select(Registration.id).where(Registration.event_id == event.id)
    messages = db.exec(select(OutboxMessage).where(or_(
        col(OutboxMessage.event_id) == event.id,
        col(OutboxMessage.registration_id).in_(registrations))))
    blanked = 0
    for message in messages:
        if not message.recipient:
            continue
        if message.state in ("pending", "failed"):
            message.state = "void"
        message.recipient = ""
        db.add(message)
        blanked += 1
    db.flush()
    return blanked


def due_for_purge(db: Session, settings: Settings, now: datetime | None = None) -> list[int]:
    """Sessions that ended more than retention_days ago and still hold personal data."""
    cutoff = (now or utcnow()) - timedelta(days=settings.retention_days)
    found = db.exec(select(col(Event.id)).where(
        col(Event.ends_at) < cutoff, col(Event.personal_data_purged_at).is_(None))
        .order_by(col(Event.id)))  # the one lock order (events.locking)
    return [event_id for event_id in found if event_id is not None]


def purge_due(db: Session, settings: Settings, now: datetime | None = None) -> tuple[int, int]:
    """Erases the personal data of every session past retention; returns (sessions,
    registrations erased). Idempotent. Flushes; the caller commits."""
    sessions = rows = 0
    for event_id in due_for_purge(db, settings, now):
        event = lock_event(db, event_id)
        if event.personal_data_purged_at is not None:  # another worker was first
            continue
        registrations = purge_event(db, event)
        messages = _blank_outbox(db, event)
        audit.record(db, None, "registration.purge", "event", event.id, unit_id=event.unit_id,
                     changes={"registrations": registrations, "messages": messages,
                              "retention_days": settings.retention_days})
        log.info("session %s: personal data erased (%s registrations, %s messages)",
                 event.id, registrations, messages)
        sessions += 1
        rows += registrations
    return sessions, rows
