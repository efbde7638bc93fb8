"""Request dependencies: settings, the database session, the signed-in staff member."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.datastructures import DefaultPlaceholder
from fastapi.routing import APIRoute
from sqlmodel import Session
from starlette.datastructures import FormData

from events.errors import Forbidden, Unauthenticated
from events.models import StaffUser
from events.registration_desk import RegistrationDesk
from server.config import Settings
from server.db import get_engine
from server.security import Signer

SESSION_COOKIE = "kaifang_session"
SESSION_PURPOSE = "staff-session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class JSONRoute(APIRoute):
    """A JSON route without a response model: FastAPI then encodes the answer on the event loop.

    With a model, a sync endpoint's answer is validated in the thread pool, so a finished request
    waits for a thread while its database connection is still checked out; under a burst every
    thread then waits for a connection and every connection for a thread.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if isinstance(kwargs.get("response_model"), DefaultPlaceholder):
            kwargs["response_model"] = None
        super().__init__(path, endpoint, **kwargs)

async def app_settings(request: Request) -> Settings:
    """The settings create_app was given (no per-request override resolution).

    These small dependencies are `async def`: FastAPI runs a plain `def` one in the thread pool.
    """
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(app_settings)]


def public_url(request: Request) -> str:
    """Where the public reaches the service (KAIFANG_PUBLIC_URL, no trailing slash): every
    absolute link starts with it, whatever Host the request named."""
    settings: Settings = request.app.state.settings
    return settings.public_url


async def get_signer(request: Request) -> Signer:
    signer: Signer = request.app.state.signer
    return signer


SignerDep = Annotated[Signer, Depends(get_signer)]


async def get_registration_desk(request: Request) -> RegistrationDesk:
    desk: RegistrationDesk = request.app.state.registration_desk
    return desk


DeskDep = Annotated[RegistrationDesk, Depends(get_registration_desk)]


async def posted_form(request: Request) -> FormData:
    """The posted form, read on the event loop, so a page handler using the database can be a
    plain `def` that FastAPI runs in the thread pool."""
    return await request.form()


PostedForm = Annotated[FormData, Depends(posted_form)]


def get_db(settings: SettingsDep) -> Iterator[Session]:
    """One transaction per request, committed here at the boundary: handlers and services
    flush, never commit (DESIGN.md; the registration desk, delivery and the sign-in throttle
    keep their own short transactions, each documented where it commits).

    Scope "function": the commit runs once the endpoint has returned and before the answer is
    sent, so a commit that fails is answered as a failure (503 busy), never as a 201 for rows
    that are not there; and the connection goes back to the pool before the answer is written
    to a slow client. An exception rolls back. A page that answers an error without raising
    rolls back what it tried first (the form pages do), and what it keeps is committed: a
    wrong recovery code stays counted."""
    with Session(get_engine(settings.sqlalchemy_url), expire_on_commit=False) as session:
        try:
            yield session
        except BaseException:
            session.rollback()
            raise
        session.commit()


SessionDep = Annotated[Session, Depends(get_db, scope="function")]


def start_staff_session(
    response: Response, signer: Signer, settings: Settings, user: StaffUser
) -> str:
    """Sets the signed session cookie; returns the CSRF token bound to it."""
    csrf = secrets.token_urlsafe(24)
    token = signer.dumps(SESSION_PURPOSE, {"uid": user.id, "sv": user.session_version,
                                           "csrf": csrf})
    response.set_cookie(SESSION_COOKIE, token, max_age=settings.session_max_age_s,
                        httponly=True, samesite="lax", secure=settings.cookie_secure, path="/")
    return csrf


def end_staff_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


def _session_payload(request: Request, signer: Signer, settings: Settings) -> dict[str, Any] | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    payload = signer.loads(SESSION_PURPOSE, token, max_age_s=settings.session_max_age_s)
    return payload if isinstance(payload, dict) else None


def _load_staff(request: Request, db: Session, signer: Signer,
                settings: Settings) -> tuple[StaffUser, str] | None:
    payload = _session_payload(request, signer, settings)
    if payload is None:
        return None
    uid = payload.get("uid")
    user = db.get(StaffUser, uid) if isinstance(uid, int) else None
    if user is None or not user.active or payload.get("sv") != user.session_version:
        return None
    return user, str(payload.get("csrf", ""))


def csrf_matches(expected: str, given: str | None) -> bool:
    return bool(expected) and given is not None and hmac.compare_digest(expected, given)


def optional_staff(
    request: Request, db: SessionDep, signer: SignerDep, settings: SettingsDep
) -> StaffUser | None:
    """The staff member behind the cookie, for reads; None for the public."""
    loaded = _load_staff(request, db, signer, settings)
    if loaded is None:
        return None
    request.state.csrf_token = loaded[1]
    return loaded[0]


def require_staff(
    request: Request, db: SessionDep, signer: SignerDep, settings: SettingsDep
) -> StaffUser:
    """A signed-in staff member; unsafe requests must carry the cookie's CSRF token."""
    loaded = _load_staff(request, db, signer, settings)
    if loaded is None:
        raise Unauthenticated("login_required", "sign in as staff first")
    user, csrf = loaded
    request.state.csrf_token = csrf
    if request.method not in SAFE_METHODS and not csrf_matches(
        csrf, request.headers.get("x-csrf-token")
    ):
        raise Forbidden("csrf_failed", "the X-CSRF-Token header is missing or wrong")
    return user


OptionalStaffDep = Annotated[StaffUser | None, Depends(optional_staff)]
StaffDep = Annotated[StaffUser, Depends(require_staff)]

