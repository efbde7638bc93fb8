"""Hosts remove abusers from a room: a ban (for the rest of the session) or a timeout
(TIMEOUT_MINUTES), each with a reason.

A ban covers its viewer, and every viewer who joins the room later from the same address
(`address_key`) while it lasts: rejoining under another nickname does not get round it. The
banned viewer's messages leave every page and every hosts' queue. Functions flush; the caller
commits, then publishes the frames they return.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_
from sqlmodel import Session, col, select

from events import audit, permissions, sessions
from events.errors import Forbidden, Invalid, NotFound
from events.locking import lock_event
from events.models import StaffUser
from events.timeutil import iso_local, utcnow
from events.units import clean_text
from streaming import protocol, stream
from streaming.models import LiveMessage, Viewer
from streaming.stream import decided_frame

TIMEOUT_MINUTES = (5, 10)
MAX_REASON = 200
MAX_ID = 2**31 - 1


def active(now: datetime) -> Any:
    """The SQL condition of a viewer whose ban or timeout runs at `now`."""
    return (col(Viewer.banned_at).is_not(None)
            & or_(col(Viewer.banned_until).is_(None), col(Viewer.banned_until) > now))


def is_banned(db: Session, viewer: Viewer, now: datetime | None = None) -> bool:
    """The viewer's own ban or timeout runs, or a ban of a viewer of their address that began
    before they joined."""
    now = now or utcnow()
    if viewer.banned_at is not None and (viewer.banned_until is None
                                         or viewer.banned_until > now):
        return True
    if not viewer.address_key:
        return False
    return db.exec(select(Viewer.id).where(
        Viewer.event_id == viewer.event_id, Viewer.address_key == viewer.address_key,
        Viewer.id != viewer.id, col(Viewer.banned_at) <= viewer.created_at,
        active(now))).first() is not None


def check(db: Session, viewer: Viewer, now: datetime | None = None) -> None:
    """403 `banned` for a viewer is_banned calls banned."""
    if is_banned(db, viewer, now):
        raise Forbidden(protocol.BANNED, "a host removed you from this room")


def check_reason(reason: str) -> str:
    """The reason as stored; 422 `reason_required` for none."""
    cleaned = clean_text(reason, "reason").strip()[:MAX_REASON]
    if not cleaned:
        raise Invalid("reason_required", "say why", field="reason")
    return cleaned


def ban(db: Session, actor: StaffUser, event_id: int, viewer_id: int, reason: str,
        minutes: int | None = None, now: datetime | None = None
        ) -> tuple[list[int], protocol.Frames]:
    """Removes a viewer from the room for good (`minutes` None) or for 5 or 10 minutes: their
    messages disappear everywhere (the room's lists and the hosts' queues). Returns the ids of
    the approved messages dropped, and the frames. Flushes."""
    now = now or utcnow()
    event = sessions.get_visible_event(db, event_id, actor)
    permissions.require_runner(db, actor, event)
    reason = check_reason(reason)
    if minutes is not None and minutes not in TIMEOUT_MINUTES:
        raise Invalid("invalid_duration", "minutes: 5 or 10, or none for a ban",
                      field="minutes")
    lock_event(db, event_id)
    viewer = db.get(Viewer, viewer_id) if 0 < viewer_id <= MAX_ID else None
    if viewer is None or viewer.event_id != event_id:
        raise NotFound("viewer_not_found", f"no viewer {viewer_id} in this room")
    until = now + timedelta(minutes=minutes) if minutes else None
    running = viewer.banned_at is not None and (viewer.banned_until is None
                                                or viewer.banned_until > now)
    if running and (viewer.banned_until is None or (until and until <= viewer.banned_until)):
        until = viewer.banned_until  # a second host's shorter timeout never shortens a ban
    viewer.banned_at, viewer.ban_reason, viewer.banned_until = now, reason, until
    db.add(viewer)
    removed, frames = [], protocol.Frames()
    for message in db.exec(select(LiveMessage).where(
            LiveMessage.viewer_id == viewer_id,
            col(LiveMessage.state).in_(["held", "approved"]))):
        if message.state == "approved":
            removed.append(message.id or 0)
            frames.room.append(stream.removed_frame(message, stream.record(db, message,
                                                                           "removed")))
        message.state, message.decided_at, message.decided_by = "removed", now, actor.id
        db.add(message)
        frames.hosts.append(decided_frame(message))
    db.flush()
    audit.record(db, actor, "live.ban", "event", event_id, unit_id=event.unit_id,
                 changes={"viewer": viewer_id, "reason": reason, "removed": len(removed),
                          "minutes": minutes})
    return removed, frames


def ban_public(viewer: Viewer, now: datetime) -> dict[str, Any]:
    """A ban as the hosts' console lists it: who, why, since when, and the seconds left (None:
    for the rest of the session)."""
    assert viewer.banned_at is not None
    left = None if viewer.banned_until is None \
        else max(0, round((viewer.banned_until - now).total_seconds()))
    return {"viewer_id": viewer.id, "nickname": viewer.nickname, "reason": viewer.ban_reason,
            "banned_at": iso_local(viewer.banned_at),
            "until": iso_local(viewer.banned_until) if viewer.banned_until else None,
            "left_s": left}


def listed(db: Session, event_id: int, now: datetime | None = None) -> list[dict[str, Any]]:
    """The room's bans and timeouts that still run, the latest first."""
    now = now or utcnow()
    return [ban_public(v, now) for v in db.exec(
        select(Viewer).where(Viewer.event_id == event_id, active(now))
        .order_by(col(Viewer.banned_at).desc(), col(Viewer.id).desc()))]
