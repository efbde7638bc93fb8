"""Sessions (events): fields, queries, public views, create, edit. Lifecycle: events.lifecycle."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, Field
from sqlalchemy import ColumnElement, or_
from sqlmodel import Session, col, select

from events import audit, notify, permissions, seats
from events.errors import Conflict, Invalid, NotFound
from events.locking import lock_event
from events.models import (
    Event,
    EventCohost,
    EventKind,
    EventMaterial,
    EventMode,
    EventStatus,
    Moderation,
    StaffUser,
    Unit,
)
from events.timeutil import LOCAL_TZ, as_utc, iso_local
from events.units import MAX_ID, MultilineText, Text
from server.db import utcnow

S = EventStatus

EDITABLE = frozenset({S.draft, S.pending_review, S.published, S.live})
PUBLIC_STATUSES = frozenset({S.published, S.live, S.ended, S.archived, S.cancelled})
MAX_CAPACITY = 100_000
MAX_OFFSET = 1_000_000_000
D = TypeVar("D", bound=date)
# Sessions from the first plans to far ahead; outside this a time is a typo (and overflows UTC).
EARLIEST_YEAR, LATEST_YEAR = 1990, 2099


def plausible_date(value: D) -> D:
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValueError(f"expected a date between {EARLIEST_YEAR} and {LATEST_YEAR}")
    return value


Moment = Annotated[datetime, AfterValidator(plausible_date)]


def _http_url(value: str) -> str:
    if not value.lower().startswith(("https://", "http://")):
        raise ValueError("a link must start with http:// or https://")
    return value


class MaterialIn(BaseModel):
    title: Text = Field(min_length=1, max_length=200)
    url: Annotated[Text, Field(min_length=8, max_length=1000), AfterValidator(_http_url)]


class EventFields(BaseModel):
    """Fields shared by create and update; every one optional here."""

    title: Text | None = Field(default=None, min_length=1, max_length=200)
    summary: MultilineText | None = Field(default=None, max_length=20_000)
    starts_at: Moment | None = None
    ends_at: Moment | None = None
    mode: EventMode | None = None
    venue: Text | None = Field(default=None, max_length=200)
    address: Text | None = Field(default=None, max_length=300)
    capacity: int | None = Field(default=None, ge=0, le=MAX_CAPACITY)
    registration_opens_at: Moment | None = None
    registration_closes_at: Moment | None = None
    moderation: Moderation | None = None
    premiere_at: Moment | None = None
    cohost_unit_ids: list[int] | None = Field(default=None, max_length=20)
    materials: list[MaterialIn] | None = Field(default=None, max_length=30)


class EventCreate(EventFields):
    kind: EventKind
    unit_id: int
    title: Text = Field(min_length=1, max_length=200)
    starts_at: Moment
    ends_at: Moment


class EventUpdate(EventFields):
    kind: EventKind | None = None
    unit_id: int | None = None


class EventQuery(BaseModel):
    kind: EventKind | None = None
    unit: Text | None = Field(default=None, max_length=40)
    status: EventStatus | None = None
    start: Annotated[datetime | date, AfterValidator(plausible_date)] | None = None
    end: Annotated[datetime | date, AfterValidator(plausible_date)] | None = None
    q: Text | None = Field(default=None, max_length=100)
    limit: int = Field(default=200, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)


TIME_FIELDS = ("starts_at", "ends_at", "registration_opens_at", "registration_closes_at",
               "premiere_at")
SCALAR_FIELDS = ("kind", "unit_id", "title", "summary", "mode", "venue", "address", "capacity",
                 "moderation", *TIME_FIELDS)


# ---- reading ---------------------------------------------------------------------------------

def is_public(event: Event) -> bool:
    return event.status in PUBLIC_STATUSES and event.published_at is not None


def get_event(db: Session, event_id: int) -> Event:
    event = db.get(Event, event_id) if 0 < event_id <= MAX_ID else None
    if event is None:
        raise NotFound("event_not_found", f"no session with id {event_id}")
    return event


def get_visible_event(db: Session, event_id: int, viewer: StaffUser | None) -> Event:
    """A session as this viewer may see it: the public sees only published ones."""
    event = get_event(db, event_id)
    if viewer is None and not is_public(event):
        raise NotFound("event_not_found", f"no session with id {event_id}")
    return event


def _as_bound(value: datetime | date) -> datetime:
    if isinstance(value, datetime):
        return as_utc(value)
    return as_utc(datetime.combine(value, time.min, tzinfo=LOCAL_TZ))


def list_events(db: Session, query: EventQuery, viewer: StaffUser | None) -> list[Event]:
    stmt = select(Event)
    if viewer is None:
        stmt = stmt.where(col(Event.status).in_(PUBLIC_STATUSES),
                          col(Event.published_at).is_not(None))
    if query.kind:
        stmt = stmt.where(Event.kind == query.kind)
    if query.status:
        stmt = stmt.where(Event.status == query.status)
    if query.unit:
        unit_filter: ColumnElement[bool] = col(Unit.code) == query.unit
        if query.unit.isdecimal() and len(query.unit) < 10:
            unit_filter = or_(unit_filter, col(Unit.id) == int(query.unit))
        unit_ids = select(Unit.id).where(unit_filter)
        cohosted = select(EventCohost.event_id).where(col(EventCohost.unit_id).in_(unit_ids))
        stmt = stmt.where(or_(col(Event.unit_id).in_(unit_ids), col(Event.id).in_(cohosted)))
    if query.start is not None:
        stmt = stmt.where(col(Event.ends_at) >= _as_bound(query.start))
    if query.end is not None:
        end = query.end
        bound = _as_bound(end) if isinstance(end, datetime) else _as_bound(end + timedelta(days=1))
        stmt = stmt.where(col(Event.starts_at) < bound)
    if query.q:
        # autoescape: a '%' or '_' typed by a citizen is text, not a wildcard.
        needle = query.q.strip()
        stmt = stmt.where(or_(*(col(field).icontains(needle, autoescape=True)
                                for field in (Event.title, Event.summary, Event.venue))))
    stmt = stmt.order_by(col(Event.starts_at), col(Event.id))
    stmt = stmt.offset(query.offset).limit(query.limit)
    return list(db.exec(stmt))


def cohost_ids(db: Session, event_ids: list[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {event_id: [] for event_id in event_ids}
    if event_ids:
        rows = db.exec(select(EventCohost).where(col(EventCohost.event_id).in_(event_ids)))
        for row in rows:
            out[row.event_id].append(row.unit_id)
    return out


def materials_of(db: Session, event_ids: list[int]) -> dict[int, list[EventMaterial]]:
    out: dict[int, list[EventMaterial]] = {event_id: [] for event_id in event_ids}
    if event_ids:
        rows = db.exec(select(EventMaterial).where(col(EventMaterial.event_id).in_(event_ids))
                       .order_by(col(EventMaterial.position)))
        for row in rows:
            out[row.event_id].append(row)
    return out


def registration_state(event: Event, now: datetime | None = None) -> str:
    """open | not_yet | closed | none (sessions that take no registration)."""
    now = now or utcnow()
    if event.status not in (S.published, S.live):
        return "closed"
    if event.registration_opens_at is None and event.registration_closes_at is None:
        return "none"
    if event.registration_opens_at and now < event.registration_opens_at:
        return "not_yet"
    if event.registration_closes_at and now >= event.registration_closes_at:
        return "closed"
    return "open"


def events_public(
    db: Session, events: list[Event], *, staff: bool = False
) -> list[dict[str, Any]]:
    ids = [e.id for e in events if e.id is not None]
    counts = seats.counts(db, ids)
    cohosts = cohost_ids(db, ids)
    materials = materials_of(db, ids)
    unit_ids = {e.unit_id for e in events} | {u for ids_ in cohosts.values() for u in ids_}
    units = {u.id: u for u in db.exec(select(Unit).where(col(Unit.id).in_(unit_ids)))}
    out = []
    for event in events:
        assert event.id is not None
        registered, waitlisted = counts[event.id]
        unit = units[event.unit_id]
        item: dict[str, Any] = {
            "id": event.id,
            "kind": event.kind.value,
            "unit_id": event.unit_id,
            "unit": {"id": unit.id, "code": unit.code, "name": unit.name,
                     "category": unit.category.value},
            "cohost_unit_ids": cohosts[event.id],
            "title": event.title,
            "summary": event.summary,
            "starts_at": iso_local(event.starts_at),
            "ends_at": iso_local(event.ends_at),
            "mode": event.mode.value,
            "venue": event.venue,
            "address": event.address,
            "capacity": event.capacity,
            "registration_opens_at": iso_local(event.registration_opens_at),
            "registration_closes_at": iso_local(event.registration_closes_at),
            "registration": registration_state(event),
            "moderation": event.moderation.value,
            "premiere_at": iso_local(event.premiere_at),
            "status": event.status.value,
            "public_notice": event.public_notice,
            "postponed_from": iso_local(event.postponed_from),
            "published_at": iso_local(event.published_at),
            "registered_count": registered,
            "waitlist_count": waitlisted,
            "seats_left": max(event.capacity - registered, 0) if event.capacity else None,
            "materials": [{"title": m.title, "url": m.url} for m in materials[event.id]],
            "closed": event.closed_at is not None,
            "minutes": event.minutes if event.closed_at else "",
            "attendee_count": event.attendee_count,
        }
        if staff:
            item.update(review_note=event.review_note, created_by=event.created_by,
                        created_at=iso_local(event.created_at),
                        updated_at=iso_local(event.updated_at))
        out.append(item)
    return out


def event_public(db: Session, event: Event, *, staff: bool = False) -> dict[str, Any]:
    return events_public(db, [event], staff=staff)[0]


# ---- writing ---------------------------------------------------------------------------------

def _snapshot(db: Session, event: Event) -> dict[str, Any]:
    snap: dict[str, Any] = {name: getattr(event, name) for name in SCALAR_FIELDS}
    if event.id is not None:
        snap["cohost_unit_ids"] = sorted(cohost_ids(db, [event.id])[event.id])
        snap["materials"] = [[m.title, m.url] for m in materials_of(db, [event.id])[event.id]]
    return snap


def _check_unit(db: Session, unit_id: int, *, field: str = "unit_id") -> Unit:
    unit = db.get(Unit, unit_id) if 0 < unit_id <= MAX_ID else None
    if unit is None or unit.retired_at is not None:
        raise Invalid("unknown_unit", f"{field}: no active unit with id {unit_id}", field=field)
    return unit


def check_times(event: Event) -> None:
    if event.ends_at <= event.starts_at:
        raise Invalid("ends_before_start", "ends_at must be after starts_at", field="ends_at")
    opens, closes = event.registration_opens_at, event.registration_closes_at
    if opens and closes and closes <= opens:
        raise Invalid("registration_window", "registration_closes_at must be after "
                      "registration_opens_at", field="registration_closes_at")
    if closes and closes > event.ends_at:
        raise Invalid("registration_window", "registration must close before the session ends",
                      field="registration_closes_at")


def _apply(db: Session, event: Event, fields: EventFields) -> None:
    values = fields.model_dump(exclude_unset=True)
    for name in SCALAR_FIELDS:
        if name not in values:
            continue
        value = values[name]
        if name in TIME_FIELDS and value is not None:
            value = as_utc(value)
        if value is None and name in ("kind", "unit_id", "title", "starts_at", "ends_at", "mode",
                                      "moderation", "capacity"):
            raise Invalid("required", f"{name} may not be empty", field=name)
        if value is None and name in ("summary", "venue", "address"):
            value = ""
        setattr(event, name, value)
    check_times(event)
    db.add(event)
    db.flush()
    assert event.id is not None
    if fields.cohost_unit_ids is not None:
        wanted = set(fields.cohost_unit_ids) - {event.unit_id}
        for unit_id in wanted:
            _check_unit(db, unit_id, field="cohost_unit_ids")
        for cohost in db.exec(select(EventCohost).where(EventCohost.event_id == event.id)):
            db.delete(cohost)
        db.flush()
        for unit_id in sorted(wanted):
            db.add(EventCohost(event_id=event.id, unit_id=unit_id))
    if fields.materials is not None:
        for row in db.exec(select(EventMaterial).where(EventMaterial.event_id == event.id)):
            db.delete(row)
        db.flush()
        for position, item in enumerate(fields.materials):
            db.add(EventMaterial(event_id=event.id, title=item.title, url=item.url,
                                 position=position))
    db.flush()


def create_event(db: Session, actor: StaffUser, data: EventCreate) -> Event:
    _check_unit(db, data.unit_id)
    permissions.require_unit_editor(actor, data.unit_id)
    event = Event(kind=data.kind, unit_id=data.unit_id, title=data.title,
                  starts_at=as_utc(data.starts_at), ends_at=as_utc(data.ends_at),
                  created_by=actor.id)
    _apply(db, event, data)
    audit.record(db, actor, "event.create", "event", event.id, unit_id=event.unit_id,
                 changes=audit.diff({}, _snapshot(db, event)))
    return event


def update_event(db: Session, actor: StaffUser, event_id: int, data: EventUpdate) -> Event:
    event = get_event(db, event_id)
    permissions.require_owner(actor, event)
    if event.status not in EDITABLE:
        raise Conflict("not_editable", f"a session that is {event.status.value} cannot be edited")
    if data.unit_id is not None and data.unit_id != event.unit_id:
        _check_unit(db, data.unit_id)
        permissions.require_unit_editor(actor, data.unit_id)
    if data.capacity is not None:
        # Seats are scarce: re-read under the lock and never drop below who holds one.
        event = lock_event(db, event_id)
        confirmed = seats.confirmed_count(db, event_id)
        if data.capacity != 0 and data.capacity < confirmed:
            raise Conflict("capacity_below_confirmed",
                           f"{confirmed} people hold a seat; capacity cannot go below that",
                           confirmed=confirmed)
    before = _snapshot(db, event)
    _apply(db, event, data)
    event.updated_at = utcnow()
    changes = audit.diff(before, _snapshot(db, event))
    if changes:
        audit.record(db, actor, "event.update", "event", event.id, unit_id=event.unit_id,
                     changes=changes)
    if "capacity" in changes:
        for promoted in seats.promote_waitlist(db, event):
            notify.promoted(db, event, promoted)
    moved = {"starts_at", "ends_at", "venue", "address", "mode"} & changes.keys()
    if moved and is_public(event):
        notify.event_changed(db, event, "时间或地点调整")
    return event
