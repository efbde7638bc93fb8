"""Console sign-in: the page route class, the signed-in staff dependency, login and logout."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from events import staff
from events.errors import DomainError, Forbidden, Throttled, Unauthenticated
from events.models import StaffUser
from frontend.i18n import N_, gettext
from frontend.templating import render
from server.caching import PRIVATE
from server.clientaddr import client_of
from server.deps import (
    SAFE_METHODS,
    OptionalStaffDep,
    PostedForm,
    SessionDep,
    SettingsDep,
    SignerDep,
    csrf_matches,
    end_staff_session,
    start_staff_session,
)

LOGIN_PATH = "/console/login"
# A double-submit token for the sign-in form, which has no session yet to bind a token to.
LOGIN_CSRF_COOKIE = "kaifang_login_csrf"

ERROR_TITLES = {
    401: N_("Please sign in"),
    403: N_("You may not do this"),
    404: N_("Page not found"),
    409: N_("This cannot be done now"),
    422: N_("Please check what you entered"),
    429: N_("Too many attempts"),
}
ERROR_MESSAGES = {
    "csrf_failed": N_("The form expired. Go back, reload the page and try again."),
    "forbidden": N_("This belongs to another unit, or needs the district office."),
    "event_not_found": N_("There is no such session."),
    "unit_not_found": N_("There is no such unit."),
    "not_editable": N_("A session in this state can no longer be edited."),
    "illegal_transition": N_("The session has moved on; this step is no longer possible."),
    "not_postponable": N_("A session in this state can no longer be postponed."),
    "not_started": N_("A session can be closed out only once it has started."),
}


class SignInRequired(Exception):
    """Raised by the console dependency; the route class turns it into a redirect."""


def safe_next(value: str | None) -> str:
    """Only a path on this site: no scheme, no host, no protocol-relative '//' trick."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/console"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or any(ord(c) < 32 for c in value) or "\\" in value:
        return "/console"
    return value


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def render_error(request: Request, status: int, code: str) -> Response:
    title = gettext(ERROR_TITLES.get(status, "Something went wrong"))
    message = gettext(ERROR_MESSAGES.get(code, ERROR_TITLES.get(status, "Something went wrong")))
    return render(request, "console/error.html", status_code=status, title=title,
                  message=message, code=code)


class ConsoleRoute(APIRoute):
    """Console pages: sign-in redirects, domain errors as console pages, never cached."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except SignInRequired:
                wanted = request.url.path if request.method in SAFE_METHODS else "/console"
                if request.method in SAFE_METHODS and request.url.query:
                    wanted += "?" + request.url.query
                response = see_other(f"{LOGIN_PATH}?next={quote(wanted, safe='/')}")
            except DomainError as exc:
                response = render_error(request, exc.status, exc.code)
            response.headers.setdefault("Cache-Control", PRIVATE)
            return response

        return console_handler


async def console_staff(request: Request, user: OptionalStaffDep) -> StaffUser:
    """The signed-in staff member; a form post must carry the session's csrf_token."""
    if user is None:
        raise SignInRequired()
    request.state.staff_user = user
    if request.method not in SAFE_METHODS:
        form = await request.form()
        given = form.get("csrf_token")
        if not csrf_matches(request.state.csrf_token, given if isinstance(given, str) else None):
            raise Forbidden("csrf_failed", "the form's csrf_token is missing or wrong")
    return user


ConsoleStaff = Annotated[StaffUser, Depends(console_staff)]

router = APIRouter(route_class=ConsoleRoute)


def _login_page(request: Request, status: int, *, username: str = "", next_path: str = "",
                error: str = "") -> Response:
    token = secrets.token_urlsafe(24)
    response = render(request, "console/login.html", status_code=status, username=username,
                      next_path=safe_next(next_path), error=error, csrf_token=token)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                        path=LOGIN_PATH, max_age=3600)
    return response


@router.get("/login")
def login_form(request: Request, user: OptionalStaffDep, next: str = "") -> Response:
    if user is not None:
        return see_other(safe_next(next))
    return _login_page(request, 200, next_path=next)


@router.post("/login")
def login(request: Request, db: SessionDep, signer: SignerDep, settings: SettingsDep,
          form: PostedForm) -> Response:
    username = str(form.get("username", ""))[:60]
    password = str(form.get("password", ""))[:200]
    next_path = str(form.get("next", ""))
    given = form.get("csrf_token")
    if not csrf_matches(request.cookies.get(LOGIN_CSRF_COOKIE, ""),
                        given if isinstance(given, str) else None):
        return _login_page(request, 403, username=username, next_path=next_path,
                           error=gettext("The sign-in form expired. Please try again."))
    if not username.strip() or not password:
        return _login_page(request, 422, username=username, next_path=next_path,
                           error=gettext("Enter your username and password."))
    address = client_of(request)
    try:
        user = staff.authenticate(db, signer, username, password, address,
                                  max_failures=settings.login_max_failures,
                                  window_s=settings.login_window_s)
    except Unauthenticated:  # already counted by authenticate, before the password check
        return _login_page(request, 401, username=username, next_path=next_path,
                           error=gettext("Wrong username or password."))
    except Throttled:
        minutes = max(settings.login_window_s // 60, 1)
        message = gettext("Too many failed sign-ins. Wait %(minutes)s minutes and try again.")
        return _login_page(request, 429, username=username, next_path=next_path,
                           error=message % {"minutes": minutes})
    response = see_other(safe_next(next_path))
    start_staff_session(response, signer, settings, user)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=LOGIN_PATH)
    return response


@router.post("/logout")
def logout(user: ConsoleStaff, db: SessionDep) -> Response:
    # Server-side too: a copied cookie stops working once its owner signs out.
    staff.end_sessions(db, user)
    response = see_other(LOGIN_PATH)
    end_staff_session(response)
    return response
