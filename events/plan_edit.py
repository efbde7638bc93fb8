"""Editing the year's broadcast plan: the office imports a file or enters an item, deletes one;
the office or the lead unit's editor links the broadcast session that carries an item out.

Importing adds to the year: a topic already in that year is a duplicate (the office deletes an
item first to enter it again). Nothing is half-imported: every line is checked before any is
added (events.plan_import), and the request is one transaction.

Linking: the session must be a broadcast (`broadcast`) of the item's lead unit, or one it
co-hosts (accepted), not cancelled, and not carrying another item (409 `already_linked`);
`event_id` null unlinks. Every change is in the audit log (entity `plan_item`, or `plan` with
the year as id for an import).
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from sqlalchemy import func, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, col, select

from events import audit, permissions, plan_files, plan_import
from events.errors import Conflict, Forbidden, Invalid, NotFound
from events.locking import busy, is_lock_timeout, write_lock
from events.models import (
    CohostState,
    Event,
    EventCohost,
    EventKind,
    EventStatus,
    PlanItem,
    Role,
    StaffUser,
)
from events.plan import PlanCsvInvalid
from events.timeutil import utcnow
from server.config import Settings

MIN_YEAR, MAX_YEAR = 2000, 2100
# PostgreSQL's advisory lock of a year's plan: this number plus the year.
YEAR_LOCK = 0x6B66_706C_0000


class PlanItemCreate(BaseModel):
    """One item entered by hand: the fields of a line of the plan file, and the year."""

    year: int = Field(ge=MIN_YEAR, le=MAX_YEAR)
    topic: str = Field(min_length=1, max_length=400)
    unit_code: str = Field(min_length=1, max_length=100)
    month: int = Field(ge=1, le=12)
    theme: str | None = Field(default=None, max_length=100)


def check_year(year: int) -> int:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise Invalid("invalid", f"year: expected a year from {MIN_YEAR} to {MAX_YEAR}",
                      field="year")
    return year


def get_item(db: Session, item_id: int) -> PlanItem:
    item = db.get(PlanItem, item_id)
    if item is None:
        raise NotFound("not_found", f"there is no plan item {item_id}")
    return item


def _next_position(db: Session, year: int) -> int:
    last = db.exec(select(func.max(PlanItem.position)).where(PlanItem.year == year)).one()
    return int(last or 0) + 1


def lock_year(db: Session, year: int) -> None:
    """One writer of a year's plan at a time, until the transaction ends: the table's unique
    key compares topics exactly, the plan without case and spaces, so two imports of "Topic"
    and "topic" at the same moment would otherwise both pass. SQLite: the database's write
    lock; PostgreSQL: an advisory lock of the year. Busy (503) past the lock timeout."""
    if db.connection().dialect.name == "sqlite":
        write_lock(db)
        return
    try:
        db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": YEAR_LOCK + year})
    except OperationalError as exc:
        if is_lock_timeout(exc):
            raise busy() from exc
        raise


def _flush_new(db: Session) -> None:
    """New items written; a topic another request added a moment before is a duplicate."""
    try:
        db.flush()
    except IntegrityError:  # the request rolls back
        raise Conflict("duplicate_topic", "a topic was added to the year's plan meanwhile: "
                       "read the plan again", field="topic") from None


def import_plan(db: Session, actor: StaffUser, year: int, data: bytes) -> int:
    """Adds the file's items to the year's plan; PlanCsvInvalid (nothing added) when any line
    is bad. Returns how many were added."""
    permissions.require_admin(actor)
    check_year(year)
    lock_year(db, year)
    lines, problems = plan_import.parse(db, year, data)
    if problems:
        raise PlanCsvInvalid(problems)
    position = _next_position(db, year)
    now = utcnow()
    for offset, line in enumerate(lines):
        assert line.unit.id is not None
        db.add(PlanItem(year=year, topic=line.topic, unit_id=line.unit.id, month=line.month,
                        theme_code=line.theme.code if line.theme else None,
                        position=position + offset, created_by=actor.id, created_at=now))
    _flush_new(db)
    audit.record(db, actor, "plan.import", "plan", year, changes={"imported": len(lines)})
    return len(lines)


def create_item(db: Session, actor: StaffUser, data: PlanItemCreate) -> PlanItem:
    """One item entered by hand: the checks of a file's line (422 naming the field; a topic
    already in the year: 409 duplicate_topic)."""
    permissions.require_admin(actor)
    problems: list[dict[str, object]] = []
    topic, why = plan_import.clean_topic(data.topic)
    if why:
        raise Invalid("invalid", f"topic: {why}", field="topic")
    lock_year(db, data.year)
    if plan_import.topic_key(topic) in plan_import.year_topics(db, data.year):
        raise Conflict("duplicate_topic", f"the topic {topic[:60]!r} is already in the plan "
                       f"of {data.year}", field="topic")
    unit, why = plan_import.find_unit(db, data.unit_code)
    if why or unit is None:
        problems.append({"field": "unit_code", "message": why})
    theme, why = plan_import.find_theme(db, data.theme or "")
    if why:
        problems.append({"field": "theme", "message": why})
    if problems or unit is None or unit.id is None:
        first = problems[0]
        raise Invalid("invalid", f"{first['field']}: {first['message']}",
                      field=str(first["field"]),
                      fields=[{**p, "code": "invalid"} for p in problems])
    item = PlanItem(year=data.year, topic=topic, unit_id=unit.id, month=data.month,
                    theme_code=theme.code if theme else None,
                    position=_next_position(db, data.year), created_by=actor.id,
                    created_at=utcnow())
    db.add(item)
    _flush_new(db)
    audit.record(db, actor, "plan.create", "plan_item", item.id, unit_id=unit.id,
                 changes={"year": data.year, "topic": topic, "month": data.month,
                          "theme": item.theme_code})
    return item


def delete_item(db: Session, actor: StaffUser, item_id: int, settings: Settings) -> None:
    """The office removes an item, with its files (the files on disk too)."""
    permissions.require_admin(actor)
    item = plan_files.lock_item(db, item_id)
    plan_files.delete_all(db, item, settings)
    audit.record(db, actor, "plan.delete", "plan_item", item.id, unit_id=item.unit_id,
                 changes={"year": item.year, "topic": item.topic})
    db.delete(item)
    db.flush()


def may_link(user: StaffUser, item: PlanItem) -> bool:
    return permissions.is_admin(user) or (user.role == Role.editor
                                          and user.unit_id == item.unit_id)


def _carrier(db: Session, item: PlanItem, event_id: int) -> Event:
    """The session that may carry the item out (422/409 saying why not)."""
    event = db.get(Event, event_id)
    if event is None:
        raise Invalid("unknown_event", f"event_id: there is no session {event_id}",
                      field="event_id")
    if event.kind != EventKind.broadcast:
        raise Invalid("not_broadcast", "event_id: a plan item is carried out by a broadcast "
                      "(政民互动直播间) session", field="event_id")
    cohosted = db.get(EventCohost, (event.id, item.unit_id))
    if event.unit_id != item.unit_id and (cohosted is None
                                          or cohosted.state != CohostState.accepted):
        raise Invalid("other_unit", "event_id: the session is neither the lead unit's nor "
                      "co-hosted by it", field="event_id")
    if event.status == EventStatus.cancelled:
        raise Conflict("event_cancelled", "the session is cancelled", field="event_id")
    other = db.exec(select(PlanItem.id).where(PlanItem.event_id == event.id,
                                              col(PlanItem.id) != item.id)).first()
    if other is not None:
        raise Conflict("already_linked", f"the session already carries plan item {other}",
                       field="event_id", item_id=other)
    return event


def candidates(db: Session, item: PlanItem) -> list[Event]:
    """The sessions the item may be linked to (the console's choice), soonest first: the lead
    unit's broadcasts and those it co-hosts, not cancelled, not carrying another item."""
    cohosted = select(EventCohost.event_id).where(EventCohost.unit_id == item.unit_id,
                                                  EventCohost.state == CohostState.accepted)
    linked = select(PlanItem.event_id).where(col(PlanItem.event_id).is_not(None),
                                             col(PlanItem.id) != item.id)
    return list(db.exec(
        select(Event).where(Event.kind == EventKind.broadcast,
                            Event.status != EventStatus.cancelled,
                            (col(Event.unit_id) == item.unit_id) | col(Event.id).in_(cohosted),
                            col(Event.id).not_in(linked))
        .order_by(col(Event.starts_at), col(Event.id))))


def link_event(db: Session, actor: StaffUser, item_id: int, event_id: int | None) -> PlanItem:
    """Links (or, with None, unlinks) the session that carries the item out (under the item's
    lock: an item the office deletes meanwhile is 404, not a failed update)."""
    item = plan_files.lock_item(db, item_id)
    if not may_link(actor, item):
        raise Forbidden("forbidden", "only the office or the lead unit's editors may link "
                        "its session")
    if event_id is not None:
        _carrier(db, item, event_id)
    before = item.event_id
    if before == event_id:
        return item
    item.event_id = event_id
    db.add(item)
    try:
        db.flush()
    except IntegrityError:  # another request linked it a moment before; the request rolls back
        raise Conflict("already_linked", "the session already carries another plan item",
                       field="event_id") from None
    audit.record(db, actor, "plan.link", "plan_item", item.id, unit_id=item.unit_id,
                 changes={"event_id": [before, event_id]})
    return item
