"""Sessions (events): fields, queries, public views, create, edit. Lifecycle: events.lifecycle."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, Field
from sqlalchemy import ColumnElement, and_, func, or_
from sqlmodel import Session, col, select

from events import audit, cohosts, hosts, notify, permissions, revisions, seats, series, themes
from events.errors import Conflict, Invalid, NotFound, all_problems
from events.locking import lock_event
from events.models import (
    CohostState,
    Event,
    EventCohost,
    EventHost,
    EventKind,
    EventMaterial,
    EventMode,
    EventRevision,
    EventStatus,
    Moderation,
    Registration,
    RevisionState,
    Role,
    StaffUser,
    Unit,
)
from events.themes import ThemeCodes
from events.timeutil import LOCAL_TZ, as_utc, iso_local, utcnow
from events.units import MAX_ID, MultilineText, Text, clean_text

S = EventStatus

EDITABLE = frozenset({S.draft, S.pending_review, S.published, S.live})
PUBLIC_STATUSES = frozenset({S.published, S.live, S.ended, S.archived, S.cancelled})
MAX_CAPACITY = 100_000
MAX_OFFSET = 1_000_000_000
D = TypeVar("D", bound=date)
F = TypeVar("F", bound="EventFields")
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
    # The plan's themes (events.themes) and the series (events.series); both apply at once,
    # also on a published session: they classify it, the office's review is for its text.
    themes: ThemeCodes | None = None
    series_id: int | None = Field(default=None, ge=1, le=MAX_ID)


class EventCreate(EventFields):
    kind: EventKind
    unit_id: int
    title: Text = Field(min_length=1, max_length=200)
    starts_at: Moment
    ends_at: Moment
    # 0 is "no seat limit" (the contract, which keeps the field optional for its callers);
    # the console's form makes staff choose it explicitly.
    capacity: int = Field(default=0, ge=0, le=MAX_CAPACITY)


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
    theme: str | None = Field(default=None, max_length=40)
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


def may_read(db: Session, viewer: StaffUser | None, event: Event) -> bool:
    """Need-to-know (plan 四(一)): everyone reads published sessions; a draft only its unit, the
    office, a unit invited to co-host it and a host assigned to it."""
    if is_public(event):
        return True
    if viewer is None:
        return False
    if permissions.owns(viewer, event) or permissions.is_assigned_host(db, viewer, event):
        return True
    if viewer.role == Role.editor and viewer.unit_id is not None and event.id is not None:
        row = db.get(EventCohost, (event.id, viewer.unit_id))
        return row is not None and row.state != CohostState.declined
    return False


def get_visible_event(db: Session, event_id: int, viewer: StaffUser | None) -> Event:
    """A session as this viewer may see it: the public sees only published ones, staff what
    they need to know (may_read); anything else is as if it did not exist."""
    event = get_event(db, event_id)
    if not may_read(db, viewer, event):
        raise NotFound("event_not_found", f"no session with id {event_id}")
    return event


def _as_bound(value: datetime | date) -> datetime:
    if isinstance(value, datetime):
        return as_utc(value)
    return as_utc(datetime.combine(value, time.min, tzinfo=LOCAL_TZ))


def list_events(db: Session, query: EventQuery, viewer: StaffUser | None) -> list[Event]:
    stmt = select(Event)
    public = (col(Event.status).in_(PUBLIC_STATUSES), col(Event.published_at).is_not(None))
    if viewer is None:
        stmt = stmt.where(*public)
    elif not permissions.is_admin(viewer):
        readable: list[ColumnElement[bool]] = [and_(*public)]
        if viewer.role == Role.editor and viewer.unit_id is not None:
            invited = select(EventCohost.event_id).where(
                EventCohost.unit_id == viewer.unit_id, EventCohost.state != CohostState.declined)
            readable += [col(Event.unit_id) == viewer.unit_id, col(Event.id).in_(invited)]
        if viewer.role == Role.host:
            readable.append(col(Event.id).in_(
                select(EventHost.event_id).where(EventHost.user_id == viewer.id)))
        stmt = stmt.where(or_(*readable))
    if query.kind:
        stmt = stmt.where(Event.kind == query.kind)
    if query.status:
        stmt = stmt.where(Event.status == query.status)
    if query.unit:
        unit_filter: ColumnElement[bool] = col(Unit.code) == query.unit
        if query.unit.isdecimal() and len(query.unit) < 10:
            unit_filter = or_(unit_filter, col(Unit.id) == int(query.unit))
        unit_ids = select(Unit.id).where(unit_filter)
        cohosted = select(EventCohost.event_id).where(col(EventCohost.unit_id).in_(unit_ids),
                                                      EventCohost.state == CohostState.accepted)
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
    if query.theme:
        stmt = stmt.where(themes.of_theme(themes.require_filter(db, query.theme)))
    stmt = stmt.order_by(col(Event.starts_at), col(Event.id))
    stmt = stmt.offset(query.offset).limit(query.limit)
    return list(db.exec(stmt))


def with_pending_revision(db: Session) -> list[Event]:
    """Sessions whose change waits for review, the longest waiting first."""
    waiting = select(EventRevision.event_id, func.min(EventRevision.submitted_at).label("at")) \
        .where(EventRevision.state == RevisionState.pending) \
        .group_by(col(EventRevision.event_id)).subquery()
    return list(db.exec(select(Event).join(waiting, waiting.c.event_id == Event.id)
                        .where(col(Event.status).in_(revisions.REVIEWED_STATUSES))
                        .order_by(waiting.c.at, col(Event.id))))


def cohost_ids(db: Session, event_ids: list[int], *, accepted_only: bool = True
               ) -> dict[int, list[int]]:
    """The co-hosting units: those that accepted (what the public sees and quotas count), or
    with accepted_only=False every unit invited and not declined (what the editor asked for)."""
    return {event_id: [row.unit_id for row in rows
                       if row.state == CohostState.accepted
                       or (not accepted_only and row.state == CohostState.invited)]
            for event_id, rows in cohosts.rows_of(db, event_ids).items()}


def materials_of(db: Session, event_ids: list[int]) -> dict[int, list[EventMaterial]]:
    out: dict[int, list[EventMaterial]] = {event_id: [] for event_id in event_ids}
    if event_ids:
        rows = db.exec(select(EventMaterial).where(col(EventMaterial.event_id).in_(event_ids))
                       .order_by(col(EventMaterial.position)))
        for row in rows:
            out[row.event_id].append(row)
    return out


def is_over(event: Event, now: datetime | None = None) -> bool:
    """Held and done: ended or archived, or published and past its end (a live one is on air
    until its host ends it). A cancelled session was never held."""
    if event.status in (S.ended, S.archived):
        return True
    return event.status == S.published and (now or utcnow()) >= event.ends_at


def registration_state(event: Event, now: datetime | None = None) -> str:
    """open | not_yet | closed | none (sessions that take no registration)."""
    now = now or utcnow()
    if event.status not in (S.published, S.live) or now >= event.ends_at:
        return "closed"
    if event.registration_opens_at is None and event.registration_closes_at is None:
        return "none"
    if event.registration_opens_at and now < event.registration_opens_at:
        return "not_yet"
    if event.registration_closes_at and now >= event.registration_closes_at:
        return "closed"
    return "open"


def events_public(
    db: Session, events: list[Event], *, staff: bool = False, viewer: StaffUser | None = None
) -> list[dict[str, Any]]:
    """The public view; with staff=True the unit's and the office's view too (review notes,
    the pending revision, co-host answers, hosts), for sessions the viewer (when given) owns;
    other units' sessions show their published version only."""
    ids = [e.id for e in events if e.id is not None]
    counts = seats.counts(db, ids)
    cohosts = cohost_ids(db, ids)
    materials = materials_of(db, ids)
    codes = themes.themes_of(db, ids)
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
            "revised_at": iso_local(event.revised_at),
            "registered_count": registered,
            "waitlist_count": waitlisted,
            "seats_left": max(event.capacity - registered, 0) if event.capacity else None,
            "materials": [{"title": m.title, "url": m.url} for m in materials[event.id]],
            "closed": event.closed_at is not None,
            "minutes": event.minutes if event.closed_at else "",
            "attendee_count": event.attendee_count,
            "themes": codes[event.id],
            "series_id": event.series_id,
        }
        if staff and (viewer is None or permissions.owns(viewer, event)):
            item.update(review_note=event.review_note, missing=missing_fields(event),
                        created_by=event.created_by,
                        created_at=iso_local(event.created_at),
                        updated_at=iso_local(event.updated_at))
            item.update(_internal(db, event))
        out.append(item)
    return out


def event_public(db: Session, event: Event, *, staff: bool = False,
                 viewer: StaffUser | None = None) -> dict[str, Any]:
    return events_public(db, [event], staff=staff, viewer=viewer)[0]


def _internal(db: Session, event: Event) -> dict[str, Any]:
    assert event.id is not None
    pending = revisions.pending_of(db, event.id)
    rejected = revisions.last_rejected(db, event.id)
    live = _reviewed_values(db, event) if pending or rejected else {}
    return {
        "pending_revision": revisions.revision_public(db, pending, live) if pending else None,
        "rejected_revision": revisions.revision_public(db, rejected, live) if rejected else None,
        "cohosts": [cohosts.cohost_public(row)
                    for row in cohosts.rows_of(db, [event.id])[event.id]],
        "hosts": [hosts.host_public(user) for user in hosts.hosts_of(db, event.id)],
    }


# ---- writing ---------------------------------------------------------------------------------

def _snapshot(db: Session, event: Event) -> dict[str, Any]:
    snap: dict[str, Any] = {name: getattr(event, name) for name in SCALAR_FIELDS}
    if event.id is not None:
        snap["cohost_unit_ids"] = sorted(cohost_ids(db, [event.id], accepted_only=False)[event.id])
        snap["materials"] = [[m.title, m.url] for m in materials_of(db, [event.id])[event.id]]
        snap["themes"] = themes.themes_of(db, [event.id])[event.id]
        snap["series_id"] = event.series_id
    return snap


def _check_unit(db: Session, unit_id: int, *, field: str = "unit_id") -> Unit:
    unit = db.get(Unit, unit_id) if 0 < unit_id <= MAX_ID else None
    if unit is None or unit.retired_at is not None:
        raise Invalid("unknown_unit", f"{field}: no active unit with id {unit_id}", field=field)
    return unit


def time_problems(starts: datetime | None, ends: datetime | None, opens: datetime | None,
                  closes: datetime | None) -> list[Invalid]:
    """Every problem of a session's times (UTC), not just the first; a time not given is not
    checked."""
    problems = []
    if starts and ends and ends <= starts:
        problems.append(Invalid("ends_before_start", "ends_at must be after starts_at",
                                field="ends_at"))
    if opens and closes and closes <= opens:
        problems.append(Invalid("registration_window", "registration_closes_at must be after "
                                "registration_opens_at", field="registration_closes_at"))
    elif closes and ends and closes > ends:
        problems.append(Invalid("registration_window", "registration must close before the "
                                "session ends", field="registration_closes_at"))
    return problems


def check_times(event: Event) -> None:
    problems = time_problems(event.starts_at, event.ends_at, event.registration_opens_at,
                             event.registration_closes_at)
    if problems:
        raise all_problems(problems)


# What a session needs before it goes to review and to the public. Online, the room is the
# session's own page (/events/{id}/live), which every online and hybrid session has: nothing
# to fill in. In person (and hybrid), people must find the place.
IN_PERSON_MODES = frozenset({EventMode.in_person, EventMode.hybrid})
COMPLETENESS_FIELDS = frozenset({"summary", "mode", "venue", "address"})


def missing_fields(values: Event | dict[str, Any]) -> list[str]:
    """The fields a session (or its values with a pending change) still lacks, in form order."""
    get = values.get if isinstance(values, dict) else lambda name: getattr(values, name)
    wanted = ["summary"]
    if EventMode(str(get("mode"))) in IN_PERSON_MODES:
        wanted += ["venue", "address"]
    return [name for name in wanted if not str(get(name) or "").strip()]


def require_complete(values: Event | dict[str, Any]) -> None:
    missing = missing_fields(values)
    if missing:
        raise all_problems([Invalid("incomplete", f"before review and publication a session "
                                    f"needs: {', '.join(missing)}", field=name, missing=missing)
                            for name in missing])


def _reviewed_values(db: Session, event: Event) -> dict[str, Any]:
    """The published values of the reviewed fields, as a revision stores them (JSON)."""
    snap = _snapshot(db, event)
    values = {name: getattr(snap[name], "value", snap[name])
              for name in revisions.REVIEWED_FIELDS if name in SCALAR_FIELDS}
    values["cohost_unit_ids"] = snap["cohost_unit_ids"]
    values["materials"] = [{"title": title, "url": url} for title, url in snap["materials"]]
    return values


def _apply_cohosts(db: Session, event: Event, unit_ids: list[int], *, accept: bool) -> None:
    """New co-hosts are invited (accepted at once when `accept`: an admin names them); those
    still wanted keep their answer, a declined one is invited again; the rest are removed."""
    assert event.id is not None
    wanted = set(unit_ids) - {event.unit_id}
    for unit_id in wanted:
        _check_unit(db, unit_id, field="cohost_unit_ids")
    existing = {row.unit_id: row for row in cohosts.rows_of(db, [event.id])[event.id]}
    for unit_id, row in existing.items():
        if unit_id not in wanted:
            db.delete(row)
        elif row.state == CohostState.declined or (accept and row.state == CohostState.invited):
            row.state = CohostState.accepted if accept else CohostState.invited
            db.add(row)
    db.flush()
    state = CohostState.accepted if accept else CohostState.invited
    for unit_id in sorted(wanted - existing.keys()):
        db.add(EventCohost(event_id=event.id, unit_id=unit_id, state=state,
                           responded_at=utcnow() if accept else None))


def _apply(db: Session, event: Event, fields: EventFields, *,
           accept_cohosts: bool = False) -> None:
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
        _apply_cohosts(db, event, fields.cohost_unit_ids, accept=accept_cohosts)
    if fields.materials is not None:
        for row in db.exec(select(EventMaterial).where(EventMaterial.event_id == event.id)):
            db.delete(row)
        db.flush()
        for position, item in enumerate(fields.materials):
            db.add(EventMaterial(event_id=event.id, title=item.title, url=item.url,
                                 position=position))
    if "series_id" in fields.model_fields_set:
        event.series_id = fields.series_id  # checked by _classified
        db.add(event)
    if fields.themes is not None:
        themes.set_themes(db, event, fields.themes)
    db.flush()


def _classified(db: Session, actor: StaffUser, event: Event | None, data: F,
                unit_id: int) -> F:
    """`data` with its themes checked (duplicates dropped) and its series placement checked
    (events.series.placement_of); 422 field themes or series_id."""
    update: dict[str, Any] = {}
    if data.themes is not None:
        kept = themes.themes_of(db, [event.id])[event.id] if event and event.id else []
        update["themes"] = themes.checked_codes(db, data.themes, kept=kept)
    if "series_id" in data.model_fields_set:
        series.placement_of(db, actor, event, data.series_id, unit_id=unit_id)
    return data.model_copy(update=update) if update else data


def create_event(db: Session, actor: StaffUser, data: EventCreate) -> Event:
    _check_unit(db, data.unit_id)
    permissions.require_unit_editor(actor, data.unit_id)
    data = _classified(db, actor, None, data, data.unit_id)
    event = Event(kind=data.kind, unit_id=data.unit_id, title=data.title,
                  starts_at=as_utc(data.starts_at), ends_at=as_utc(data.ends_at),
                  created_by=actor.id)
    _apply(db, event, data, accept_cohosts=permissions.is_admin(actor))
    audit.record(db, actor, "event.create", "event", event.id, unit_id=event.unit_id,
                 changes=audit.diff({}, _snapshot(db, event)))
    return event


def _hold_for_review(db: Session, actor: StaffUser, event: Event, data: EventUpdate
                     ) -> EventUpdate:
    """An editor's change to a published session: what the public reads goes into the pending
    revision, the rest (operational) is returned to apply now; the times move by postponing."""
    for name in ("starts_at", "ends_at"):
        value = getattr(data, name)
        if name in data.model_fields_set and (value is None
                                              or as_utc(value) != getattr(event, name)):
            raise Conflict("postpone_required", "a published session's time changes by "
                           "postponing it, with a reason the public sees", field=name)
    reviewed = data.model_fields_set & set(revisions.REVIEWED_FIELDS)
    if reviewed:
        proposed = data.model_dump(mode="json", include=reviewed)
        if proposed.get("cohost_unit_ids") is not None:
            for unit_id in proposed["cohost_unit_ids"]:
                _check_unit(db, unit_id, field="cohost_unit_ids")
            proposed["cohost_unit_ids"] = sorted(set(proposed["cohost_unit_ids"])
                                                 - {event.unit_id})
        for name in ("kind", "title", "mode"):
            if name in proposed and proposed[name] is None:
                raise Invalid("required", f"{name} may not be empty", field=name)
        for name in ("summary", "venue", "address"):
            if name in proposed and proposed[name] is None:
                proposed[name] = ""
        if "materials" in proposed and proposed["materials"] is None:
            proposed["materials"] = []
        if "cohost_unit_ids" in proposed and proposed["cohost_unit_ids"] is None:
            proposed["cohost_unit_ids"] = []
        published = _reviewed_values(db, event)
        if proposed.keys() & COMPLETENESS_FIELDS:
            require_complete({**published, **proposed})
        revisions.propose(db, actor, event, proposed, published)
    return EventUpdate.model_validate(data.model_dump(exclude_unset=True, exclude=reviewed))


def update_event(db: Session, actor: StaffUser, event_id: int, data: EventUpdate) -> Event:
    """Edits a session. After publication an editor's change to what the public reads waits
    for review (events.revisions); admins' edits apply at once, and the public sees when."""
    return _update(db, actor, event_id, data)[0]


def change_capacity(db: Session, actor: StaffUser, event_id: int,
                    capacity: int) -> list[Registration]:
    """Sets the seats (0: no limit; never below who holds one) and returns who moved up from
    the waitlist because of it, in the waitlist's order; each is told."""
    return _update(db, actor, event_id, EventUpdate(capacity=capacity))[1]


def _update(db: Session, actor: StaffUser, event_id: int,
            data: EventUpdate) -> tuple[Event, list[Registration]]:
    event = get_visible_event(db, event_id, actor)  # another unit's draft: 404, not 403
    permissions.require_owner(actor, event)
    if event.status not in EDITABLE:
        raise Conflict("not_editable", f"a session that is {event.status.value} cannot be edited")
    if data.capacity is not None:
        # Seats are scarce: re-read under the lock (taken before any write) and never drop
        # below who holds one.
        event = lock_event(db, event_id)
        confirmed = seats.confirmed_count(db, event_id)
        if data.capacity != 0 and data.capacity < confirmed:
            raise Conflict("capacity_below_confirmed",
                           f"{confirmed} people hold a seat; capacity cannot go below that",
                           confirmed=confirmed)
    if revisions.is_reviewed(event) and not permissions.is_admin(actor):
        data = _hold_for_review(db, actor, event, data)
    if data.unit_id is not None and data.unit_id != event.unit_id:
        _check_unit(db, data.unit_id)
        permissions.require_unit_editor(actor, data.unit_id)
    data = _classified(db, actor, event, data, data.unit_id or event.unit_id)
    before = _snapshot(db, event)
    _apply(db, event, data, accept_cohosts=permissions.is_admin(actor))
    if revisions.is_reviewed(event) and data.model_fields_set & COMPLETENESS_FIELDS:
        require_complete(event)  # what the public reads stays complete
    event.updated_at = utcnow()
    changes = audit.diff(before, _snapshot(db, event))
    if changes:
        audit.record(db, actor, "event.update", "event", event.id, unit_id=event.unit_id,
                     changes=changes)
    return event, _after_change(db, event, changes)


def _after_change(db: Session, event: Event, changes: dict[str, Any]) -> list[Registration]:
    """Tells who must know of a change; returns who moved up from the waitlist."""
    if revisions.is_reviewed(event) and changes.keys() & set(revisions.REVIEWED_FIELDS):
        event.revised_at = event.updated_at
        db.add(event)
        db.flush()
    promoted = seats.promote_waitlist(db, event) if "capacity" in changes else []
    for row in promoted:
        notify.promoted(db, event, row)
    moved = {"starts_at", "ends_at", "venue", "address", "mode"} & changes.keys()
    if moved and is_public(event):
        notify.event_changed(db, event, "时间或地点调整")
    return promoted


def approve_revision(db: Session, actor: StaffUser, event_id: int,
                     seen_submitted_at: str | None = None) -> Event:
    """The office approves the pending revision: the public sees it now (revised_at), the
    audit log records the diff. Co-hosts it adds are invited, not yet accepted.

    `seen_submitted_at` is the revision's `submitted_at` as the office read it: a revision the
    unit changed since then is not approved unseen (409 changed_since_viewed)."""
    permissions.require_admin(actor)
    event = get_event(db, event_id)
    if event.status not in EDITABLE:
        raise Conflict("not_editable", f"a session that is {event.status.value} cannot be edited")
    revision = revisions.require_pending(db, event)
    if seen_submitted_at is not None and seen_submitted_at != iso_local(revision.submitted_at):
        raise Conflict("changed_since_viewed", "the unit changed this revision after you read "
                       "it: read it again before approving")
    data = EventUpdate.model_validate(revisions.fields_of(revision))
    before = _snapshot(db, event)
    _apply(db, event, data)
    if data.model_fields_set & COMPLETENESS_FIELDS:
        require_complete(event)
    event.updated_at = utcnow()
    changes = audit.diff(before, _snapshot(db, event))
    revisions.decide(revision, actor, RevisionState.approved)
    db.add(revision)
    submitter = db.get(StaffUser, revision.submitted_by) if revision.submitted_by else None
    audit.record(db, actor, "event.revision_approved", "event", event.id, unit_id=event.unit_id,
                 changes={**changes, "submitted_by": submitter.username if submitter else None})
    _after_change(db, event, changes)
    return event


def reject_revision(db: Session, actor: StaffUser, event_id: int, reason: str) -> Event:
    """The office rejects the pending revision with a reason the unit reads; nothing changes
    for the public."""
    permissions.require_admin(actor)
    event = get_event(db, event_id)
    revision = revisions.require_pending(db, event)
    reason = clean_text(reason, "reason", multiline=True).strip()
    if not reason:
        raise Invalid("reason_required", "say what the unit must fix", field="reason")
    revisions.decide(revision, actor, RevisionState.rejected, reason)
    db.add(revision)
    db.flush()
    audit.record(db, actor, "event.revision_rejected", "event", event.id, unit_id=event.unit_id,
                 changes={"reason": reason})
    return event
