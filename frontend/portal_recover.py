"""找回我的报名: the pages that find a lost ticket link again with a code texted to the phone.

The number travels only in form posts (never in a URL, which the access log would keep), and
every answer is private. What a page says never depends on whether the number is registered
(events.recovery).
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from events import recovery, registration
from events.errors import Invalid, Throttled
from frontend.i18n import N_, gettext
from frontend.portal_tickets import PHONE_INVALID, PrivateRoute, refused_cross_site
from frontend.templating import render
from server.clientaddr import ClientAddressDep
from server.deps import PostedForm, SessionDep, SignerDep

FORM_PURPOSE = "recover-form"
FORM_MAX_AGE_S = 3600

CODE_SENT = N_("If this number holds a registration, a text with a 6-digit code is on its way "
               "to it. The code is valid for %(minutes)s minutes.")
CODE_WRONG = N_("This code is not right, or it has expired. Check the text and try again, or "
                "ask for a new code.")
CODE_LOCKED = N_("Too many wrong codes. Ask for a new code.")
TOO_MANY = N_("Too many codes were asked for this number or from this network. Please wait a "
              "while and try again.")
FORM_EXPIRED = N_("This form expired or did not come from this page. Please start again.")

router = APIRouter(include_in_schema=False, route_class=PrivateRoute)


def _token(request: Request) -> str:
    signer = request.app.state.signer
    return str(signer.dumps(FORM_PURPOSE, {"n": secrets.token_urlsafe(8)}))


def _page(request: Request, step: str, status: int = 200, **context: Any) -> Response:
    context.setdefault("phone", "")
    context.setdefault("error", "")
    context.setdefault("notice", "")
    return render(request, "portal/recover.html", status_code=status, section="", step=step,
                  form_token=_token(request),
                  minutes=int(recovery.CODE_LIFETIME.total_seconds() // 60), **context)


def _genuine(request: Request, posted: PostedForm, signer: SignerDep) -> bool:
    given = posted.get("form_token")
    return (isinstance(given, str) and not refused_cross_site(request)
            and signer.loads(FORM_PURPOSE, given, max_age_s=FORM_MAX_AGE_S) is not None)


def _sms_ready(request: Request) -> bool:
    return bool(request.app.state.settings.sms_configured)


@router.get("/tickets/recover")
def recover_form(request: Request) -> Response:
    return _page(request, "phone" if _sms_ready(request) else "unavailable")


@router.post("/tickets/recover")
def request_code(request: Request, posted: PostedForm, db: SessionDep, signer: SignerDep,
                 client: ClientAddressDep) -> Response:
    if not _sms_ready(request):
        return _page(request, "unavailable", 409)
    phone = str(posted.get("phone", ""))[:40].strip()
    if not _genuine(request, posted, signer):
        return _page(request, "phone", 403, phone=phone, error=gettext(FORM_EXPIRED))
    try:
        recovery.request_code(db, signer, phone, client,
                              sms_daily_cap=request.app.state.settings.sms_daily_cap)
    except Invalid:
        db.rollback()
        return _page(request, "phone", 422, phone=phone, error=gettext(PHONE_INVALID))
    except Throttled as exc:
        db.rollback()
        response = _page(request, "phone", 429, phone=phone, error=gettext(TOO_MANY))
        response.headers["Retry-After"] = str(exc.retry_after_s or 60)
        return response
    minutes = int(recovery.CODE_LIFETIME.total_seconds() // 60)
    return _page(request, "code", phone=recovery.normal_phone(phone),
                 notice=gettext(CODE_SENT) % {"minutes": minutes})


@router.post("/tickets/recover/code")
def enter_code(request: Request, posted: PostedForm, db: SessionDep,
               signer: SignerDep) -> Response:
    phone = str(posted.get("phone", ""))[:40].strip()
    code = str(posted.get("code", ""))[:20].strip()
    if not _genuine(request, posted, signer):
        return _page(request, "phone", 403, error=gettext(FORM_EXPIRED))
    try:
        outcome = recovery.enter_code(db, signer, phone, code)
    except Invalid:
        db.rollback()
        return _page(request, "phone", 422, phone=phone, error=gettext(PHONE_INVALID))
    if outcome.status == "locked":
        return _page(request, "phone", 429, phone=phone, error=gettext(CODE_LOCKED))
    if outcome.status != "ok":
        return _page(request, "code", 422, phone=phone, error=gettext(CODE_WRONG))
    found = [{"event": event, "status": reg.status.value,
              "url": f"/tickets/{registration.manage_token(signer, reg)}"}
             for reg, event in outcome.found]
    return _page(request, "found", found=found)
