"""Console pages of one session: the form, the details with their actions, the review queue."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlmodel import Session

from events import audit, cohosts, hosts, lifecycle, permissions, revisions, sessions, themes, units
from events.errors import Conflict, DomainError, Forbidden, Invalid
from events.models import Event, EventStatus, Role, StaffUser
from events.sessions import EventQuery
from events.timeutil import utcnow
from frontend import console_forms as forms
from frontend.console_audit import FIELDS, display, readable
from frontend.console_auth import ConsoleRoute, ConsoleStaff, see_other
from frontend.console_recordings import recordings_panel
from frontend.console_series import form_choices
from frontend.i18n import N_, gettext
from frontend.templating import render
from server.deps import PostedForm, SessionDep
from streaming import audience, room

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
    "held": N_("Sent to the district office for review: the public sees the published version "
               "until the office approves your changes."),
    "revision_approved": N_("The changes are approved: the public sees them now."),
    "revision_rejected": N_("The changes are rejected; the unit sees your reason."),
    "cohost_accepted": N_("Your unit co-hosts this session now."),
    "cohost_declined": N_("Your unit declined to co-host this session."),
    "host_assigned": N_("The host is assigned to this session."),
    "host_unassigned": N_("The host no longer runs this session."),
}

router = APIRouter(route_class=ConsoleRoute)


def done_message(key: str | None) -> str:
    return gettext(DONE[key]) if key in DONE else ""


def unit_names(db: Session) -> dict[int, str]:
    return {u.id: u.name for u in units.list_units(db, include_retired=True) if u.id is not None}


def allowed_actions(db: Session, user: StaffUser, event: Event) -> set[str]:
    """The buttons to offer; the domain still decides when one is pressed."""
    owner = permissions.owns(user, event)
    admin = permissions.is_admin(user)
    runner = permissions.may_run(db, user, event)
    now = utcnow()
    moves = lifecycle.TRANSITIONS[event.status]
    offered = {
        "edit": owner and event.status in sessions.EDITABLE,
        "submit": owner and S.pending_review in moves,
        "withdraw": owner and not admin and event.status == S.pending_review,
        "publish": admin and S.published in moves,
        "send_back": admin and event.status == S.pending_review,
        "live": runner and S.live in moves and now >= event.starts_at - lifecycle.GO_LIVE_LEAD
        and now < event.ends_at,
        "end": runner and event.status == S.live and now >= event.starts_at,
        "postpone": owner and event.status in lifecycle.POSTPONABLE
        and event.published_at is not None,
        "cancel": owner and S.cancelled in moves,
        "close": owner and event.status in lifecycle.CLOSABLE and event.starts_at <= utcnow()
        and (event.closed_at is None or permissions.is_admin(user)),
        "archive": owner and S.archived in moves,
    }
    return {name for name, ok in offered.items() if ok}


def action_error_message(action: str, exc: DomainError) -> str:
    """Why an action failed; a reason says who reads it, missing fields are named."""
    if exc.code == "reason_required" and action in forms.REASON_MESSAGES:
        return gettext(forms.REASON_MESSAGES[action])
    if exc.code == "incomplete":
        missing = exc.detail.get("missing") or []
        names = gettext(", ").join(gettext(FIELDS.get(name, name)) for name in missing)
        return gettext("Fill in before review and publication: %(fields)s.") % {"fields": names}
    return forms.domain_error_message(exc)


# ---- the form --------------------------------------------------------------------------------

def _form_page(request: Request, db: Session, user: StaffUser, values: dict[str, Any], *,
               event: Event | None = None, errors: dict[str, str] | None = None,
               status_code: int = 200) -> Response:
    active = units.list_units(db)
    own_unit = units.get_unit(db, user.unit_id) if user.unit_id else None
    return render(request, "console/event_form.html", status_code=status_code, event=event,
                  values=forms.with_blank_rows(values), errors=errors or {}, units=active,
                  own_unit=own_unit, unit_fixed=user.role == Role.editor,
                  **form_choices(db, user, values))


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
        errors = forms.domain_errors(exc)
        return _form_page(request, db, user, forms.typed_values(form), errors=errors,
                          status_code=exc.status)
    return see_other(f"/console/events/{event.id}?done=created")


@router.get("/events/{event_id}/edit")
def edit_event(event_id: int, request: Request, db: SessionDep, user: ConsoleStaff) -> Response:
    event = sessions.get_event(db, event_id)
    permissions.require_owner(user, event)
    if event.status not in sessions.EDITABLE:
        raise Conflict("not_editable", f"a session that is {event.status.value} cannot be edited")
    values = forms.event_values(
        event, sessions.cohost_ids(db, [event_id], accepted_only=False)[event_id],
        sessions.materials_of(db, [event_id])[event_id],
        themes.themes_of(db, [event_id])[event_id])
    pending = revisions.pending_of(db, event_id)
    if pending is not None:  # the editor goes on from the changes waiting for review
        values.update(forms.revision_values(revisions.fields_of(pending)))
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
        errors = forms.domain_errors(exc)
        return _form_page(request, db, user, forms.typed_values(form), event=event,
                          errors=errors, status_code=exc.status)
    held = not permissions.is_admin(user) and revisions.is_reviewed(event) \
        and revisions.pending_of(db, event_id) is not None
    return see_other(f"/console/events/{event_id}?done={'held' if held else 'saved'}")


# ---- the details and their actions -----------------------------------------------------------

def _detail_page(request: Request, db: Session, user: StaffUser, event: Event, *,
                 status_code: int = 200, failed: str = "", error: str = "",
                 typed: dict[str, str] | None = None) -> Response:
    assert event.id is not None
    names = unit_names(db)
    trail = []
    owner = permissions.owns(user, event)
    if owner:
        trail = [readable(e, names)
                 for e in audit.entries(db, entity="event", entity_id=event.id)]
    values = {"starts_at": forms.local_input(event.starts_at),
              "ends_at": forms.local_input(event.ends_at), "minutes": event.minutes,
              "attendee_count": "" if event.attendee_count is None else str(event.attendee_count),
              "attendance_reason": ""}
    shown = sessions.event_public(db, event, staff=True, viewer=user)
    invitation = None
    if user.unit_id is not None and user.unit_id != event.unit_id:
        invitation = next((c for c in cohosts.rows_of(db, [event.id])[event.id]
                           if c.unit_id == user.unit_id), None)
    return render(request, "console/event.html", status_code=status_code, event=event,
                  shown=shown, unit_names=names, owner=owner, field_labels=FIELDS,
                  runner=permissions.may_run(db, user, event), invitation=invitation,
                  pending=_readable_changes(shown.get("pending_revision"), names),
                  rejected=shown.get("rejected_revision"),
                  host_choices=hosts.host_accounts(db) if owner else [],
                  actions=allowed_actions(db, user, event), trail=trail,
                  room_counts=room.tally(db, event.id),
                  webcast=audience.evidence_of(db, [event.id]).get(event.id),
                  done=done_message(request.query_params.get("done")),
                  failed=failed, error=error, typed={**values, **(typed or {})},
                  **(recordings_panel(db, event, request.app.state.settings.max_upload_bytes,
                                      request.app.state.media_storage) if owner else {}))


def _readable_changes(revision: dict[str, Any] | None, names: dict[int, str]
                      ) -> list[tuple[str, str, str]]:
    """A pending revision as rows of (field, published, proposed) for people to read."""
    if not revision:
        return []
    rows = []
    for name, (old, new) in revision["changes"].items():
        rows.append((gettext(FIELDS.get(name, name)), _shown(name, old, names),
                     _shown(name, new, names)))
    return rows


def _shown(name: str, value: Any, names: dict[int, str]) -> str:
    if name == "materials":  # every link in full: the office checks where they lead
        return "\n".join(f"{m['title']} <{m['url']}>" for m in value or []) or "—"
    return display(name, value, names)


@router.get("/events/{event_id}")
def event_page(event_id: int, request: Request, db: SessionDep, user: ConsoleStaff) -> Response:
    return _detail_page(request, db, user, sessions.get_visible_event(db, event_id, user))


def _review_page(request: Request, db: Session, user: StaffUser, *, status_code: int = 200,
                 failed_id: int = 0, error: str = "",
                 typed: dict[str, str] | None = None) -> Response:
    permissions.require_admin(user)  # the queue shows every unit's drafts and changes
    queue = sessions.list_events(db, EventQuery(status=S.pending_review, limit=1000), user)
    names = unit_names(db)
    changed = sessions.events_public(db, sessions.with_pending_revision(db), staff=True)
    for item in changed:
        item["diff"] = _readable_changes(item["pending_revision"], names)
    return render(request, "console/review.html", status_code=status_code,
                  queue=sessions.events_public(db, queue, staff=True), changed=changed,
                  unit_names=names, field_labels=FIELDS,
                  done=done_message(request.query_params.get("done")), failed_id=failed_id,
                  error=error, typed=typed or {})


@router.get("/review")
def review_queue(request: Request, db: SessionDep, user: ConsoleStaff) -> Response:
    permissions.require_admin(user)
    return _review_page(request, db, user)


def _action_failed(request: Request, db: Session, user: StaffUser, event_id: int, action: str,
                   exc: DomainError, typed: dict[str, str], from_review: bool) -> Response:
    db.rollback()
    message = action_error_message(action, exc)
    if from_review and permissions.is_admin(user):
        return _review_page(request, db, user, status_code=exc.status, failed_id=event_id,
                            error=message, typed=typed)
    # The page comes back only to who may read it: a refused action shows nobody a draft.
    event = sessions.get_visible_event(db, event_id, user)
    return _detail_page(request, db, user, event,
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
    return see_other(f"/console/events/{event_id}?done=closed")


# ---- review of published sessions, co-hosting, hosts -------------------------------------------

@router.post("/events/{event_id}/revision/{decision}")
def decide_revision(event_id: int, decision: str, request: Request, db: SessionDep,
                    user: ConsoleStaff, form: PostedForm) -> Response:
    reason = str(form.get("reason", "")).strip()
    try:
        forms.check_length(reason, "reason", MAX_REASON)
        if decision == "approve":
            # What the office read, not whatever is pending at the click.
            sessions.approve_revision(db, user, event_id,
                                      str(form.get("submitted_at", ""))[:40] or None)
        elif decision == "reject":
            sessions.reject_revision(db, user, event_id, reason)
        else:
            raise Invalid("invalid", "decision: expected approve or reject")
    except DomainError as exc:
        if exc.status == 403:
            raise
        return _action_failed(request, db, user, event_id, "revision", exc, {"reason": reason},
                              True)
    return see_other(f"/console/review?done=revision_{decision}d#changes")


@router.post("/events/{event_id}/cohosts/{unit_id}/{answer}")
def answer_cohosting(event_id: int, unit_id: int, answer: str, db: SessionDep,
                     user: ConsoleStaff, form: PostedForm) -> Response:
    if answer not in ("accept", "decline"):
        raise Invalid("invalid", "answer: expected accept or decline")
    event = sessions.get_visible_event(db, event_id, user)
    cohosts.respond(db, user, event, unit_id, answer == "accept")
    return see_other(f"/console/events/{event_id}?done=cohost_{answer}ed")


@router.post("/events/{event_id}/hosts")
def assign_host(event_id: int, request: Request, db: SessionDep, user: ConsoleStaff,
                form: PostedForm) -> Response:
    event = sessions.get_event(db, event_id)
    raw = str(form.get("user_id", ""))[:12]
    try:
        hosts.assign(db, user, event, int(raw) if raw.isdecimal() else 0)
    except DomainError as exc:
        return _action_failed(request, db, user, event_id, "hosts", exc, {}, False)
    return see_other(f"/console/events/{event_id}?done=host_assigned#hosts-title")


@router.post("/events/{event_id}/hosts/{host_id}/remove")
def unassign_host(event_id: int, host_id: int, db: SessionDep, user: ConsoleStaff,
                  form: PostedForm) -> Response:
    hosts.unassign(db, user, sessions.get_event(db, event_id), host_id)
    return see_other(f"/console/events/{event_id}?done=host_unassigned#hosts-title")
