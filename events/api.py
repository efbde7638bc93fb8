"""HTTP for sessions: parse, call the domain, answer; the request boundary commits once."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field, ValidationError

from events import audit, cohosts, hosts, lifecycle, permissions, revisions, schemas, sessions
from events.errors import Forbidden, Invalid
from events.models import EventKind, EventStatus, Role
from events.schemas import (
    AuditEntryPublic,
    CohostPublic,
    EventForStaff,
    EventPublic,
    HostPublic,
    answer,
    answers,
    event_answer,
)
from events.units import MultilineText, Text
from server.deps import JSONRoute, OptionalStaffDep, SessionDep, StaffDep

router = APIRouter(prefix="/api", route_class=JSONRoute)
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]


class StatusChange(BaseModel):
    status: EventStatus
    reason: MultilineText = Field(default="", max_length=500)


class Postponement(BaseModel):
    starts_at: sessions.Moment
    ends_at: sessions.Moment
    reason: MultilineText = Field(min_length=1, max_length=500)


class Rejection(BaseModel):
    reason: Text = Field(min_length=1, max_length=500)


class HostAssignment(BaseModel):
    user_id: int = Field(ge=1, le=2**31 - 1)


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
    theme: Annotated[str | None, Query(max_length=40, description=(
        "a theme's code (GET /api/themes); an unknown code is 422 unknown_theme"))] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0, le=sessions.MAX_OFFSET)] = 0,
) -> list[EventPublic | EventForStaff]:
    try:
        query = sessions.EventQuery(kind=kind, unit=unit, status=status,
                                    start=_date_or_datetime(from_, "from"),
                                    end=_date_or_datetime(to, "to"), q=q, theme=theme or None,
                                    limit=limit, offset=offset)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = {"start": "from", "end": "to"}.get(str(first["loc"][0]), str(first["loc"][0]))
        raise Invalid("invalid", f"{name}: {first['msg']}", field=name) from exc
    found = sessions.list_events(db, query, viewer)
    return [event_answer(item)
            for item in sessions.events_public(db, found, staff=viewer is not None,
                                               viewer=viewer)]


@router.post("/events", status_code=201)
def create_event(body: sessions.EventCreate, db: SessionDep, user: StaffDep) -> EventForStaff:
    event = sessions.create_event(db, user, body)
    return answer(EventForStaff, sessions.event_public(db, event, staff=True))


@router.get("/events/{event_id}")
def get_event(event_id: int, db: SessionDep,
              viewer: OptionalStaffDep) -> EventPublic | EventForStaff:
    event = sessions.get_visible_event(db, event_id, viewer)
    return event_answer(sessions.event_public(db, event, staff=viewer is not None,
                                              viewer=viewer))


@router.patch("/events/{event_id}", responses={
    202: {"model": EventForStaff,
          "description": "The change waits for the office's review: the published version "
                         "and `pending_revision`"},
    409: {"description": "`not_editable`, `postpone_required`, `capacity_below_confirmed`"}})
def update_event(
    event_id: int, body: sessions.EventUpdate, db: SessionDep, user: StaffDep,
    response: Response,
) -> EventForStaff:
    """200 when the change is applied; 202 when (part of) it waits for the office's review:
    the answer then shows the published version and `pending_revision`."""
    event = sessions.update_event(db, user, event_id, body)
    held = not permissions.is_admin(user) and revisions.is_reviewed(event) \
        and bool(body.model_fields_set & set(revisions.REVIEWED_FIELDS)) \
        and revisions.pending_of(db, event_id) is not None
    if held:
        response.status_code = 202
    return answer(EventForStaff, sessions.event_public(db, event, staff=True))


@router.get("/revisions")
def pending_revisions(db: SessionDep, user: StaffDep) -> list[EventForStaff]:
    """The office's queue of changes to published sessions, oldest first."""
    permissions.require_admin(user)
    return answers(EventForStaff,
                   sessions.events_public(db, sessions.with_pending_revision(db), staff=True))


class Approval(BaseModel):
    # The pending revision's submitted_at as the reviewer read it: a later change is not
    # approved unseen (409 changed_since_viewed).
    submitted_at: str | None = Field(default=None, max_length=40)


@router.post("/events/{event_id}/revision/approve", responses={
    409: {"description": "`no_pending_revision`, `changed_since_viewed`, `not_editable`"}})
def approve_revision(event_id: Id, db: SessionDep, user: StaffDep,
                     body: Approval | None = None) -> EventForStaff:
    event = sessions.approve_revision(db, user, event_id,
                                      body.submitted_at if body is not None else None)
    return answer(EventForStaff, sessions.event_public(db, event, staff=True))


@router.post("/events/{event_id}/revision/reject",
             responses={409: {"description": "`no_pending_revision`"}})
def reject_revision(event_id: Id, body: Rejection, db: SessionDep,
                    user: StaffDep) -> EventForStaff:
    event = sessions.reject_revision(db, user, event_id, body.reason)
    return answer(EventForStaff, sessions.event_public(db, event, staff=True))


@router.post("/events/{event_id}/cohosts/{unit_id}/{answer}",
             responses={409: {"description": "`cohost_declined`"}})
def answer_cohosting(event_id: Id, unit_id: Id, answer: str, db: SessionDep,
                     user: StaffDep) -> CohostPublic:
    """The invited unit's editor (or an admin): `accept` or `decline`."""
    if answer not in ("accept", "decline"):
        raise Invalid("invalid", "answer: expected accept or decline", field="answer")
    event = sessions.get_visible_event(db, event_id, user)
    row = cohosts.respond(db, user, event, unit_id, answer == "accept")
    return schemas.answer(CohostPublic, cohosts.cohost_public(row))  # `answer`: the path's


@router.get("/hosts")
def host_accounts(db: SessionDep, user: StaffDep) -> list[HostPublic]:
    """The host accounts a unit may assign to its sessions."""
    if user.role == Role.host:
        raise Forbidden("forbidden", "only units and the office assign hosts")
    return answers(HostPublic, [hosts.host_public(host) for host in hosts.host_accounts(db)])


@router.get("/events/{event_id}/hosts")
def event_hosts(event_id: Id, db: SessionDep, user: StaffDep) -> list[HostPublic]:
    event = sessions.get_visible_event(db, event_id, user)
    permissions.require_owner(user, event)
    return answers(HostPublic, [hosts.host_public(host) for host in hosts.hosts_of(db, event_id)])


@router.post("/events/{event_id}/hosts", status_code=201)
def assign_host(event_id: Id, body: HostAssignment, db: SessionDep,
                user: StaffDep) -> HostPublic:
    host = hosts.assign(db, user, sessions.get_visible_event(db, event_id, user), body.user_id)
    return answer(HostPublic, hosts.host_public(host))


@router.delete("/events/{event_id}/hosts/{user_id}", status_code=204)
def unassign_host(event_id: Id, user_id: Id, db: SessionDep, user: StaffDep) -> Response:
    hosts.unassign(db, user, sessions.get_visible_event(db, event_id, user), user_id)
    return Response(status_code=204)


@router.post("/events/{event_id}/status",
             responses={409: {"description": "`illegal_transition`, `not_started`"}})
def change_status(
    event_id: int, body: StatusChange, db: SessionDep, user: StaffDep
) -> EventForStaff:
    event = lifecycle.change_status(db, user, event_id, body.status, body.reason)
    return answer(EventForStaff, sessions.event_public(db, event, staff=True))


@router.post("/events/{event_id}/postpone",
             responses={409: {"description": "`not_postponable`"}})
def postpone(event_id: int, body: Postponement, db: SessionDep, user: StaffDep) -> EventForStaff:
    event = lifecycle.postpone(db, user, event_id, body.starts_at, body.ends_at, body.reason)
    return answer(EventForStaff, sessions.event_public(db, event, staff=True))


@router.post("/events/{event_id}/close", responses={
    409: {"description": "`illegal_transition`, `not_started`, `already_closed`"}})
def close_event(event_id: int, body: CloseOut, db: SessionDep, user: StaffDep) -> EventForStaff:
    event = lifecycle.close_event(db, user, event_id, body.minutes, body.attendee_count,
                                  body.attendance_reason)
    return answer(EventForStaff, sessions.event_public(db, event, staff=True))


@router.get("/events/{event_id}/audit")
def event_audit(event_id: int, db: SessionDep, user: StaffDep) -> list[AuditEntryPublic]:
    event = sessions.get_visible_event(db, event_id, user)
    permissions.require_owner(user, event)
    return answers(AuditEntryPublic, [
        audit.entry_public(e) for e in audit.entries(db, entity="event", entity_id=event_id)])


@router.get("/audit")
def audit_log(
    db: SessionDep,
    user: StaffDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0, le=sessions.MAX_OFFSET)] = 0,
) -> list[AuditEntryPublic]:
    permissions.require_admin(user)
    return answers(AuditEntryPublic,
                   [audit.entry_public(e) for e in audit.entries(db, limit=limit, offset=offset)])
