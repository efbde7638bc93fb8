"""HTTP for registrations, tickets, check-in and the staff's registration lists."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, Field
from sqlmodel import col, select

from events import audit, permissions, registration, seats
from events.models import Registration
from events.registration_desk import RegistrationDesk
from events.schemas import (
    CheckinPublic,
    CheckinState,
    RegistrationCreated,
    RegistrationForStaff,
    RegistrationPublic,
    answer,
)
from events.sessions import get_event, get_visible_event
from events.timeutil import iso_local
from events.units import Text
from server.caching import PrivateJSONRoute
from server.clientaddr import client_of
from server.deps import SessionDep, SettingsDep, SignerDep, StaffDep

# Tickets, manage tokens and registration lists: never stored by a cache.
router = APIRouter(prefix="/api", route_class=PrivateJSONRoute)
EventId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Token = Annotated[str, Path(min_length=10, max_length=300)]


class CheckinIn(BaseModel):
    code: str = Field(min_length=1, max_length=20)


class WalkInIn(BaseModel):
    name: Text = Field(min_length=1, max_length=50)
    phone: str = Field(default="", max_length=20)


@router.post("/events/{event_id}/registrations", status_code=201,
             response_model=RegistrationCreated, responses={
                 409: {"description": "`already_registered`, `registration_closed`, "
                                      "`try_again`"},
                 429: {"description": "`too_many_requests` from this address or number"}})
async def register(event_id: EventId, body: registration.RegistrationIn,
                   request: Request) -> Response:
    """On the event loop: the desk writes what arrives together in one transaction. The desk
    and the client's address come from the request itself: a burst's hottest path solves no
    dependency it does not need (DeskDep, ClientAddressDep say the same). The answer is
    encoded here, straight to JSON bytes."""
    desk: RegistrationDesk = request.app.state.registration_desk
    made = await desk.register(event_id, body, client_address=client_of(request))
    return Response(answer(RegistrationCreated, made).model_dump_json(), status_code=201,
                    media_type="application/json")


@router.get("/registrations/{token}")
def show(token: Token, db: SessionDep, signer: SignerDep) -> RegistrationPublic:
    found = registration.from_manage_token(db, signer, token)
    return answer(RegistrationPublic, registration.registration_public(db, found))


@router.delete("/registrations/{token}",
               responses={409: {"description": "`already_checked_in`"}})
def cancel(token: Token, db: SessionDep, signer: SignerDep) -> RegistrationPublic:
    found = registration.from_manage_token(db, signer, token)
    registration.cancel(db, found)
    return answer(RegistrationPublic, registration.registration_public(db, found))


@router.post("/registrations/{token}/erase", status_code=204)
def erase(token: Token, db: SessionDep, signer: SignerDep) -> Response:
    found = registration.from_manage_token(db, signer, token)
    registration.erase(db, found)
    return Response(status_code=204)


def _checkin_state(db: SessionDep, event_id: int) -> dict[str, Any]:
    event = get_event(db, event_id)
    confirmed, waitlisted = seats.counts(db, [event_id])[event_id]
    return {"checked_in_count": registration.checked_in_count(db, event_id),
            "confirmed_count": confirmed, "waitlist_count": waitlisted,
            "capacity": event.capacity}


@router.post("/events/{event_id}/checkins", responses={409: {"description": (
    "`already_checked_in`, `ticket_cancelled`, `not_confirmed`, `not_open_for_checkin`, "
    "`checkin_not_open`, `checkin_closed`")}})
def check_in(event_id: EventId, body: CheckinIn, db: SessionDep, user: StaffDep,
             settings: SettingsDep) -> CheckinPublic:
    found = registration.check_in(db, user, event_id, body.code,
                                  opens_before=settings.checkin_opens_before)
    return answer(CheckinPublic, {"registration": registration.registration_public(db, found),
                                  **_checkin_state(db, event_id)})


@router.get("/events/{event_id}/checkins")
def checkin_state(event_id: EventId, db: SessionDep, user: StaffDep) -> CheckinState:
    permissions.require_runner(db, user, get_visible_event(db, event_id, user))
    return answer(CheckinState, _checkin_state(db, event_id))


@router.post("/events/{event_id}/walk-ins", status_code=201, responses={409: {"description": (
    "`already_registered`, `full`, `not_open_for_checkin`, `checkin_not_open`, "
    "`checkin_closed`")}})
def walk_in(
    event_id: EventId, body: WalkInIn, db: SessionDep, signer: SignerDep, user: StaffDep,
    settings: SettingsDep,
) -> CheckinPublic:
    found = registration.walk_in(db, signer, user, event_id, body.name, body.phone,
                                 opens_before=settings.checkin_opens_before)
    return answer(CheckinPublic, {"registration": registration.registration_public(db, found),
                                  **_checkin_state(db, event_id)})


def _rows(db: SessionDep, event_id: int) -> list[Registration]:
    return list(db.exec(select(Registration).where(Registration.event_id == event_id)
                        .order_by(col(Registration.created_at), col(Registration.id))))


@router.get("/events/{event_id}/registrations")
def list_registrations(event_id: EventId, db: SessionDep,
                       user: StaffDep) -> list[RegistrationForStaff]:
    """Staff view: personal data masked."""
    permissions.require_runner(db, user, get_visible_event(db, event_id, user))
    out = []
    for row in _rows(db, event_id):
        item = registration.registration_public(db, row)
        item["question"] = row.question
        item["source"] = row.source
        out.append(answer(RegistrationForStaff, item))
    return out


@router.get("/events/{event_id}/registrations.csv", response_class=Response, responses={
    200: {"description": "The registrations with full personal data, as CSV (UTF-8 with BOM)",
          "content": {"text/csv": {"schema": {"type": "string"}}}}})
def export_registrations(event_id: EventId, db: SessionDep, user: StaffDep) -> Response:
    """Full personal data, for the unit and the district office only; every export audited."""
    event = get_visible_event(db, event_id, user)
    permissions.require_owner(user, event)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["编号", "状态", "入场码", "姓名", "手机号", "问题", "来源", "报名时间",
                     "签到时间"])
    rows = _rows(db, event_id)
    for row in rows:
        writer.writerow([row.id, row.status.value, row.code, _cell(row.name), row.phone,
                         _cell(row.question), row.source, iso_local(row.created_at),
                         iso_local(row.checked_in_at) or ""])
    audit.record(db, user, "registration.export", "event", event.id, unit_id=event.unit_id,
                 changes={"rows": len(rows)})
    return Response("\ufeff" + buffer.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition":
                             f'attachment; filename="registrations-{event_id}.csv"'})


def _cell(text: str) -> str:
    """Neutralises spreadsheet formulas in citizen-typed text (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
