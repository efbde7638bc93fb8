"""Request dependencies: settings, the database session, the signed-in staff member."""

from __future__ import annotations

import functools
import hmac
import inspect
import secrets
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from fastapi import Depends, Request, Response
from fastapi.datastructures import Default, DefaultPlaceholder
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant, get_typed_return_annotation
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic_core import to_json
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import HTTPConnection

from events.errors import Forbidden, Unauthenticated
from events.models import StaffUser
from events.registration_desk import RegistrationDesk
from events.schemas import ErrorPublic
from server.config import Settings
from server.db import get_engine
from server.security import Signer

T = TypeVar("T")
SESSION_COOKIE = "kaifang_session"
SESSION_PURPOSE = "staff-session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class JSONRoute(APIRoute):
    """A JSON route whose answer model is documented, never used by FastAPI to validate.

    With a response model, FastAPI validates a sync endpoint's answer in the thread pool, so a
    finished request waits for a thread while its database connection is still checked out;
    under a burst every thread then waits for a connection and every connection for a thread.
    So the model (the endpoint's return annotation, or `response_model=` when the endpoint
    returns a Response itself) goes to the OpenAPI document as the success response's schema,
    and FastAPI runs the route without one: the endpoint builds the model's instance (validated
    in the endpoint's own thread; see events.schemas.answer), and the route encodes it on the
    event loop, straight to JSON text in pydantic's Rust core (FastAPI's own encoder walks the
    answer in Python: 20 ms of the loop for 200 sessions).

    The error answers the route can give are documented with ErrorPublic: those any route can
    give (400, 422 for input, 401/403 behind the staff session, 404 for a path that names
    something, 413 for a body, 5XX) and those the decorator's `responses=` names.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        annotation = get_typed_return_annotation(endpoint)
        returns_response = _is_response(annotation)
        model = kwargs.get("response_model", Default(None))
        if isinstance(model, DefaultPlaceholder):
            model = None if returns_response else annotation
        kwargs["response_model"] = None
        if not returns_response and not hasattr(endpoint, "encodes_on_the_loop"):
            endpoint = _encoded_on_the_loop(endpoint)
            if isinstance(kwargs.get("response_class", Default(JSONResponse)),
                          DefaultPlaceholder):
                kwargs["response_class"] = EncodedJSONResponse
        status = kwargs.get("status_code") or 200
        declared: dict[int | str, dict[str, Any]] = dict(kwargs.get("responses") or {})
        documented = error_responses(*_errors_of(get_dependant(path=path, call=endpoint)))
        for code, response in declared.items():
            documented[code] = {**documented.get(code, {}), **response}
        if model is not None:
            documented[status] = {"model": model, **documented.get(status, {})}
        for code, response in documented.items():
            if str(code)[0] in "45":
                response.setdefault("model", ErrorPublic)
        kwargs["responses"] = documented
        super().__init__(path, endpoint, **kwargs)


class EncodedJSON(str):
    """JSON text a JSONRoute encoded already (FastAPI's encoder passes a str through)."""


class EncodedJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        if isinstance(content, EncodedJSON):
            return content.encode("utf-8")
        return super().render(content)


def _encode(answer: Any) -> Any:
    if isinstance(answer, Response | EncodedJSON):
        return answer
    return EncodedJSON(to_json(answer).decode())


def _encoded_on_the_loop(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """The endpoint, run as FastAPI would (a plain `def` in the thread pool), its answer then
    encoded on the event loop. FastAPI reads the endpoint's parameters through __wrapped__."""
    if inspect.iscoroutinefunction(endpoint):
        @functools.wraps(endpoint)
        async def encoded_async(*args: Any, **kwargs: Any) -> Any:
            return _encode(await endpoint(*args, **kwargs))

        encoded_async.encodes_on_the_loop = True  # type: ignore[attr-defined]
        return encoded_async

    @functools.wraps(endpoint)
    async def encoded(*args: Any, **kwargs: Any) -> Any:
        return _encode(await run_in_threadpool(endpoint, *args, **kwargs))

    # A router that copies its routes (older FastAPI) builds the route again: wrap once.
    encoded.encodes_on_the_loop = True  # type: ignore[attr-defined]
    return encoded


ERROR_DESCRIPTIONS: dict[int | str, str] = {
    400: "`bad_host`: a host name this service does not answer to; `malformed_json`",
    401: "`login_required`: sign in as staff first",
    403: "`forbidden` (the role or unit may not do this), `csrf_failed`",
    404: "what the path names does not exist, or is not visible to the caller",
    409: "the current state does not allow it: `error` says why",
    413: "`too_large`: the request body is too large",
    422: "`invalid` and other input errors: `field`, and `fields` listing every problem",
    429: "`too_many_requests` / `too_many_attempts`; Retry-After says when to try again",
    "5XX": "`internal` (500), or `busy` (503, with Retry-After)",
}


def error_responses(*statuses: int | str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for error answers, each with the ErrorPublic shape."""
    return {status: {"model": ErrorPublic, "description": ERROR_DESCRIPTIONS[status]}
            for status in statuses}


def _errors_of(dependant: Dependant) -> list[int | str]:
    """The error statuses any route with these parameters and dependencies can answer."""
    everything = list(_walk(dependant))
    statuses: list[int | str] = [400]
    if any(d.call is require_staff for d in everything):
        statuses += [401, 403]
    if any(d.path_params for d in everything):
        statuses.append(404)
    if any(d.body_params for d in everything):
        statuses.append(413)
    if any(d.path_params or d.query_params or d.header_params or d.cookie_params
           or d.body_params for d in everything):
        statuses.append(422)
    return [*statuses, "5XX"]


def _is_response(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, Response)


def _walk(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for dependency in dependant.dependencies:
        yield from _walk(dependency)


async def in_own_session(connection: HTTPConnection, work: Callable[[Session], T]) -> T:
    """Runs `work` in a thread with a short database session of its own, committed if it
    returns: for endpoints that stay on the event loop (uploads streaming to disk, the live
    room's socket) and must not hold a session while they wait for the client."""
    settings: Settings = connection.app.state.settings

    def run() -> T:
        with Session(get_engine(settings.sqlalchemy_url), expire_on_commit=False) as db:
            result = work(db)
            db.commit()
            return result

    return await anyio.to_thread.run_sync(run)


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


def _session_payload(request: HTTPConnection, signer: Signer,
                     settings: Settings) -> dict[str, Any] | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    payload = signer.loads(SESSION_PURPOSE, token, max_age_s=settings.session_max_age_s)
    return payload if isinstance(payload, dict) else None


def _load_staff(request: HTTPConnection, db: Session, signer: Signer,
                settings: Settings) -> tuple[StaffUser, str] | None:
    payload = _session_payload(request, signer, settings)
    if payload is None:
        return None
    uid = payload.get("uid")
    user = db.get(StaffUser, uid) if isinstance(uid, int) else None
    if user is None or not user.active or payload.get("sv") != user.session_version:
        return None
    return user, str(payload.get("csrf", ""))


def staff_of_connection(connection: HTTPConnection, db: Session) -> StaffUser | None:
    """The staff member behind a socket's session cookie (a socket has no CSRF header: its
    handler checks the Origin instead)."""
    loaded = _load_staff(connection, db, connection.app.state.signer,
                         connection.app.state.settings)
    return loaded[0] if loaded else None


def csrf_matches(expected: str, given: str | None) -> bool:
    return bool(expected) and given is not None and hmac.compare_digest(expected, given)


def _staff_of_request(request: Request, db: Session, signer: Signer,
                      settings: Settings) -> tuple[StaffUser, str] | None:
    """_load_staff, then the end of its read-only transaction: the connection goes back to the
    pool before the request waits for a thread to run its endpoint in. Held meanwhile, every
    pooled connection could sit with a request waiting for a thread while every request
    thread waits for a connection (bench/scaleout.py saw 40 connections idle in transaction
    and requests answered 503 after 210 s). The endpoint's statements take a connection
    again, in a transaction of their own; the user stays loaded (expire_on_commit=False)."""
    loaded = _load_staff(request, db, signer, settings)
    db.commit()
    return loaded


def optional_staff(
    request: Request, db: SessionDep, signer: SignerDep, settings: SettingsDep
) -> StaffUser | None:
    """The staff member behind the cookie, for reads; None for the public."""
    loaded = _staff_of_request(request, db, signer, settings)
    if loaded is None:
        return None
    request.state.csrf_token = loaded[1]
    return loaded[0]


def require_staff(
    request: Request, db: SessionDep, signer: SignerDep, settings: SettingsDep
) -> StaffUser:
    """A signed-in staff member; unsafe requests must carry the cookie's CSRF token."""
    loaded = _staff_of_request(request, db, signer, settings)
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

