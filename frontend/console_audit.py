"""The audit log as people read it: 'Title: old → new', in the reader's language."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from events.models import AuditEntry, Event
from frontend import labels
from frontend.i18n import N_, gettext
from frontend.templating import format_datetime

ACTIONS = {
    "event.create": N_("Created the session"),
    "event.update": N_("Edited the session"),
    "event.pending_review": N_("Submitted for review"),
    "event.published": N_("Published"),
    "event.draft": N_("Returned to draft"),
    "event.cancelled": N_("Cancelled"),
    "event.live": N_("Went live"),
    "event.ended": N_("Ended"),
    "event.archived": N_("Archived"),
    "event.postpone": N_("Postponed"),
    "event.close": N_("Closed out"),
    "event.revision_submitted": N_("Changed the published session: sent for review"),
    "event.revision_withdrawn": N_("Withdrew the changes sent for review"),
    "event.revision_approved": N_("Approved the changes: the public sees them"),
    "event.revision_rejected": N_("Rejected the changes"),
    "event.cohost_accepted": N_("Accepted to co-host"),
    "event.cohost_declined": N_("Declined to co-host"),
    "event.host_assigned": N_("Assigned a host"),
    "event.host_unassigned": N_("Removed a host"),
    "unit.create": N_("Added a unit"),
    "unit.update": N_("Changed a unit"),
    "user.create": N_("Created an account"),
    "user.update": N_("Changed an account"),
    "registration.export": N_("Exported the registrations with full personal data"),
    "registration.walk_in": N_("Registered a walk-in at the door"),
    "registration.purge": N_("Erased personal data after the retention period"),
    "quota.rules": N_("Changed the year's quota rules"),
    "theme.create": N_("Added a theme"),
    "theme.update": N_("Changed a theme"),
    "series.create": N_("Created a series"),
    "series.update": N_("Changed a series"),
    "series.delete": N_("Deleted a series"),
}
FIELDS = {
    "kind": N_("Kind"),
    "unit_id": N_("Organising unit"),
    "title": N_("Title"),
    "contact_email": N_("Contact e-mail"),
    "summary": N_("Summary"),
    "starts_at": N_("Starts"),
    "ends_at": N_("Ends"),
    "mode": N_("How to take part"),
    "venue": N_("Venue"),
    "address": N_("Address"),
    "capacity": N_("Seats"),
    "registration_opens_at": N_("Registration opens"),
    "registration_closes_at": N_("Registration closes"),
    "moderation": N_("Comment moderation"),
    "premiere_at": N_("Premiere"),
    "cohost_unit_ids": N_("Co-hosting units"),
    "materials": N_("Materials"),
    "status": N_("Status"),
    "reason": N_("Reason"),
    "minutes": N_("Minutes"),
    "attendee_count": N_("Attendees"),
    "code": N_("Code"),
    "name": N_("Name"),
    "name_en": N_("English name"),
    "category": N_("Category"),
    "retired": N_("Retired"),
    "username": N_("Username"),
    "role": N_("Role"),
    "display_name": N_("Display name"),
    "active": N_("Active"),
    "password_changed": N_("Password changed"),
    "rows": N_("Rows"),
    "registration_id": N_("Registration no."),
    "checked_in_count": N_("Checked in"),
    "attendance_reason": N_("Why the attendance differs"),
    "rules": N_("Rules"),
    "submitted_by": N_("Submitted by"),
    "host": N_("Host"),
    "cohost_unit_id": N_("Co-hosting unit"),
    "registrations": N_("Registrations erased"),
    "messages": N_("Messages blanked"),
    "retention_days": N_("Retention period (days)"),
    "year": N_("Year"),
    "themes": N_("Themes"),
    "series_id": N_("Series"),
    "sessions": N_("Sessions"),
}
MODERATION = {"pre": N_("Approve before showing"), "post": N_("Show at once, remove if needed")}
TIME_FIELDS = {"starts_at", "ends_at", "registration_opens_at", "registration_closes_at",
               "premiere_at"}
LONG_TEXT = 160
# These record the values set, not [old, new] pairs.
PLAIN_ACTIONS = frozenset({"unit.create", "user.create"})


@dataclass
class Change:
    label: str
    old: str | None  # None: a value set, not changed from something
    new: str


@dataclass
class Entry:
    id: int | None
    at: datetime
    username: str
    action: str
    entity: str
    entity_id: int | None
    unit_id: int | None
    changes: list[Change] = field(default_factory=list)
    title: str | None = None  # the session's title, for an entry about a session


def _shorten(text: str) -> str:
    return text if len(text) <= LONG_TEXT else text[:LONG_TEXT] + "…"


def display(name: str, value: Any, unit_names: dict[int, str]) -> str:
    """One stored value as a reader would say it."""
    if value is None or value == "" or value == []:
        return "—"
    if name in TIME_FIELDS and isinstance(value, str):
        return format_datetime(value)
    tables = {"kind": labels.KINDS, "status": labels.STATUSES, "mode": labels.MODES,
              "category": labels.CATEGORIES, "role": labels.ROLES, "moderation": MODERATION}
    if name in tables:
        return gettext(tables[name].get(str(value), str(value)))
    if name == "unit_id" and isinstance(value, int):
        return unit_names.get(value, f"#{value}")
    if name in ("themes", "sessions") and isinstance(value, list):
        return "、".join(str(v) for v in value)
    if name == "cohost_unit_ids" and isinstance(value, list):
        return "、".join(unit_names.get(v, f"#{v}") for v in value)
    if name == "materials" and isinstance(value, list):
        return "、".join(str(item["title"] if isinstance(item, dict) else item[0])
                        for item in value if isinstance(item, list | dict) and item)
    if name == "capacity" and value == 0:
        return gettext("No limit")
    if isinstance(value, bool):
        return gettext("Yes") if value else gettext("No")
    return _shorten(str(value))


def readable(entry: AuditEntry, unit_names: dict[int, str]) -> Entry:
    changes = []
    recorded: dict[str, Any] = json.loads(entry.changes or "{}")
    for name, value in recorded.items():
        label = gettext(FIELDS.get(name, name))
        if name == "unit_id" and entry.entity != "event":
            label = gettext("Unit")
        is_pair = entry.action not in PLAIN_ACTIONS and name != "reason" \
            and isinstance(value, list) and len(value) == 2
        if not is_pair:
            if value is None:
                continue
            changes.append(Change(label, None, display(name, value, unit_names)))
            continue
        old, new = value
        if entry.action == "event.create":
            if new not in (None, "", []):  # an empty field at creation says nothing
                changes.append(Change(label, None, display(name, new, unit_names)))
            continue
        changes.append(Change(label, display(name, old, unit_names),
                              display(name, new, unit_names)))
    return Entry(entry.id, entry.at, entry.username,
                 gettext(ACTIONS.get(entry.action, entry.action)), entry.entity,
                 entry.entity_id, entry.unit_id, changes)


def with_titles(db: Session, entries: list[Entry]) -> list[Entry]:
    """Names each session an entry is about by its title, not only by its number."""
    ids = {e.entity_id for e in entries if e.entity == "event" and e.entity_id is not None}
    if ids:
        titles = dict(db.exec(select(Event.id, Event.title).where(col(Event.id).in_(ids))).all())
        for entry in entries:
            if entry.entity == "event":
                entry.title = titles.get(entry.entity_id)
    return entries
