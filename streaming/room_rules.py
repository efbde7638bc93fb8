"""The live room's rules: whether it takes messages (the session is live, or its premiere
plays, and no host closed it), slow mode and pre- or post-moderation as its hosts set them, and
its counts for the minutes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from events import audit, permissions, sessions
from events.errors import Invalid
from events.locking import lock_event
from events.models import Event, Moderation, StaffUser
from events.timeutil import utcnow
from streaming import phase, protocol
from streaming.models import LiveMessage, LiveRoom
from streaming.stream import room_of

MAX_SLOW_MODE_S = 600


def is_open(event: Event, room: LiveRoom | None, now: datetime) -> bool:
    """Messages are taken while the session is live, or while its premiere plays, unless a host
    closed the room (streaming.phase.takes_messages)."""
    return phase.takes_messages(phase.phase_of(event, now), room is not None and room.closed)


def room_public(event: Event, found: LiveRoom | None, now: datetime | None = None
                ) -> dict[str, Any]:
    """The room's rules as a `room` frame and the hosts' controls show them."""
    return {"open": is_open(event, found, now or utcnow()),
            "closed": bool(found and found.closed), "moderation": event.moderation.value,
            "slow_mode_s": found.slow_mode_s if found else 0}


def configure(db: Session, actor: StaffUser, event_id: int, *, closed: bool | None = None,
              slow_mode_s: int | None = None, moderation: str | None = None,
              now: datetime | None = None) -> tuple[dict[str, Any], protocol.Frames]:
    """A host closes or reopens the room, sets slow mode, or switches pre- and
    post-moderation while it runs. Returns the room's rules and the frame. Flushes."""
    event = sessions.get_visible_event(db, event_id, actor)
    permissions.require_runner(db, actor, event)
    if slow_mode_s is not None and not 0 <= slow_mode_s <= MAX_SLOW_MODE_S:
        raise Invalid("invalid", f"slow_mode_s: 0 to {MAX_SLOW_MODE_S} seconds",
                      field="slow_mode_s")
    if moderation is not None and moderation not in Moderation.__members__:
        raise Invalid("invalid", "moderation: pre or post", field="moderation")
    event = lock_event(db, event_id)
    found = room_of(db, event_id)
    changes: dict[str, Any] = {}
    if closed is not None and closed != found.closed:
        found.closed, changes["closed"] = closed, closed
    if slow_mode_s is not None and slow_mode_s != found.slow_mode_s:
        found.slow_mode_s, changes["slow_mode_s"] = slow_mode_s, slow_mode_s
    if moderation is not None and moderation != event.moderation.value:
        event.moderation, changes["moderation"] = Moderation(moderation), moderation
        db.add(event)
    db.add(found)
    db.flush()
    rules = room_public(event, found, now)
    frames = protocol.Frames()
    if changes:
        audit.record(db, actor, "live.room", "event", event_id, unit_id=event.unit_id,
                     changes=changes)
        frames.room.append(protocol.encode(protocol.ROOM, **rules))
    return rules, frames


# ---- after the session ----------------------------------------------------------------------

def tally(db: Session, event_id: int) -> dict[str, int]:
    """How many messages the room approved, rejected, held and removed (for the minutes)."""
    counts = dict.fromkeys(("approved", "rejected", "held", "removed"), 0)
    for state, number in db.exec(select(LiveMessage.state, func.count())
                                 .where(LiveMessage.event_id == event_id)
                                 .group_by(col(LiveMessage.state))):
        counts[state] = int(number)
    return counts
