"""The staff console: sign-in, the unit's sessions, forms, the review queue, the audit log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError
from sqlmodel import Session

from events import audit, closeout, cohosts, hosts, permissions, sessions, units
from events.errors import DomainError
from events.models import EventKind, EventStatus, Role, StaffUser, UnitCategory
from events.sessions import EventQuery
from events.timeutil import utcnow
from frontend import console_auth, console_events
from frontend import console_forms as forms
from frontend.console_audit import readable, with_titles
from frontend.console_auth import ConsoleRoute, ConsoleStaff, see_other
from frontend.console_compliance import editor_card
from frontend.console_events import unit_names
from frontend.i18n import N_, gettext
from frontend.templating import render
from server.deps import PostedForm, SessionDep

S = EventStatus
AUDIT_PAGE_SIZE = 50
# The home page's groups, in the order an editor works through them.
GROUPS = (
    ("sent_back", N_("Sent back: please revise")),
    ("draft", N_("Drafts")),
    ("pending_review", N_("Awaiting review")),
    ("closeout", N_("Waiting for close-out")),
    ("published", N_("Published")),
    ("past", N_("Past and cancelled")),
)
UNIT_DONE = {
    "unit_created": N_("The unit is added."),
    "unit_saved": N_("The unit is saved."),
    "contact_saved": N_("The contact e-mail is saved: the unit's quota reminders go to it."),
    "contact_cleared": N_("The contact e-mail is removed: the unit's quota reminders stay in "
                          "the console's outbox."),
}
BAD_CONTACT_EMAIL = N_("Enter an e-mail address such as office@xicheng.gov.cn, or leave the "
                       "field empty.")

router = APIRouter(prefix="/console", include_in_schema=False, route_class=ConsoleRoute)
router.include_router(console_auth.router)
router.include_router(console_events.router)


def _group_of(item: dict[str, Any]) -> str:
    status = item["status"]
    if item.get("awaiting_closeout"):
        return "closeout"
    if status == "draft":
        return "sent_back" if item.get("review_note") else "draft"
    if status in ("published", "live"):
        return "published"
    if status == "pending_review":
        return "pending_review"
    return "past"


def grouped(items: list[dict[str, Any]]) -> list[tuple[str, str, list[dict[str, Any]]]]:
    buckets: dict[str, list[dict[str, Any]]] = {key: [] for key, _ in GROUPS}
    for item in items:
        buckets[_group_of(item)].append(item)
    buckets["past"].reverse()  # the latest past session first
    return [(key, gettext(title), buckets[key]) for key, title in GROUPS]


def _home_query(user: StaffUser, request: Request) -> tuple[EventQuery, dict[str, str]]:
    params = request.query_params
    chosen = {name: params.get(name, "").strip()[:100] for name in ("unit", "kind", "status", "q")}
    if user.role == Role.editor:
        return EventQuery(unit=str(user.unit_id), limit=1000), {}
    kind = chosen["kind"] if chosen["kind"] in EventKind.__members__ else None
    status = chosen["status"] if chosen["status"] in EventStatus.__members__ else None
    unit = chosen["unit"] if chosen["unit"].isdecimal() else None
    query = EventQuery(unit=unit, kind=EventKind(kind) if kind else None,
                       status=EventStatus(status) if status else None,
                       q=chosen["q"] or None, limit=1000)
    return query, chosen


@router.get("")
def home(request: Request, db: SessionDep, user: ConsoleStaff) -> Response:
    query, chosen = _home_query(user, request)
    if user.role == Role.host:  # the sessions the host is assigned to run
        assigned = hosts.assigned_event_ids(db, user)
        found = [e for e in sessions.list_events(db, query, user) if e.id in assigned
                 and e.status in (S.published, S.live) and e.ends_at >= utcnow()]
    else:
        found = sessions.list_events(db, query, user)
    items = sessions.events_public(db, found, staff=True, viewer=user)
    if user.role != Role.host:  # the unit closes out, not its hosts
        waiting = {e.id for e in found if closeout.is_waiting(e) and permissions.owns(user, e)}
        for item in items:
            item["awaiting_closeout"] = item["id"] in waiting
    own_unit = units.get_unit(db, user.unit_id) if user.unit_id else None
    invitations = [sessions.event_public(db, event) for event, _ in
                   cohosts.invitations_for(db, user.unit_id)] if user.role == Role.editor \
        and user.unit_id is not None else []
    return render(request, "console/home.html", groups=grouped(items), items=items,
                  invitations=invitations,
                  own_unit=own_unit, chosen=chosen, all_units=units.list_units(db),
                  filtered=any(chosen.values()), compliance_card=editor_card(db, user))


@router.get("/audit")
def audit_log(request: Request, db: SessionDep, user: ConsoleStaff) -> Response:
    permissions.require_admin(user)
    page_raw = request.query_params.get("page", "1")
    page = int(page_raw) if page_raw.isdecimal() and 0 < int(page_raw) < 100_000 else 1
    unit_raw = request.query_params.get("unit", "")
    unit_id = int(unit_raw) if unit_raw.isdecimal() and len(unit_raw) < 10 else None
    found = audit.entries(db, unit_id=unit_id, limit=AUDIT_PAGE_SIZE + 1,
                          offset=(page - 1) * AUDIT_PAGE_SIZE)
    names = unit_names(db)
    return render(request, "console/audit.html",
                  entries=with_titles(db, [readable(e, names)
                                           for e in found[:AUDIT_PAGE_SIZE]]),
                  page=page, has_next=len(found) > AUDIT_PAGE_SIZE, unit_id=unit_id,
                  unit_names=names, all_units=units.list_units(db, include_retired=True))


def _units_page(request: Request, db: Session, *, status_code: int = 200,
                errors: dict[str, str] | None = None, typed: dict[str, str] | None = None,
                failed_id: int = 0) -> Response:
    key = request.query_params.get("done", "")
    return render(request, "console/units.html", status_code=status_code,
                  units=units.list_units(db, include_retired=True),
                  categories=list(UnitCategory), errors=errors or {}, typed=typed or {},
                  failed_id=failed_id, done=gettext(UNIT_DONE[key]) if key in UNIT_DONE else "")


@router.get("/units")
def units_page(request: Request, db: SessionDep, user: ConsoleStaff) -> Response:
    permissions.require_admin(user)
    return _units_page(request, db)


def _unit_errors(exc: ValidationError | DomainError) -> dict[str, str]:
    if isinstance(exc, ValidationError):
        return forms.validation_messages(exc)
    return {forms.domain_error_field(exc, "code"): forms.domain_error_message(exc)}


@router.post("/units")
def create_unit(request: Request, db: SessionDep, user: ConsoleStaff,
                form: PostedForm) -> Response:
    permissions.require_admin(user)
    typed = {name: str(form.get(name, "")).strip() for name in
             ("code", "name", "name_en", "category")}
    try:
        units.create_unit(db, user, units.UnitCreate.model_validate(typed))
    except (ValidationError, DomainError) as exc:
        db.rollback()
        status = exc.status if isinstance(exc, DomainError) else 422
        return _units_page(request, db, status_code=status, errors=_unit_errors(exc),
                           typed=typed)
    return see_other("/console/units?done=unit_created")


@router.post("/units/{unit_id}")
def update_unit(unit_id: int, request: Request, db: SessionDep, user: ConsoleStaff,
                form: PostedForm) -> Response:
    permissions.require_admin(user)
    action = form.get("action")
    change: dict[str, Any] = {}
    typed = {name: str(form.get(name, "")).strip() for name in ("name", "name_en")}
    if action == "rename":
        change = typed
    elif action in ("retire", "restore"):
        change = {"retired": action == "retire"}
    try:
        units.update_unit(db, user, unit_id, units.UnitUpdate.model_validate(change))
    except (ValidationError, DomainError) as exc:
        db.rollback()
        if isinstance(exc, DomainError) and exc.status == 404:
            raise
        status = exc.status if isinstance(exc, DomainError) else 422
        return _units_page(request, db, status_code=status, errors=_unit_errors(exc),
                           typed=typed, failed_id=unit_id)
    return see_other(f"/console/units?done=unit_saved#unit-{unit_id}")


def _contact_email_error(exc: DomainError) -> str:
    if exc.code == "too_long":
        return gettext("At most %(n)s characters.") % {"n": units.MAX_EMAIL_LENGTH}
    return gettext(BAD_CONTACT_EMAIL)


@router.post("/units/{unit_id}/contact-email")
def set_contact_email(unit_id: int, request: Request, db: SessionDep, user: ConsoleStaff,
                      form: PostedForm) -> Response:
    permissions.require_admin(user)
    typed = {"contact_email": str(form.get("contact_email", "")).strip()}
    try:
        unit = units.set_contact_email(db, user, unit_id, typed["contact_email"])
    except DomainError as exc:
        db.rollback()
        if exc.status != 422:
            raise
        return _units_page(request, db, status_code=422,
                           errors={"contact_email": _contact_email_error(exc)}, typed=typed,
                           failed_id=unit_id)
    done = "contact_saved" if unit.contact_email else "contact_cleared"
    return see_other(f"/console/units?done={done}#unit-{unit_id}")
