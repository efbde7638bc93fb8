"""The citizen's side of registration: the form on the session page, the ticket behind the
manage link (code, QR, cancel, erase) and the privacy notice.

Handlers parse, call events.registration and render; the rules (window, capacity, waitlist,
one registration per phone) live there.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import anyio.from_thread
import segno
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute
from markupsafe import Markup
from pydantic import ValidationError

from events import registration, sessions
from events.errors import Conflict, NotFound, Throttled
from events.models import Event, Registration, RegistrationStatus
from frontend import portal
from frontend.browser import bound_nonce, browser_for, remember_browser
from frontend.i18n import N_, gettext
from frontend.templating import env, render
from server.caching import keep_private
from server.clientaddr import ClientAddressDep
from server.deps import DeskDep, PostedForm, SessionDep, SignerDep, public_url
from server.security import Signer
from streaming import room

FORM_PURPOSE = "register-form"
# Long enough to type a name and a number on a phone, short enough that a token goes stale.
FORM_MAX_AGE_S = 3600
FIELD_LIMITS = {"name": 200, "phone": 40, "question": 2000}
CANCELLABLE_EVENT_STATUSES = frozenset({"published", "live"})

NAME_REQUIRED = N_("Please enter your name.")
NAME_TOO_LONG = N_("A name has at most 50 characters.")
PHONE_REQUIRED = N_("Please enter your mobile number.")
PHONE_INVALID = N_("Enter an 11-digit mainland mobile number, e.g. 13812345678.")
QUESTION_TOO_LONG = N_("A question has at most 1,000 characters.")
CONSENT_REQUIRED = N_("Please read and agree to the privacy notice to register.")
ALREADY_REGISTERED = N_("This mobile number is already registered for this session.")
ALREADY_REGISTERED_HINT = N_("To see or cancel that registration, open the ticket link shown "
                             "after registering (we suggested bookmarking it).")
FORM_EXPIRED = N_("This form expired or did not come from this page. Check what you typed "
                  "and send it again.")
REGISTRATION_CLOSED = N_("Registration for this session is not open any more.")
TOO_MANY_ATTEMPTS = N_("Too many registrations were sent from this network or for this "
                       "number. Please wait a while and try again.")
TICKET_MISSING = N_("This ticket link is not valid, or the registration behind it was "
                    "deleted. Check that you copied the whole link.")
SESSION_MISSING = N_("This session does not exist or is not public.")
CHECKED_IN_NO_CANCEL = N_("This ticket was used at the door, so it can no longer be cancelled "
                          "or deleted here.")


# ---- the registration form ------------------------------------------------------------------

@dataclass
class RegistrationForm:
    """What the form shows: a fresh signed token, what was typed and what needs fixing."""

    token: str
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    notice: str = ""
    hint: str = ""


def form_token(signer: Signer, event_id: int) -> str:
    return signer.dumps(FORM_PURPOSE, {"e": event_id, "n": secrets.token_urlsafe(12)})


def form_nonce(signer: Signer, event_id: int, token: str) -> str | None:
    """The nonce of a genuine, fresh form of this session; None for anything else."""
    payload = signer.loads(FORM_PURPOSE, token, max_age_s=FORM_MAX_AGE_S)
    if not isinstance(payload, dict) or payload.get("e") != event_id:
        return None
    nonce = payload.get("n")
    return nonce if isinstance(nonce, str) else None


def new_registration_form(request: Request, event_id: int) -> RegistrationForm:
    """An empty form for the session page (a Jinja global: the portal's handler renders it)."""
    return RegistrationForm(token=form_token(request.app.state.signer, event_id))


env.globals["new_registration_form"] = new_registration_form


def field_errors(exc: ValidationError, values: dict[str, str]) -> dict[str, str]:
    """RegistrationIn's complaints as one translated sentence per field."""
    errors: dict[str, str] = {}
    for problem in exc.errors():
        where = str(problem.get("loc", ("",))[0])
        if where == "name":
            message = NAME_TOO_LONG if problem.get("type") == "string_too_long" else NAME_REQUIRED
        elif where == "phone":
            message = PHONE_INVALID if values.get("phone", "").strip() else PHONE_REQUIRED
        elif where == "question":
            message = QUESTION_TOO_LONG
        elif where == "consent":
            message = CONSENT_REQUIRED
        else:
            continue
        errors.setdefault(where, gettext(message))
    return errors


# ---- responses ------------------------------------------------------------------------------

class PrivateRoute(APIRoute):
    """The manage link is the citizen's only key: never cached, never sent on as a referrer."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def private_handler(request: Request) -> Response:
            keep_private(request.scope)
            try:
                response = await handler(request)
            except NotFound:
                response = not_found(request, TICKET_MISSING)
            response.headers["Referrer-Policy"] = "no-referrer"
            response.headers["X-Robots-Tag"] = "noindex"
            return response

        return private_handler


router = APIRouter(include_in_schema=False, route_class=PrivateRoute)


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def not_found(request: Request, message: str) -> Response:
    # A page is for a browser whatever its Accept header says: always the HTML error page.
    renderer = request.app.state.html_error_renderer
    response: Response = renderer(request, 404, "not_found", gettext(message))
    return response


def refused_cross_site(request: Request) -> bool:
    """Browsers say where a post came from; a form posted from another site is refused."""
    return request.headers.get("sec-fetch-site", "") == "cross-site"


def session_page(request: Request, db: SessionDep, event: Event, form: RegistrationForm,
                 status: int) -> Response:
    """The session page again, with the form as it was sent."""
    return portal.render_session(request, db, event, status=status, form=form)


def qr_svg(code: str) -> Markup:
    """A full QR code (never Micro QR, which phone cameras do not read), as inline SVG."""
    qr = segno.make(code, error="m", micro=False)
    svg = qr.svg_inline(scale=1, border=4, omitsize=True, svgclass="qr", dark="#000",
                        light="#fff", title=gettext("QR code of the ticket code %(code)s")
                        % {"code": code})
    return Markup(svg)  # segno escapes the title; the code is from our own alphabet


def ticket_url(request: Request, token: str) -> str:
    return public_url(request) + f"/tickets/{token}"


def ticket_page(request: Request, db: SessionDep, found: Registration, token: str, *,
                mode: str = "ticket", status: int = 200, problem: str = "") -> Response:
    event = sessions.get_event(db, found.event_id)
    card = portal.session_cards(db, [event], portal.unit_directory(db))[0]
    ticket = registration.registration_public(db, found)
    active = found.status != RegistrationStatus.cancelled
    checked_in = found.checked_in_at is not None
    response = render(
        request, "portal/ticket.html", status_code=status, section="", e=card, ticket=ticket,
        token=token, mode=mode, problem=problem, map_url=portal.map_link(card),
        qr=qr_svg(found.code) if found.status == RegistrationStatus.confirmed
        and mode == "ticket" else None,
        manage_url=ticket_url(request, token),
        done=request.query_params.get("done", ""), checked_in=checked_in,
        can_cancel=active and not checked_in and card["status"] in CANCELLABLE_EVENT_STATUSES,
        can_erase=not checked_in,
    )
    if active and found.id is not None and card["room_url"]:
        # The session's room shows this browser's viewer as registered (streaming.room.join).
        settings = request.app.state.settings
        response.set_cookie(room.ticket_cookie(found.event_id),
                            room.room_ticket(request.app.state.signer, found.id, found.event_id),
                            max_age=room.TICKET_MAX_AGE_S, httponly=True, samesite="lax",
                            secure=settings.cookie_secure, path="/")
    return response


# ---- registering ----------------------------------------------------------------------------

@router.post("/events/{event_id:int}/register")
def register(event_id: int, request: Request, posted: PostedForm, db: SessionDep,
             signer: SignerDep, desk: DeskDep, client: ClientAddressDep) -> Response:
    response = _register(event_id, request, posted, db, signer, desk, browser_for(request),
                         client)
    remember_browser(request, response)
    return response


def _register(event_id: int, request: Request, posted: PostedForm, db: SessionDep,
              signer: SignerDep, desk: DeskDep, browser: str, client: str) -> Response:
    try:
        event = sessions.get_visible_event(db, event_id, None)
    except NotFound:
        return not_found(request, SESSION_MISSING)
    values = {name: str(posted.get(name, ""))[:limit] for name, limit in FIELD_LIMITS.items()}
    consent = posted.get("consent") in ("yes", "on", "true", "1")
    values["consent"] = "yes" if consent else ""
    form = RegistrationForm(token=form_token(signer, event_id), values=values)

    given = posted.get("form_token")
    nonce = form_nonce(signer, event_id, given) if isinstance(given, str) else None
    if nonce is None or refused_cross_site(request):
        form.notice = gettext(FORM_EXPIRED)
        return session_page(request, db, event, form, 403)
    try:
        data = registration.RegistrationIn(name=values["name"], phone=values["phone"],
                                           question=values["question"], consent=consent)
    except ValidationError as exc:
        form.errors = field_errors(exc, values)
        return session_page(request, db, event, form, 422)
    # The shortcut below leads only this browser back to its ticket: the nonce is bound to it.
    nonce = bound_nonce(signer, nonce, browser)
    db.rollback()  # no connection held while the desk writes
    try:
        created = anyio.from_thread.run(desk.register, event_id, data, nonce, client)
    except Throttled as exc:
        db.rollback()
        form.notice = gettext(TOO_MANY_ATTEMPTS)
        response = session_page(request, db, sessions.get_event(db, event_id), form, 429)
        response.headers["Retry-After"] = str(exc.retry_after_s or 60)
        return response
    except Conflict as exc:
        db.rollback()
        if exc.code == "already_registered":
            own = registration.own_registration(db, signer, event_id, data.phone, nonce)
            if own is not None:
                return see_other(f"/tickets/{registration.manage_token(signer, own)}#ticket")
            form.errors = {"phone": gettext(ALREADY_REGISTERED)}
            form.hint = gettext(ALREADY_REGISTERED_HINT)
        else:
            form.notice = gettext(REGISTRATION_CLOSED)
        return session_page(request, db, sessions.get_event(db, event_id), form, 409)
    return see_other(f"/tickets/{created['manage_token']}#ticket")


# ---- the ticket -----------------------------------------------------------------------------

@router.get("/tickets/erased")
def erased(request: Request) -> Response:
    return render(request, "portal/ticket.html", section="", mode="erased")


@router.get("/tickets/{token}")
def show_ticket(token: str, request: Request, db: SessionDep, signer: SignerDep) -> Response:
    found = registration.from_manage_token(db, signer, token)
    return ticket_page(request, db, found, token)


@router.get("/tickets/{token}/cancel")
def confirm_cancel(token: str, request: Request, db: SessionDep,
                   signer: SignerDep) -> Response:
    found = registration.from_manage_token(db, signer, token)
    if found.status == RegistrationStatus.cancelled:
        return see_other(f"/tickets/{token}")
    return ticket_page(request, db, found, token, mode="cancel")


@router.post("/tickets/{token}/cancel")
def cancel(token: str, request: Request, db: SessionDep, signer: SignerDep) -> Response:
    found = registration.from_manage_token(db, signer, token)
    if refused_cross_site(request):
        return ticket_page(request, db, found, token, status=403,
                           problem=gettext(FORM_EXPIRED))
    if found.status == RegistrationStatus.cancelled:
        return see_other(f"/tickets/{token}")
    was_confirmed = found.status == RegistrationStatus.confirmed
    try:
        registration.cancel(db, found)
    except Conflict:
        db.rollback()
        return ticket_page(request, db, found, token, status=409,
                           problem=gettext(CHECKED_IN_NO_CANCEL))
    return see_other(f"/tickets/{token}?done={'released' if was_confirmed else 'left'}")


@router.get("/tickets/{token}/erase")
def confirm_erase(token: str, request: Request, db: SessionDep,
                  signer: SignerDep) -> Response:
    found = registration.from_manage_token(db, signer, token)
    return ticket_page(request, db, found, token, mode="erase")


@router.post("/tickets/{token}/erase")
def erase(token: str, request: Request, db: SessionDep, signer: SignerDep) -> Response:
    found = registration.from_manage_token(db, signer, token)
    if refused_cross_site(request):
        return ticket_page(request, db, found, token, status=403,
                           problem=gettext(FORM_EXPIRED))
    try:
        registration.erase(db, found)
    except Conflict:
        db.rollback()
        return ticket_page(request, db, found, token, status=409,
                           problem=gettext(CHECKED_IN_NO_CANCEL))
    return see_other("/tickets/erased")


# ---- the privacy notice ---------------------------------------------------------------------

@router.get("/privacy")
def privacy(request: Request) -> Response:
    return render(request, "portal/privacy.html", section="",
                  retention_days=request.app.state.settings.retention_days)
