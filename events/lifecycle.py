"""The lifecycle of a session: status changes, postponement, close-out.

Every move is on the graph of the contract (TRANSITIONS); any other is 409 illegal_transition.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlmodel import Session

from events import audit, notify, permissions
from events.errors import Conflict, Invalid
from events.models import Event, EventStatus, StaffUser
from events.registration import checked_in_count
from events.sessions import check_times, get_visible_event, require_complete
from events.timeutil import as_utc, utcnow
from events.units import clean_text

S = EventStatus

# The publication lifecycle of the contract; anything else is 409 illegal_transition.
TRANSITIONS: dict[EventStatus, frozenset[EventStatus]] = {
    S.draft: frozenset({S.pending_review, S.cancelled}),
    S.pending_review: frozenset({S.published, S.draft, S.cancelled}),
    S.published: frozenset({S.live, S.ended, S.cancelled}),
    S.live: frozenset({S.ended, S.cancelled}),
    S.ended: frozenset({S.archived}),
    S.archived: frozenset(),
    S.cancelled: frozenset(),
}
POSTPONABLE = frozenset({S.draft, S.pending_review, S.published})
# A session may go live this long before its start (the stream is tested, the room opens);
# it ends, closing registration for good, only once it has started.
GO_LIVE_LEAD = timedelta(minutes=30)
CLOSABLE = frozenset({S.published, S.live, S.ended})

# What other parts do when a session's status changes, in the same transaction (the webcast
# goes on air with `live` and off air with `ended`: streaming.live_hub). The composition root
# registers them; events imports none of them.
StatusListener = Callable[[Session, Event, EventStatus], None]
_status_listeners: list[StatusListener] = []


def on_status_change(listener: StatusListener) -> None:
    """Calls `listener(db, event, previous)` after every status change, once flushed."""
    if listener not in _status_listeners:
        _status_listeners.append(listener)


def _status_changed(db: Session, event: Event, previous: EventStatus) -> None:
    if event.status != previous:
        for listener in _status_listeners:
            listener(db, event, previous)


def change_status(
    db: Session, actor: StaffUser, event_id: int, target: EventStatus, reason: str = ""
) -> Event:
    event = get_visible_event(db, event_id, actor)  # another unit's draft: 404, not 403
    reason = clean_text(reason, "reason", multiline=True).strip()
    current = event.status
    if target == S.published:
        permissions.require_admin(actor)
    elif target in (S.live, S.ended):
        permissions.require_runner(db, actor, event)
    elif current == S.pending_review and target == S.draft:
        # The office sends a draft back; the unit may also withdraw its own.
        if not permissions.is_admin(actor):
            permissions.require_owner(actor, event)
    else:
        permissions.require_owner(actor, event)
    if target not in TRANSITIONS[current]:
        raise Conflict("illegal_transition",
                       f"a session cannot go from {current.value} to {target.value}",
                       current=current.value, target=target.value)
    if target in (S.pending_review, S.published):  # 422 incomplete, naming every field
        require_complete(event)
    if target == S.live and utcnow() < event.starts_at - GO_LIVE_LEAD:
        raise Conflict("not_started", "a session goes live at most "
                       f"{GO_LIVE_LEAD.seconds // 60} minutes before it starts",
                       starts_at=event.starts_at.isoformat())
    if target == S.ended and utcnow() < event.starts_at:
        raise Conflict("not_started", "a session can end only once it has started",
                       starts_at=event.starts_at.isoformat())
    if target == S.cancelled and event.published_at is not None and not reason:
        raise Invalid("reason_required", "say why the session is cancelled: the public sees it",
                      field="reason")
    if current == S.pending_review and target == S.draft and permissions.is_admin(actor) \
            and not reason and event.created_by != actor.id:
        raise Invalid("reason_required", "say what the unit must fix", field="reason")
    event.status = target
    event.updated_at = utcnow()
    if target == S.published:
        event.published_at = event.published_at or utcnow()
        event.review_note = ""
    elif target == S.draft:
        event.review_note = reason
    elif target == S.cancelled:
        event.public_notice = reason
    db.add(event)
    db.flush()
    _status_changed(db, event, current)
    if target == S.cancelled:
        notify.event_cancelled(db, event)
    audit.record(db, actor, f"event.{target.value}", "event", event.id, unit_id=event.unit_id,
                 changes={"status": [current.value, target.value],
                          **({"reason": reason} if reason else {})})
    return event


def postpone(
    db: Session, actor: StaffUser, event_id: int, starts_at: datetime, ends_at: datetime,
    reason: str,
) -> Event:
    event = get_visible_event(db, event_id, actor)  # another unit's draft: 404, not 403
    permissions.require_owner(actor, event)
    if event.status not in POSTPONABLE:
        raise Conflict("not_postponable",
                       f"a session that is {event.status.value} cannot be postponed")
    reason = clean_text(reason, "reason", multiline=True).strip()
    if not reason:
        raise Invalid("reason_required", "say why the session moves: the public sees it",
                      field="reason")
    before = {"starts_at": event.starts_at, "ends_at": event.ends_at}
    event.postponed_from = event.postponed_from or event.starts_at
    event.starts_at, event.ends_at = as_utc(starts_at), as_utc(ends_at)
    check_times(event)
    event.public_notice = reason
    event.updated_at = utcnow()
    db.add(event)
    db.flush()
    notify.event_changed(db, event, f"延期，原因：{reason}")
    audit.record(db, actor, "event.postpone", "event", event.id, unit_id=event.unit_id,
                 changes={**audit.diff(before, {"starts_at": event.starts_at,
                                                "ends_at": event.ends_at}), "reason": reason})
    return event


def close_event(
    db: Session, actor: StaffUser, event_id: int, minutes: str, attendee_count: int | None,
    attendance_reason: str = "",
) -> Event:
    """Minutes and attendance make the session quota evidence. Attendance defaults to the
    check-in count; another number needs a reason, kept in the audit log."""
    event = get_visible_event(db, event_id, actor)  # another unit's draft: 404, not 403
    permissions.require_owner(actor, event)
    if event.status not in CLOSABLE:
        raise Conflict("illegal_transition",
                       f"a session that is {event.status.value} cannot be closed")
    if event.starts_at > utcnow():
        raise Conflict("not_started", "a session can be closed only once it has started")
    if event.closed_at is not None and not permissions.is_admin(actor):
        # The minutes are public: once published, only the district office changes them.
        raise Conflict("already_closed", "this session was closed out; ask the district office "
                       "to correct its minutes")
    minutes = clean_text(minutes, "minutes", multiline=True).strip()
    if not minutes:
        raise Invalid("minutes_required", "the close-out needs minutes", field="minutes")
    checked_in = checked_in_count(db, event_id)
    attendance_reason = clean_text(attendance_reason, "attendance_reason",
                                   multiline=True).strip()
    if attendee_count is None:
        attendee_count = checked_in
    elif attendee_count != checked_in and not attendance_reason:
        raise Invalid("reason_required", f"{checked_in} people were checked in: say why the "
                      f"attendance is {attendee_count}", field="attendance_reason",
                      checked_in_count=checked_in)
    previous = event.status
    before = {"status": event.status, "minutes": event.minutes,
              "attendee_count": event.attendee_count}
    event.status = S.ended
    event.minutes = minutes
    event.attendee_count = attendee_count
    event.closed_at = utcnow()
    event.updated_at = event.closed_at
    db.add(event)
    db.flush()
    _status_changed(db, event, previous)
    audit.record(db, actor, "event.close", "event", event.id, unit_id=event.unit_id,
                 changes={**audit.diff(before, {"status": event.status, "minutes": minutes,
                                                "attendee_count": attendee_count}),
                          "checked_in_count": checked_in,
                          **({"attendance_reason": attendance_reason}
                             if attendance_reason else {})})
    return event
