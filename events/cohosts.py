"""Co-hosting: a unit named as co-host is invited; it co-hosts (is shown to the public and the
session counts toward its quota) only once its editor or an admin accepts. Co-hosts an admin
names are accepted at once: the district office may accept for any unit."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from events import audit
from events.errors import Conflict, Forbidden, NotFound
from events.models import CohostState, Event, EventCohost, Role, StaffUser
from events.timeutil import utcnow

C = CohostState


def rows_of(db: Session, event_ids: list[int]) -> dict[int, list[EventCohost]]:
    out: dict[int, list[EventCohost]] = {event_id: [] for event_id in event_ids}
    if event_ids:
        rows = db.exec(select(EventCohost).where(col(EventCohost.event_id).in_(event_ids))
                       .order_by(col(EventCohost.unit_id)))
        for row in rows:
            out[row.event_id].append(row)
    return out


def respond(db: Session, actor: StaffUser, event: Event, unit_id: int, accept: bool
            ) -> EventCohost:
    """The invited unit's editor (or an admin) accepts or declines; either may later decline
    (withdraw) an accepted co-hosting."""
    if not (actor.role == Role.admin or (actor.role == Role.editor and actor.unit_id == unit_id)):
        raise Forbidden("forbidden", "only the invited unit's editors or an admin may answer")
    assert event.id is not None
    row = db.get(EventCohost, (event.id, unit_id))
    if row is None:
        raise NotFound("cohost_not_invited", f"unit {unit_id} is not invited to co-host")
    target = C.accepted if accept else C.declined
    if row.state == target:
        return row
    if accept and row.state == C.declined:
        raise Conflict("cohost_declined", "the unit declined; the session's unit must invite it "
                       "again")
    before = row.state
    row.state = target
    row.responded_at = utcnow()
    row.responded_by = actor.id
    db.add(row)
    db.flush()
    audit.record(db, actor, f"event.cohost_{target.value}", "event", event.id,
                 unit_id=event.unit_id, changes={"cohost_unit_id": unit_id,
                                                 "state": [before.value, target.value]})
    return row


def invitations_for(db: Session, unit_id: int) -> list[tuple[Event, EventCohost]]:
    """Sessions that invite this unit and wait for its answer, soonest first."""
    return list(db.exec(select(Event, EventCohost)
                        .join(EventCohost, col(EventCohost.event_id) == Event.id)
                        .where(EventCohost.unit_id == unit_id, EventCohost.state == C.invited)
                        .order_by(col(Event.starts_at))))  # type: ignore[arg-type]


def cohost_public(row: EventCohost) -> dict[str, Any]:
    return {"unit_id": row.unit_id, "state": row.state.value,
            "responded_at": row.responded_at.isoformat() if row.responded_at else None}
