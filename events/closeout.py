"""Sessions held and not yet closed out (plan 二: minutes and attendance make them evidence):
which they are, and one reminder to their unit a day after each one's end."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from events import notify
from events.lifecycle import CLOSABLE
from events.models import Event, EventStatus, Unit
from events.timeutil import local, utcnow

# The unit gets a day to close a session out before it is reminded.
REMIND_AFTER = timedelta(days=1)
# Sessions older than this are history, not a task: the reminder job leaves them alone.
REMIND_WITHIN = timedelta(days=60)


# A session that took place: what the public results page lists once it is closed out.
HELD = frozenset({EventStatus.ended, EventStatus.archived})


def held(events: list[Event]) -> list[Event]:
    """Sessions that took place and were closed out (minutes recorded): the evidence."""
    return [e for e in events if e.status in HELD and e.closed_at is not None]


def is_waiting(event: Event, now: datetime | None = None) -> bool:
    """Published, past its end and without minutes: the unit still owes its close-out."""
    return (event.status in CLOSABLE and event.published_at is not None
            and event.closed_at is None and (now or utcnow()) >= event.ends_at)


def waiting_for_reminder(db: Session, now: datetime) -> list[Event]:
    return list(db.exec(select(Event).where(
        col(Event.status).in_(CLOSABLE), col(Event.published_at).is_not(None),
        col(Event.closed_at).is_(None), col(Event.ends_at) <= now - REMIND_AFTER,
        col(Event.ends_at) > now - REMIND_WITHIN).order_by(col(Event.ends_at), col(Event.id))))


def remind_units(db: Session, now: datetime | None = None) -> int:
    """Writes one console message (recipient unit:<code>, read in the unit's outbox) per session
    waiting for its close-out a day after its end; each only once. Returns how many."""
    now = now or utcnow()
    queued = 0
    for event in waiting_for_reminder(db, now):
        unit = db.get(Unit, event.unit_id)
        if unit is None:
            continue
        ended = local(event.ends_at)
        body = (f"{notify.SIGNATURE}{unit.name}：活动“{event.title}”已于{ended.month}月"
                f"{ended.day}日结束，尚未结项。请在工作台登记会议纪要和参会人数完成结项，"
                f"结项后方计入年度政务开放任务。")
        message = notify.enqueue(
            db, topic="closeout_reminder", channel="console", recipient=f"unit:{unit.code}",
            event=event, unit=unit, subject=f"待结项：{event.title}", body=body,
            dedupe_key=f"closeout:{event.id}")
        if message is not None:
            # A unit is no person: unit:<code> needs no masking in the outbox.
            message.recipient_masked = message.recipient
            queued += 1
    db.flush()
    return queued
