"""Pages: the public portal and the staff console. Renders only; holds no business rule."""

from __future__ import annotations

from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from frontend.i18n import LOCALES, N_, current_locale, gettext, negotiate

LANG_COOKIE = "lang"

ERROR_TITLES = {
    400: "The request could not be read",
    401: "Please sign in",
    403: "You may not do this",
    404: "Page not found",
    409: "This cannot be done now",
    413: "Too large",
    422: "Please check what you entered",
    429: "Too many attempts",
    503: "Busy: please try again in a moment",
}


# What a page says when the router knows no more than the status (Starlette's English phrase).
ERROR_MESSAGES = {
    404: N_("The page you are looking for does not exist. Check the address, or start again "
            "from the upcoming sessions."),
    405: N_("This address does not answer that kind of request."),
}


def _render_error(request: Request, status: int, code: str, message: str) -> Response:
    from frontend.templating import render

    title = gettext(ERROR_TITLES.get(status, "Something went wrong"))
    if status in ERROR_MESSAGES and message == HTTPStatus(status).phrase:
        message = gettext(ERROR_MESSAGES[status])
    return render(request, "error.html", status_code=status, title=title, code=code,
                  message=message)


class LocaleMiddleware:
    """Plain ASGI: picks the page language (?lang=, then the cookie, then zh_CN) per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Parsed only when present: this runs for every request, the API's bursts included.
        asked = None
        if b"lang=" in scope.get("query_string", b""):
            asked = Request(scope).query_params.get("lang")
        cookie = None
        if not asked and any(name == b"cookie" and b"lang=" in value
                             for name, value in scope["headers"]):
            cookie = Request(scope).cookies.get(LANG_COOKIE)
        locale = negotiate(asked or cookie)
        remember = asked is not None and asked.replace("-", "_") in LOCALES

        async def with_language(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Language", locale.replace("_", "-"))
                if remember:
                    cookie = Response()
                    cookie.set_cookie(LANG_COOKIE, locale, max_age=365 * 86400, samesite="lax")
                    headers.append("set-cookie", cookie.headers["set-cookie"])
            await send(message)

        token = current_locale.set(locale)
        try:
            await self.app(scope, receive, with_language)
        finally:
            current_locale.reset(token)


def install(app: FastAPI) -> None:
    """Mounts static files, page routes, the language switch and the HTML error renderer."""
    from frontend.templating import STATIC_DIR

    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    app.state.html_error_renderer = _render_error

    app.add_middleware(LocaleMiddleware)

    from frontend import (
        console,
        console_answers,
        console_compliance,
        console_golive,
        console_ingest,
        console_live,
        console_plan,
        console_questions,
        console_registrations,
        console_series,
        console_themes,
        console_users,
        portal,
        portal_archive,
        portal_plan,
        portal_recover,
        portal_results,
        portal_room,
        portal_series,
        portal_tickets,
    )

    app.include_router(portal.router)
    app.include_router(portal_room.router)
    app.include_router(portal_recover.router)  # before /tickets/{token}
    app.include_router(portal_tickets.router)
    app.include_router(console.router)
    app.include_router(console_registrations.router)
    app.include_router(console_live.router)
    app.include_router(console_ingest.router)
    app.include_router(console_golive.router)
    app.include_router(console_questions.router)
    app.include_router(console_compliance.router)
    app.include_router(console_users.router)
    app.include_router(portal_results.router)
    app.include_router(portal_archive.router)
    app.include_router(portal_plan.router)
    app.include_router(portal_series.router)
    app.include_router(console_plan.router)
    app.include_router(console_answers.router)
    app.include_router(console_series.router)
    app.include_router(console_themes.router)
