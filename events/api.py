"""HTTP for sessions: parse, call the domain, commit once, answer."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field, ValidationError

from events import audit, lifecycle, permissions, sessions
from events.errors import Invalid
from events.models import EventKind, EventStatus
from events.units import MultilineText
from server.deps import JSONRoute, OptionalStaffDep, SessionDep, StaffDep

router = APIRouter(prefix="/api", route_class=JSONRoute)


class StatusChange(BaseModel):
    status: EventStatus
    reason: MultilineText = Field(default="", max_length=500)


class Postponement(BaseModel):
    starts_at: sessions.Moment
    ends_at: sessions.Moment
    reason: MultilineText = Field(min_length=1, max_length=500)


class CloseOut(BaseModel):
    minutes: MultilineText = Field(min_length=1, max_length=50_000)
    attendee_count: int | None = Field(default=None, ge=0, le=1_000_000)
    # Required when attendee_count differs from the check-in count (422 reason_required).
    attendance_reason: MultilineText = Field(default="", max_length=500)


def _date_or_datetime(value: str | None, name: str) -> datetime | date | None:
    if value is None or value == "":
        return None
    try:
        return datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    except ValueError as exc:
        raise Invalid("invalid", f"{name}: expected a date (YYYY-MM-DD) or an ISO 8601 time",
                      field=name) from exc


@router.get("/events")
def list_events(
    db: SessionDep,
    viewer: OptionalStaffDep,
    response: Response,
    kind: EventKind | None = None,
    unit: Annotated[str | None, Query(max_length=40)] = None,
    status: EventStatus | None = None,
    from_: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    to: Annotated[str | None, Query(max_length=40)] = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0, le=sessions.MAX_OFFSET)] = 0,
) -> list[dict[str, Any]]:
    try:
        query = sessions.EventQuery(kind=kind, unit=unit, status=status,
                                    start=_date_or_datetime(from_, "from"),
                                    end=_date_or_datetime(to, "to"), q=q, limit=limit,
                                    offset=offset)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = {"start": "from", "end": "to"}.get(str(first["loc"][0]), str(first["loc"][0]))
        raise Invalid("invalid", f"{name}: {first['msg']}", field=name) from exc
    found = sessions.list_events(db, query, viewer)
    return sessions.events_public(db, found, staff=viewer is not None)


@router.post("/events", status_code=201)
def create_event(body: sessions.EventCreate, db: SessionDep, user: StaffDep) -> dict[str, Any]:
    event = sessions.create_event(db, user, body)
    db.commit()
    return sessions.event_public(db, event, staff=True)


@router.get("/events/{event_id}")
def get_event(event_id: int, db: SessionDep, viewer: OptionalStaffDep) -> dict[str, Any]:
    event = sessions.get_visible_event(db, event_id, viewer)
    return sessions.event_public(db, event, staff=viewer is not None)


@router.patch("/events/{event_id}")
def update_event(
    event_id: int, body: sessions.EventUpdate, db: SessionDep, user: StaffDep
) -> dict[str, Any]:
    event = sessions.update_event(db, user, event_id, body)
    db.commit()
    return sessions.event_public(db, event, staff=True)


@router.post("/events/{event_id}/status")
def change_status(
    event_id: int, body: StatusChange, db: SessionDep, user: StaffDep
) -> dict[str, Any]:
    event = lifecycle.change_status(db, user, event_id, body.status, body.reason)
    db.commit()
    return sessions.event_public(db, event, staff=True)


@router.post("/events/{event_id}/postpone")
def postpone(event_id: int, body: Postponement, db: SessionDep, user: StaffDep) -> dict[str, Any]:
    event = lifecycle.postpone(db, user, event_id, body.starts_at, body.ends_at, body.reason)
    db.commit()
    return sessions.event_public(db, event, staff=True)


@router.post("/events/{event_id}/close")
def close_event(event_id: int, body: CloseOut, db: SessionDep, user: StaffDep) -> dict[str, Any]:
    event = lifecycle.close_event(db, user, event_id, body.minutes, body.attendee_count,
                                  body.attendance_reason)
    db.commit()
    return sessions.event_public(db, event, staff=True)


@router.get("/events/{event_id}/audit")
def event_audit(event_id: int, db: SessionDep, user: StaffDep) -> list[dict[str, Any]]:
    event = sessions.get_event(db, event_id)
    permissions.require_owner(user, event)
    return [audit.entry_public(e) for e in audit.entries(db, entity="event", entity_id=event_id)]


@router.get("/audit")
def audit_log(
    db: SessionDep,
    user: StaffDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0, le=sessions.MAX_OFFSET)] = 0,
) -> list[dict[str, Any]]:
    permissions.require_admin(user)
    return [audit.entry_public(e) for e in audit.entries(db, limit=limit, offset=offset)]
