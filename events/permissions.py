"""Who may do what. Editors act only on their own unit's sessions; only admins publish."""

from __future__ import annotations

from events.errors import Forbidden
from events.models import Event, Role, StaffUser


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


def require_runner(user: StaffUser, event: Event) -> None:
    """Starting and ending a live session: its unit, an admin or any host."""
    if user.role == Role.host or owns(user, event):
        return
    raise Forbidden("forbidden", "only the unit, a host or an admin may run this session")
