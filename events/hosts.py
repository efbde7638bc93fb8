"""Hosts assigned to sessions: a host runs (goes live, ends, checks in, reads the registration
list of) only the sessions the unit or the district office assigned them to."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from events import audit, permissions
from events.errors import Invalid, NotFound
from events.models import Event, EventHost, Role, StaffUser
from events.units import MAX_ID


def host_accounts(db: Session) -> list[StaffUser]:
    """Active host accounts, the ones a session may be assigned to."""
    return list(db.exec(select(StaffUser).where(StaffUser.role == Role.host,
                                                col(StaffUser.active).is_(True))
                        .order_by(col(StaffUser.username))))


def hosts_of(db: Session, event_id: int) -> list[StaffUser]:
    return list(db.exec(select(StaffUser).join(EventHost, col(EventHost.user_id) == StaffUser.id)
                        .where(EventHost.event_id == event_id)
                        .order_by(col(StaffUser.username))))


def assigned_event_ids(db: Session, user: StaffUser) -> set[int]:
    return set(db.exec(select(EventHost.event_id).where(EventHost.user_id == user.id)))


def _host(db: Session, user_id: int) -> StaffUser:
    user = db.get(StaffUser, user_id) if 0 < user_id <= MAX_ID else None
    if user is None or user.role != Role.host or not user.active:
        raise Invalid("not_a_host", f"user_id: no active host account with id {user_id}",
                      field="user_id")
    return user


def assign(db: Session, actor: StaffUser, event: Event, user_id: int) -> StaffUser:
    """The session's unit or an admin assigns a host; assigning twice is the same."""
    permissions.require_owner(actor, event)
    host = _host(db, user_id)
    assert event.id is not None
    if db.get(EventHost, (event.id, user_id)) is None:
        db.add(EventHost(event_id=event.id, user_id=user_id, assigned_by=actor.id))
        db.flush()
        audit.record(db, actor, "event.host_assigned", "event", event.id, unit_id=event.unit_id,
                     changes={"host": host.username})
    return host


def unassign(db: Session, actor: StaffUser, event: Event, user_id: int) -> None:
    permissions.require_owner(actor, event)
    assert event.id is not None
    row = db.get(EventHost, (event.id, user_id)) if 0 < user_id <= MAX_ID else None
    if row is None:
        raise NotFound("host_not_assigned", f"no host {user_id} is assigned to this session")
    host = db.get(StaffUser, user_id)
    db.delete(row)
    db.flush()
    audit.record(db, actor, "event.host_unassigned", "event", event.id, unit_id=event.unit_id,
                 changes={"host": host.username if host else user_id})


def host_public(user: StaffUser) -> dict[str, Any]:
    return {"id": user.id, "username": user.username, "display_name": user.display_name}
