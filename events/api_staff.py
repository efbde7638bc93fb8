"""HTTP for staff sign-in, accounts and units."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from events import permissions, staff, units
from events.errors import Forbidden
from events.schemas import StaffSessionPublic, UnitPublic, UserPublic, answer, answers
from server.clientaddr import client_of
from server.deps import (
    JSONRoute,
    OptionalStaffDep,
    SessionDep,
    SettingsDep,
    SignerDep,
    StaffDep,
    csrf_matches,
    end_staff_session,
    start_staff_session,
)

router = APIRouter(prefix="/api", route_class=JSONRoute)


class Credentials(BaseModel):
    username: units.Text = Field(min_length=1, max_length=60)
    password: staff.Password = Field(min_length=1, max_length=200)


def client_address(request: Request) -> str:
    return client_of(request)  # behind a trusted proxy, the client it names


@router.post("/session", responses={
    401: {"description": "`invalid_credentials`: a wrong username or password"},
    429: {"description": "`too_many_attempts`: too many failed sign-ins"}})
def sign_in(
    body: Credentials, request: Request, response: Response, db: SessionDep,
    signer: SignerDep, settings: SettingsDep,
) -> StaffSessionPublic:
    # A failure is already counted (committed) by authenticate; the boundary's commit clears them.
    user = staff.authenticate(db, signer, body.username, body.password,
                              client_address(request),
                              max_failures=settings.login_max_failures,
                              window_s=settings.login_window_s)
    csrf = start_staff_session(response, signer, settings, user)
    return answer(StaffSessionPublic, {"user": staff.user_public(user), "csrf_token": csrf})


@router.get("/session")
def whoami(request: Request, user: StaffDep) -> StaffSessionPublic:
    return answer(StaffSessionPublic, {"user": staff.user_public(user),
                                       "csrf_token": request.state.csrf_token})


@router.delete("/session", status_code=204,
               responses={403: {"description": "`csrf_failed`"}})
def sign_out(request: Request, response: Response, db: SessionDep,
             user: OptionalStaffDep) -> Response:
    if user is not None:
        # Unsafe and cookie-authenticated: a cross-site request must not sign anyone out.
        if not csrf_matches(request.state.csrf_token, request.headers.get("x-csrf-token")):
            raise Forbidden("csrf_failed", "the X-CSRF-Token header is missing or wrong")
        # Server-side too: a copy of the cookie must not outlive the sign-out.
        staff.end_sessions(db, user)
    end_staff_session(response)
    response.status_code = 204
    return response


@router.get("/users")
def list_users(db: SessionDep, user: StaffDep) -> list[UserPublic]:
    permissions.require_admin(user)
    return answers(UserPublic, [staff.user_public(u) for u in staff.list_users(db)])


@router.post("/users", status_code=201,
             responses={409: {"description": "`username_taken`"}})
def create_user(body: staff.UserCreate, db: SessionDep, user: StaffDep) -> UserPublic:
    permissions.require_admin(user)
    created = staff.create_user(db, user, body)
    return answer(UserPublic, staff.user_public(created))


@router.patch("/users/{user_id}", responses={409: {"description": "`cannot_change_self`"}})
def update_user(
    user_id: int, body: staff.UserUpdate, db: SessionDep, user: StaffDep
) -> UserPublic:
    permissions.require_admin(user)
    updated = staff.update_user(db, user, user_id, body)
    return answer(UserPublic, staff.user_public(updated))


@router.get("/units")
def list_units(db: SessionDep, include_retired: bool = False) -> list[UnitPublic]:
    return answers(UnitPublic, [units.unit_public(u)
                                for u in units.list_units(db, include_retired=include_retired)])


@router.post("/units", status_code=201, responses={409: {"description": "`unit_exists`"}})
def create_unit(body: units.UnitCreate, db: SessionDep, user: StaffDep) -> UnitPublic:
    permissions.require_admin(user)
    unit = units.create_unit(db, user, body)
    return answer(UnitPublic, units.unit_public(unit))


@router.patch("/units/{unit_id}")
def update_unit(
    unit_id: int, body: units.UnitUpdate, db: SessionDep, user: StaffDep
) -> UnitPublic:
    permissions.require_admin(user)
    unit = units.update_unit(db, user, unit_id, body)
    return answer(UnitPublic, units.unit_public(unit))
