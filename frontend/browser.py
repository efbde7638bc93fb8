"""A random id the citizen's browser keeps in a cookie. The registration form's shortcut (a
double click led to the first post's ticket) holds only for the browser that made that post:
the stored nonce is a keyed hash of the form's nonce and this id."""

from __future__ import annotations

import re
import secrets

from fastapi import Request, Response

from server.security import Signer

BROWSER_COOKIE = "kaifang_browser"
MAX_AGE_S = 30 * 86400
_WELL_FORMED = re.compile(r"^[A-Za-z0-9_-]{22,64}$")


def browser_id(request: Request) -> str | None:
    value = request.cookies.get(BROWSER_COOKIE, "")
    return value if _WELL_FORMED.match(value) else None


def browser_for(request: Request) -> str:
    """This browser's id, or the one this request gives it (the same all through a request)."""
    known = browser_id(request)
    if known is not None:
        return known
    if getattr(request.state, "new_browser_id", None) is None:
        request.state.new_browser_id = secrets.token_urlsafe(24)
    new: str = request.state.new_browser_id
    return new


def remember_browser(request: Request, response: Response) -> None:
    """A browser without an id is given one with this response (once)."""
    if browser_id(request) is not None:
        return
    prefix = f"{BROWSER_COOKIE}=".encode()
    if any(name == b"set-cookie" and value.startswith(prefix)
           for name, value in response.raw_headers):
        return
    response.set_cookie(BROWSER_COOKIE, browser_for(request), max_age=MAX_AGE_S, httponly=True,
                        samesite="lax", secure=request.app.state.settings.cookie_secure,
                        path="/")


def bound_nonce(signer: Signer, form_nonce: str, browser: str) -> str:
    """What is stored with the registration: only this form in this browser finds it again."""
    return signer.keyed_hash("form-nonce", f"{form_nonce}|{browser}")[:32]
