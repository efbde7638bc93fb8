"""Who may do what. Editors act only on their own unit's sessions; only admins publish; hosts
run (go live, end, check people in) only the sessions they are assigned to (events.hosts)."""

from __future__ import annotations

from sqlmodel import Session

from events.errors import Forbidden
from events.models import Event, EventHost, Role, StaffUser


def is_admin(user: StaffUser) -> bool:
    return user.role == Role.admin


def owns(user: StaffUser, event: Event) -> bool:
    return user.role == Role.admin or (user.role == Role.editor and user.unit_id == event.unit_id)


def require_admin(user: StaffUser) -> None:
    if not is_admin(user):
        raise Forbidden("forbidden", "only the district office (admin) may do this")


def require_unit_editor(user: StaffUser, unit_id: int) -> None:
    """Admins act for any unit; an editor only for their own; hosts edit nothing."""
    if user.role == Role.admin:
        return
    if user.role == Role.editor and user.unit_id == unit_id:
        return
    raise Forbidden("forbidden", "you may only act on sessions of your own unit")


def require_owner(user: StaffUser, event: Event) -> None:
    require_unit_editor(user, event.unit_id)


def is_assigned_host(db: Session, user: StaffUser, event: Event) -> bool:
    return user.role == Role.host and user.id is not None and event.id is not None \
        and db.get(EventHost, (event.id, user.id)) is not None


def may_run(db: Session, user: StaffUser, event: Event) -> bool:
    """Going live, ending, checking in and reading the registration list: the unit, an admin,
    or a host assigned to this session (need-to-know, plan 四(一))."""
    return owns(user, event) or is_assigned_host(db, user, event)


def require_runner(db: Session, user: StaffUser, event: Event) -> None:
    if not may_run(db, user, event):
        raise Forbidden("forbidden", "only the unit, an admin or a host assigned to this "
                        "session may run it")
