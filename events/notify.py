"""Notifications in Chinese, written to the outbox; a backend delivers them (see events.delivery).

Each message is a row first, so nothing is lost when a worker dies; staff read the outbox.
A reminder is keyed to the start time it announces: after a reschedule the old one is void.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from events import permissions, rooms
from events.errors import Forbidden
from events.models import (
    Event,
    OutboxMessage,
    Registration,
    RegistrationStatus,
    Role,
    StaffUser,
    Unit,
)
from events.timeutil import local, utcnow

R = RegistrationStatus
REMINDER_BEFORE = timedelta(days=1)
SIGNATURE = "【西城政务开放】"
# Links in texts start with KAIFANG_PUBLIC_URL; the composition root sets it (set_public_url).
public_url = "http://127.0.0.1:8000"


def set_public_url(url: str) -> None:
    global public_url
    public_url = url.rstrip("/")


def _when(event: Event) -> str:
    start = local(event.starts_at)
    return f"{start.month}月{start.day}日 {start:%H:%M}"


def _params(event: Event, **more: str) -> dict[str, str]:
    """A text's template parameters (an SMS gateway fills its template with them)."""
    return {"title": event.title, "time": _when(event), "venue": event.venue or "线上", **more}


def _mask(phone: str) -> str:
    return f"{phone[:3]}****{phone[-4:]}" if len(phone) >= 7 else "***"


def message_row(
    *, topic: str, recipient: str, body: str, event_id: int | None = None,
    registration_id: int | None = None, unit_id: int | None = None, subject: str = "",
    channel: str = "sms", due_at: datetime | None = None, dedupe_key: str | None = None,
    params: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Every column of an outbox row: for OutboxMessage(**row), or for one INSERT of many."""
    now = utcnow()
    return {"channel": channel, "recipient": recipient, "recipient_masked": _mask(recipient),
            "subject": subject, "body": body, "topic": topic, "event_id": event_id,
            "registration_id": registration_id, "unit_id": unit_id, "due_at": due_at or now,
            "dedupe_key": dedupe_key, "state": "pending", "attempts": 0, "sent_at": None,
            "error": "", "created_at": now,
            "sms_params": json.dumps(params or {}, ensure_ascii=False)}


def enqueue(
    db: Session, *, topic: str, recipient: str, body: str, event: Event | None = None,
    registration: Registration | None = None, unit: Unit | None = None, subject: str = "",
    channel: str = "sms", due_at: datetime | None = None, dedupe_key: str | None = None,
    params: dict[str, str] | None = None,
) -> OutboxMessage | None:
    if not recipient:
        return None
    if dedupe_key and db.exec(select(OutboxMessage.id).where(
            OutboxMessage.dedupe_key == dedupe_key)).first():
        return None
    message = OutboxMessage(**message_row(
        topic=topic, recipient=recipient, body=body, subject=subject, channel=channel,
        event_id=event.id if event else None,
        registration_id=registration.id if registration else None,
        unit_id=unit.id if unit else None, due_at=due_at, dedupe_key=dedupe_key,
        params=params))
    db.add(message)  # flushed with the transaction: no round trip per message
    return message


def reminder_key(registration_id: int | None, starts_at: datetime) -> str:
    """A reminder names the start time it announces; delivery checks it is still the one."""
    return f"reminder:{registration_id}:{starts_at:%Y%m%dT%H%M}"


def _reminder_body(event: Event, code: str) -> str:
    watch = f"在线收看：{public_url}{rooms.room_path(event.id)}" if rooms.has_room(event) else ""
    return (f"{SIGNATURE}提醒：您报名的“{event.title}”将于{_when(event)}开始，"
            f"地点：{event.venue or '线上'}。入场码 {code}。{watch}")


def schedule_reminder(db: Session, event: Event, registration: Registration) -> None:
    """The reminder for the session's current start time: revived if it was voided, else new."""
    due = event.starts_at - REMINDER_BEFORE
    if due <= utcnow():
        return
    key = reminder_key(registration.id, event.starts_at)
    body = _reminder_body(event, registration.code)
    voided = db.exec(select(OutboxMessage).where(OutboxMessage.dedupe_key == key,
                                                 OutboxMessage.state == "void")).first()
    if voided is not None and registration.phone:
        # Moved back to a time it had before: the old reminder for that time lives again.
        voided.state, voided.due_at, voided.body = "pending", due, body
        voided.recipient, voided.attempts, voided.error = registration.phone, 0, ""
        voided.sms_params = json.dumps(_params(event, code=registration.code), ensure_ascii=False)
        db.add(voided)
        db.flush()
        return
    enqueue(db, topic="reminder", recipient=registration.phone, event=event,
            registration=registration, due_at=due, dedupe_key=key, body=body,
            params=_params(event, code=registration.code))


def received_messages(event: Event, registration_id: int, status: RegistrationStatus,
                      code: str, phone: str) -> list[dict[str, Any]]:
    """Outbox rows for a registration just made: confirmed (with tomorrow's reminder) or
    waitlisted. Rows, not objects: a burst inserts them all in one statement."""
    if not phone:
        return []
    if status == R.confirmed:
        body = (f"{SIGNATURE}您已成功报名“{event.title}”，时间：{_when(event)}，"
                f"地点：{event.venue or '线上'}。入场码 {code}。")
        rows = [message_row(topic="registration_confirmed", recipient=phone, body=body,
                            event_id=event.id, registration_id=registration_id,
                            params=_params(event, code=code))]
        due = event.starts_at - REMINDER_BEFORE
        if due > utcnow():  # a new registration can have no earlier reminder to revive
            rows.append(message_row(
                topic="reminder", recipient=phone, body=_reminder_body(event, code),
                event_id=event.id, registration_id=registration_id, due_at=due,
                dedupe_key=reminder_key(registration_id, event.starts_at),
                params=_params(event, code=code)))
        return rows
    body = (f"{SIGNATURE}“{event.title}”名额已满，您已进入候补名单。"
            f"有名额空出时将按顺序自动递补并短信通知您。")
    return [message_row(topic="registration_waitlisted", recipient=phone, body=body,
                        event_id=event.id, registration_id=registration_id,
                        params={"title": event.title})]


def promoted(db: Session, event: Event, registration: Registration) -> None:
    body = (f"{SIGNATURE}好消息：您已从候补转为正式报名“{event.title}”，时间：{_when(event)}，"
            f"地点：{event.venue or '线上'}。入场码 {registration.code}。")
    enqueue(db, topic="promoted", recipient=registration.phone, body=body, event=event,
            registration=registration, params=_params(event, code=registration.code))
    schedule_reminder(db, event, registration)


def _active_registrations(db: Session, event: Event) -> list[Registration]:
    return list(db.exec(select(Registration).where(
        Registration.event_id == event.id,
        col(Registration.status).in_([R.confirmed, R.waitlisted]),
        col(Registration.erased_at).is_(None))))


def void_stale_reminders(db: Session, event: Event) -> None:
    """After a reschedule or cancel: pending reminders for another start time are void."""
    pending = db.exec(select(OutboxMessage).where(
        OutboxMessage.event_id == event.id, OutboxMessage.topic == "reminder",
        OutboxMessage.state == "pending"))
    for message in pending:
        current = reminder_key(message.registration_id, event.starts_at)
        if event.status.value == "cancelled" or message.dedupe_key != current:
            message.state = "void"
            db.add(message)
    db.flush()


def event_changed(db: Session, event: Event, what: str) -> None:
    """Tells everyone registered that the session moved or changed; reminders follow it."""
    void_stale_reminders(db, event)
    for registration in _active_registrations(db, event):
        enqueue(db, topic="event_changed", recipient=registration.phone, event=event,
                registration=registration, params=_params(event, change=what),
                body=f"{SIGNATURE}您报名的“{event.title}”有变更：{what}。"
                     f"新时间：{_when(event)}，地点：{event.venue or '线上'}。")
        if registration.status == R.confirmed:
            schedule_reminder(db, event, registration)


def event_cancelled(db: Session, event: Event) -> None:
    void_stale_reminders(db, event)
    for registration in _active_registrations(db, event):
        enqueue(db, topic="event_cancelled", recipient=registration.phone, event=event,
                registration=registration,
                params={"title": event.title,
                        "reason": event.public_notice or "主办单位安排调整"},
                body=f"{SIGNATURE}很抱歉，您报名的“{event.title}”已取消。"
                     f"原因：{event.public_notice or '主办单位安排调整'}。")


def void_for_registration(db: Session, registration: Registration) -> None:
    """Erasure: pending messages to this person are void and their number blanked."""
    for message in db.exec(select(OutboxMessage).where(
            OutboxMessage.registration_id == registration.id)):
        if message.state in ("pending", "failed"):  # a failed one would be retried
            message.state = "void"
        message.recipient = ""
        db.add(message)
    db.flush()


def outbox_messages(
    db: Session, reader: StaffUser, *, topic: str = "", state: str = "",
    event_id: int | None = None, offset: int = 0, limit: int = 50,
) -> list[tuple[OutboxMessage, Event | None]]:
    """Newest first. The district office reads every message; an editor those of their unit's
    sessions and those addressed to their unit."""
    if not permissions.is_admin(reader) and (reader.role != Role.editor
                                             or reader.unit_id is None):
        raise Forbidden("forbidden", "only the district office and unit editors read the outbox")
    query = select(OutboxMessage, Event).join(
        Event, col(OutboxMessage.event_id) == col(Event.id), isouter=True)
    if not permissions.is_admin(reader):
        query = query.where((col(Event.unit_id) == reader.unit_id)
                            | (col(OutboxMessage.unit_id) == reader.unit_id))
    if topic:
        query = query.where(OutboxMessage.topic == topic)
    if state:
        query = query.where(OutboxMessage.state == state)
    if event_id is not None:
        query = query.where(OutboxMessage.event_id == event_id)
    query = query.order_by(col(OutboxMessage.created_at).desc(), col(OutboxMessage.id).desc())
    return list(db.exec(query.offset(offset).limit(limit)))
