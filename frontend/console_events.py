"""Console pages of one session: the form, the details with their actions, the review queue."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlmodel import Session

from events import audit, lifecycle, permissions, sessions, units
from events.errors import Conflict, DomainError, Forbidden
from events.models import Event, EventStatus, Role, StaffUser
from events.sessions import EventQuery
from frontend import console_forms as forms
from frontend.console_audit import readable
from frontend.console_auth import ConsoleRoute, ConsoleStaff, see_other
from frontend.i18n import N_, gettext
from frontend.templating import render
from server.db import utcnow
from server.deps import PostedForm, SessionDep

S = EventStatus
MAX_REASON = 500
MAX_MINUTES = 50_000

# What the page says after a successful post (keys only: nothing from the URL is echoed).
DONE = {
    "created": N_("The session is saved as a draft."),
    "saved": N_("Your changes are saved."),
    "pending_review": N_("Sent to the district office for review."),
    "published": N_("Published: the session is on the portal."),
    "draft": N_("The session is back in draft."),
    "cancelled": N_("The session is cancelled."),
    "live": N_("The session is live."),
    "ended": N_("The session has ended."),
    "archived": N_("The session is archived."),
    "postponed": N_("The session is postponed; the portal shows the new time and your reason."),
    "closed": N_("The close-out is saved."),
}

router = APIRouter(route_class=ConsoleRoute)


def done_message(key: str | None) -> str:
    return gettext(DONE[key]) if key in DONE else ""


def unit_names(db: Session) -> dict[int, str]:
    return {u.id: u.name for u in units.list_units(db, include_retired=True) if u.id is not None}


def allowed_actions(user: StaffUser, event: Event) -> set[str]:
    """The buttons to offer; the domain still decides when one is pressed."""
    owner = permissions.owns(user, event)
    admin = permissions.is_admin(user)
    runner = user.role == Role.host or owner
    moves = lifecycle.TRANSITIONS[event.status]
    offered = {
        "edit": owner and event.status in sessions.EDITABLE,
        "submit": owner and S.pending_review in moves,
        "withdraw": owner and not admin and event.status == S.pending_review,
        "publish": admin and S.published in moves,
        "send_back": admin and event.status == S.pending_review,
        "live": runner and S.live in moves,
        "end": runner and event.status == S.live,
        "postpone": owner and event.status in lifecycle.POSTPONABLE
        and event.published_at is not None,
        "cancel": owner and S.cancelled in moves,
        "close": owner and event.status in lifecycle.CLOSABLE and event.starts_at <= utcnow(),
        "archive": owner and S.archived in moves,
    }
    return {name for name, ok in offered.items() if ok}


# ---- the form --------------------------------------------------------------------------------

def _form_page(request: Request, db: Session, user: StaffUser, values: dict[str, Any], *,
               event: Event | None = None, errors: dict[str, str] | None = None,
               status_code: int = 200) -> Response:
    active = units.list_units(db)
    own_unit = units.get_unit(db, user.unit_id) if user.unit_id else None
    return render(request, "console/event_form.html", status_code=status_code, event=event,
                  values=forms.with_blank_rows(values), errors=errors or {}, units=active,
                  own_unit=own_unit, unit_fixed=user.role == Role.editor)


@router.get("/events/new")
def new_event(request: Request, db: SessionDep, user: ConsoleStaff) -> Response:
    if user.role == Role.host:
        raise Forbidden("forbidden", "hosts do not draft sessions")
    return _form_page(request, db, user, forms.blank_values(user))


@router.post("/events/new")
def create_event(request: Request, db: SessionDep, user: ConsoleStaff,
                 form: PostedForm) -> Response:
    try:
        data = forms.event_create(form, user)
        event = sessions.create_event(db, user, data)
    except forms.FormErrors as exc:
        return _form_page(request, db, user, forms.typed_values(form), errors=exc.errors,
                          status_code=422)
    except DomainError as exc:
        db.rollback()
        errors = {forms.domain_error_field(exc): forms.domain_error_message(exc)}
        return _form_page(request, db, user, forms.typed_values(form), errors=errors,
                          status_code=exc.status)
    db.commit()
    return see_other(f"/console/events/{event.id}?done=created")


@router.get("/events/{event_id}/edit")
def edit_event(event_id: int, request: Request, db: SessionDep, user: ConsoleStaff) -> Response:
    event = sessions.get_event(db, event_id)
    permissions.require_owner(user, event)
    if event.status not in sessions.EDITABLE:
        raise Conflict("not_editable", f"a session that is {event.status.value} cannot be edited")
    values = forms.event_values(event, sessions.cohost_ids(db, [event_id])[event_id],
                                sessions.materials_of(db, [event_id])[event_id])
    return _form_page(request, db, user, values, event=event)


@router.post("/events/{event_id}/edit")
def update_event(event_id: int, request: Request, db: SessionDep, user: ConsoleStaff,
                 form: PostedForm) -> Response:
    event = sessions.get_event(db, event_id)
    permissions.require_owner(user, event)
    try:
        data = forms.event_update(form, user)
        sessions.update_event(db, user, event_id, data)
    except forms.FormErrors as exc:
        return _form_page(request, db, user, forms.typed_values(form), event=event,
                          errors=exc.errors, status_code=422)
    except DomainError as exc:
        db.rollback()
        errors = {forms.domain_error_field(exc): forms.domain_error_message(exc)}
        return _form_page(request, db, user, forms.typed_values(form), event=event,
                          errors=errors, status_code=exc.status)
    db.commit()
    return see_other(f"/console/events/{event_id}?done=saved")


# ---- the details and their actions -----------------------------------------------------------

def _detail_page(request: Request, db: Session, user: StaffUser, event: Event, *,
                 status_code: int = 200, failed: str = "", error: str = "",
                 typed: dict[str, str] | None = None) -> Response:
    assert event.id is not None
    names = unit_names(db)
    trail = []
    if permissions.owns(user, event):
        trail = [readable(e, names)
                 for e in audit.entries(db, entity="event", entity_id=event.id)]
    values = {"starts_at": forms.local_input(event.starts_at),
              "ends_at": forms.local_input(event.ends_at), "minutes": event.minutes,
              "attendee_count": "" if event.attendee_count is None else str(event.attendee_count),
              "attendance_reason": ""}
    return render(request, "console/event.html", status_code=status_code, event=event,
                  shown=sessions.event_public(db, event, staff=True), unit_names=names,
                  actions=allowed_actions(user, event), trail=trail,
                  done=done_message(request.query_params.get("done")),
                  failed=failed, error=error, typed={**values, **(typed or {})})


@router.get("/events/{event_id}")
def event_page(event_id: int, request: Request, db: SessionDep, user: ConsoleStaff) -> Response:
    return _detail_page(request, db, user, sessions.get_event(db, event_id))


def _review_page(request: Request, db: Session, user: StaffUser, *, status_code: int = 200,
                 failed_id: int = 0, error: str = "",
                 typed: dict[str, str] | None = None) -> Response:
    queue = sessions.list_events(db, EventQuery(status=S.pending_review, limit=1000), user)
    return render(request, "console/review.html", status_code=status_code,
                  queue=sessions.events_public(db, queue, staff=True),
                  done=done_message(request.query_params.get("done")), failed_id=failed_id,
                  error=error, typed=typed or {})


@router.get("/review")
def review_queue(request: Request, db: SessionDep, user: ConsoleStaff) -> Response:
    permissions.require_admin(user)
    return _review_page(request, db, user)


def _action_failed(request: Request, db: Session, user: StaffUser, event_id: int, action: str,
                   exc: DomainError, typed: dict[str, str], from_review: bool) -> Response:
    db.rollback()
    message = forms.domain_error_message(exc)
    if from_review:
        return _review_page(request, db, user, status_code=exc.status, failed_id=event_id,
                            error=message, typed=typed)
    return _detail_page(request, db, user, sessions.get_event(db, event_id),
                        status_code=exc.status, failed=action, error=message, typed=typed)


@router.post("/events/{event_id}/status")
def change_status(event_id: int, request: Request, db: SessionDep, user: ConsoleStaff,
                  form: PostedForm) -> Response:
    reason = str(form.get("reason", "")).strip()
    from_review = form.get("origin") == "review"
    try:
        target = EventStatus(str(form.get("status", "")))
    except ValueError as exc:
        raise Conflict("illegal_transition", "unknown target status") from exc
    try:
        forms.check_length(reason, "reason", MAX_REASON)
        lifecycle.change_status(db, user, event_id, target, reason)
    except DomainError as exc:
        return _action_failed(request, db, user, event_id, target.value, exc,
                              {"reason": reason}, from_review)
    db.commit()
    if from_review and permissions.is_admin(user):
        return see_other(f"/console/review?done={target.value}")
    return see_other(f"/console/events/{event_id}?done={target.value}")


@router.post("/events/{event_id}/postpone")
def postpone(event_id: int, request: Request, db: SessionDep, user: ConsoleStaff,
             form: PostedForm) -> Response:
    typed = {name: str(form.get(name, "")) for name in ("starts_at", "ends_at", "reason")}
    try:
        starts_at = forms.required_time(typed["starts_at"], "starts_at")
        ends_at = forms.required_time(typed["ends_at"], "ends_at")
        forms.check_length(typed["reason"], "reason", MAX_REASON)
        lifecycle.postpone(db, user, event_id, starts_at, ends_at, typed["reason"])
    except DomainError as exc:
        return _action_failed(request, db, user, event_id, "postpone", exc, typed, False)
    db.commit()
    return see_other(f"/console/events/{event_id}?done=postponed")


@router.post("/events/{event_id}/close")
def close_out(event_id: int, request: Request, db: SessionDep, user: ConsoleStaff,
              form: PostedForm) -> Response:
    typed = {name: str(form.get(name, ""))
             for name in ("minutes", "attendee_count", "attendance_reason")}
    try:
        forms.check_length(typed["minutes"], "minutes", MAX_MINUTES)
        forms.check_length(typed["attendance_reason"], "attendance_reason", 500)
        count = forms.optional_count(typed["attendee_count"], "attendee_count")
        lifecycle.close_event(db, user, event_id, typed["minutes"], count,
                              typed["attendance_reason"])
    except DomainError as exc:
        return _action_failed(request, db, user, event_id, "close", exc, typed, False)
    db.commit()
    return see_other(f"/console/events/{event_id}?done=closed")
