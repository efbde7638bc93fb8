"""/console/plan: the year's broadcast plan for the office and the lead units (issue 18).

The year's page: a summary per state, the year's timeline (frontend.plan_views) and the table
that is its text equivalent, filtered by unit and state; the office's import form. An item's
page: its production steps, their files with upload forms, and the session that carries it out.
Editors read every item and act on their own unit's (the press office on every script).

The office also enters one item by hand (POST /console/plan/items) and deletes one with its
files (POST /console/plan/items/{id}/delete).

Forms post and redirect. The rules (states, due dates, who may upload or link) are events.plan,
events.plan_edit and events.plan_files'.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import ValidationError
from sqlmodel import Session
from starlette.datastructures import UploadFile

from events import permissions, plan, plan_edit, plan_files, plan_import, themes, units
from events.errors import DomainError, Forbidden
from events.models import Role, StaffUser, Unit
from events.plan import PlanCsvInvalid
from events.timeutil import local, utcnow
from frontend import console_forms as forms
from frontend import plan_views as views
from frontend.compliance_views import parse_year, year_choices
from frontend.console_auth import ConsoleRoute, ConsoleStaff, see_other
from frontend.i18n import N_, gettext
from frontend.templating import render
from server.deps import PostedForm, SessionDep, SettingsDep

router = APIRouter(prefix="/console", include_in_schema=False, route_class=ConsoleRoute)

DONE = {
    "linked": N_("The session is linked to the plan item."),
    "unlinked": N_("The session is no longer linked to the plan item."),
    "material": N_("The material is uploaded."),
    "script": N_("The script is uploaded."),
}
# Domain error codes of the item page's forms, as the sentence shown above the form.
ACTION_PROBLEMS = {
    "unknown_event": N_("Choose one of the listed broadcast sessions."),
    "not_broadcast": N_("A plan item is carried out by a broadcast (政民互动直播间) session."),
    "other_unit": N_("Choose a broadcast session of the lead unit."),
    "event_cancelled": N_("This session is cancelled: choose another."),
    "already_linked": N_("This session already carries another plan item."),
    "forbidden": N_("This step belongs to another unit, or needs the district office."),
    "empty_file": N_("The file is empty."),
    "too_large": N_("The file is larger than the upload limit."),
    "unsupported_type": N_("This kind of file is not accepted: upload a PDF, Word, Excel, "
                           "PowerPoint, OpenDocument or plain text file."),
    "invalid": N_("Choose material or script."),
    "file_required": N_("Choose a file first."),
    "confirm_delete": N_("Tick the box to confirm that the item and its files are deleted."),
}
# The year page's notices after the office added or deleted an item.
PAGE_DONE = {
    "added": N_("The plan item is added."),
    "deleted": N_("The plan item is deleted, with its files."),
}
ITEM_FIELDS = ("topic", "unit_code", "month", "theme")


# What a form adds around its file (the token, the step, the multipart boundaries).
FORM_OVERHEAD = 64 * 1024


class UploadTooLarge(DomainError):
    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__("too_large", f"the upload is larger than {limit} bytes",
                         max_bytes=limit)


def _bounded(limit: int) -> Any:
    """A dependency, resolved before the form is read (these routes are exempt from the edge's
    body limit, server.app.UPLOAD_PATHS): a body over `limit` is refused by its length."""

    def check(request: Request) -> None:
        length = request.headers.get("content-length", "")
        if not length.isdecimal() or int(length) > limit + FORM_OVERHEAD:
            raise UploadTooLarge(limit)

    return Depends(check)


def _require_plan_reader(user: StaffUser) -> None:
    """The office and the units' editors read the plan; hosts run sessions, not plans."""
    if user.role not in (Role.admin, Role.editor):
        raise Forbidden("forbidden", "the plan is read by the office and the units' editors")


def _unit_filter(db: Session, code: str) -> Unit | None:
    if not code or len(code) > 40:
        return None
    try:
        return units.get_unit_by_code(db, code)
    except DomainError:
        return None


# ---- the year -------------------------------------------------------------------------------

def _plan_page(request: Request, db: Session, settings: Any, user: StaffUser, *,
               status_code: int = 200, import_errors: list[dict[str, Any]] | None = None,
               import_year: int | None = None, item_errors: dict[str, str] | None = None,
               item_typed: dict[str, str] | None = None) -> Response:
    params = request.query_params
    year = import_year or parse_year(params.get("year"))
    unit = _unit_filter(db, params.get("unit", "").strip())
    state = params.get("state", "")
    state = state if state in plan.STATES else ""
    now = utcnow()
    every = plan.items_of_year(db, year, settings, now=now,
                               unit_id=unit.id if unit is not None else None)
    shown = [view for view in every if not state or view.state == state]
    done_key = params.get("done", "")
    imported = params.get("imported", "")
    done = ""
    if done_key == "imported" and imported.isdecimal():
        done = gettext("%(count)s plan items imported.") % {"count": int(imported)}
    elif done_key in PAGE_DONE:
        done = gettext(PAGE_DONE[done_key])
    return render(
        request, "console/plan.html", status_code=status_code, year=year,
        years=year_choices(year), units=units.list_units(db), unit=unit, state=state,
        states=plan.STATES, rows=[_row(view, user, settings) for view in shown],
        counts=views.counts(every), total=len(every),
        timeline=views.timeline(year, shown, local(now).date()),
        import_errors=import_errors or [], done=done,
        may_import=user.role == Role.admin, v=views,
        themes=themes.list_themes(db) if user.role == Role.admin else [],
        item_errors=item_errors or {}, item_typed=item_typed or {})


def _row(view: plan.ItemView, user: StaffUser, settings: Any) -> dict[str, Any]:
    following = views.next_step(view)
    return {"view": view, "item": view.item, "unit": view.unit, "theme": view.theme,
            "event": view.event, "state": view.state,
            "reason": views.reason_label(view.reason, settings.announce_days,
                                         settings.archive_days),
            "next": following, "ours": user.role == Role.admin or user.unit_id == view.unit.id}


@router.get("/plan")
def plan_page(request: Request, db: SessionDep, settings: SettingsDep,
              user: ConsoleStaff) -> Response:
    _require_plan_reader(user)
    return _plan_page(request, db, settings, user)


@router.post("/plan/import", dependencies=[_bounded(plan_import.MAX_BYTES)])
def import_plan(request: Request, db: SessionDep, settings: SettingsDep,
                user: ConsoleStaff, form: PostedForm) -> Response:
    """The office's file: imported whole, or every bad line shown and nothing imported."""
    _require_plan_reader(user)
    raw_year = str(form.get("year", ""))
    year = parse_year(raw_year)
    upload = form.get("file")
    # At most one byte over events.plan_import's limit: enough for it to refuse the file.
    data = upload.file.read(plan_import.MAX_BYTES + 1) if isinstance(upload, UploadFile) else b""
    try:
        if not data:
            raise PlanCsvInvalid([{"line": 0, "field": "file", "message": "empty"}])
        count = plan_edit.import_plan(db, user, year, data)
    except PlanCsvInvalid as exc:
        db.rollback()
        return _plan_page(request, db, settings, user, status_code=422,
                          import_errors=views.import_problems(exc.lines), import_year=year)
    except DomainError as exc:  # too large, or a topic another import took a moment before
        if exc.status == 403:
            raise
        db.rollback()
        problem = {"line": 0, "field": "file", "message": exc.code}
        return _plan_page(request, db, settings, user, status_code=exc.status,
                          import_errors=views.import_problems([problem]), import_year=year)
    return see_other(f"/console/plan?year={year}&done=imported&imported={count}")


def _item_problems(exc: ValidationError | DomainError) -> dict[str, str]:
    """The refusal of an item entered by hand, field → Chinese sentence (the domain's English
    messages are those of a file's lines: events.plan_import)."""
    if isinstance(exc, ValidationError):
        return {field if field in ITEM_FIELDS else "form": text
                for field, text in forms.validation_messages(exc).items()}
    if exc.code == "duplicate_topic":
        return {"topic": gettext("This topic is already in the year's plan: choose another "
                                 "topic, or delete the item first.")}
    listed = exc.detail.get("fields")
    problems = listed if isinstance(listed, list) and listed else [
        {"field": exc.detail.get("field"), "message": exc.message}]
    out: dict[str, str] = {}
    for problem in problems:
        field = str(problem.get("field") or "")
        message = str(problem.get("message") or "")
        shown = views.import_problem({"field": field, "message": message})["message"]
        if shown == message:  # no sentence for it: no English on a Chinese page
            shown = gettext("Please check this field.")
        out.setdefault(field if field in ITEM_FIELDS else "form", str(shown))
    return out


@router.post("/plan/items")
def create_item(request: Request, db: SessionDep, settings: SettingsDep,
                user: ConsoleStaff, form: PostedForm) -> Response:
    """The office enters one item: back to the year's page, or the page again (422) with the
    fields' problems and what was typed."""
    permissions.require_admin(user)
    year = parse_year(str(form.get("year", "")))
    typed = {name: str(form.get(name, "")).strip() for name in ITEM_FIELDS}
    month = typed["month"]
    if not (month.isdecimal() and len(month) <= 2 and 1 <= int(month) <= 12):
        return _plan_page(request, db, settings, user, status_code=422, import_year=year,
                          item_errors={"month": gettext("Choose a month.")}, item_typed=typed)
    data = {"year": year, "topic": typed["topic"], "unit_code": typed["unit_code"],
            "month": int(month), "theme": typed["theme"] or None}
    try:
        plan_edit.create_item(db, user, plan_edit.PlanItemCreate.model_validate(data))
    except (ValidationError, DomainError) as exc:
        if isinstance(exc, DomainError) and exc.status in (403, 503):
            raise
        db.rollback()  # a duplicate topic (409 in the API) too: the form is to be fixed
        return _plan_page(request, db, settings, user, status_code=422, import_year=year,
                          item_errors=_item_problems(exc), item_typed=typed)
    return see_other(f"/console/plan?year={year}&done=added#plan-items-heading")


# ---- one item -------------------------------------------------------------------------------

def _may_upload(db: Session, user: StaffUser, view: plan.ItemView, step: str) -> bool:
    """Which upload forms to offer; events.plan_files decides when one is posted."""
    return plan_files.may_upload(db, user, view.item, step)


def _item_page(request: Request, db: Session, settings: Any, user: StaffUser, item_id: int,
               *, status_code: int = 200, problem: str = "", failed: str = "") -> Response:
    _require_plan_reader(user)
    now = utcnow()
    view = plan.item_view(db, item_id, settings, now=now)
    key = request.query_params.get("done", "")
    readable = plan_files.may_read(db, user, view.item)
    steps = [{"step": s, "label": views.step_label(s.step),
              "owner": views.owner_label(s.owner), "due": views.due_text(s.due),
              "files": s.files if readable else [], "count": len(s.files),
              "uploadable": s.step in ("material", "script"),
              "may_upload": s.step in ("material", "script") and _may_upload(db, user, view,
                                                                             s.step)}
             for s in views.step_rows(view)]
    may_link = plan_edit.may_link(user, view.item)
    return render(
        request, "console/plan_item.html", status_code=status_code, view=view,
        item=view.item, steps=steps, state=view.state,
        reason=views.reason_label(view.reason, settings.announce_days, settings.archive_days),
        may_link=may_link, readable=readable,
        candidates=plan_edit.candidates(db, view.item) if may_link else [],
        problem=problem, failed=failed,
        done=gettext(DONE[key]) if key in DONE else "", v=views,
        may_delete=permissions.is_admin(user))


@router.get("/plan/items/{item_id:int}")
def item_page(item_id: int, request: Request, db: SessionDep, settings: SettingsDep,
              user: ConsoleStaff) -> Response:
    return _item_page(request, db, settings, user, item_id)


def _problem(exc: DomainError) -> str:
    if exc.code in ACTION_PROBLEMS:
        return gettext(ACTION_PROBLEMS[exc.code])
    return gettext("This could not be done (%(code)s).") % {"code": exc.code}


@router.post("/plan/items/{item_id:int}/session")
def link_session(item_id: int, request: Request, db: SessionDep, settings: SettingsDep,
                 user: ConsoleStaff, form: PostedForm) -> Response:
    _require_plan_reader(user)
    raw = str(form.get("event_id", "")).strip()
    event_id = int(raw) if raw.isdecimal() and len(raw) < 10 else None
    if raw and event_id is None:
        return _item_page(request, db, settings, user, item_id, status_code=422,
                          problem=gettext(ACTION_PROBLEMS["unknown_event"]), failed="session")
    try:
        plan_edit.link_event(db, user, item_id, event_id)
    except DomainError as exc:
        if exc.status == 404 and exc.code != "unknown_event":
            raise
        db.rollback()
        return _item_page(request, db, settings, user, item_id, status_code=exc.status,
                          problem=_problem(exc), failed="session")
    done = "linked" if event_id is not None else "unlinked"
    return see_other(f"/console/plan/items/{item_id}?done={done}")


@router.post("/plan/items/{item_id:int}/files",
             dependencies=[_bounded(plan_files.MAX_FILE_BYTES)])
def upload_file(item_id: int, request: Request, db: SessionDep, settings: SettingsDep,
                      user: ConsoleStaff, form: PostedForm) -> Response:
    _require_plan_reader(user)
    step = str(form.get("step", ""))
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _item_page(request, db, settings, user, item_id, status_code=422,
                          problem=gettext(ACTION_PROBLEMS["file_required"]), failed=step)
    data = upload.file.read(plan_files.MAX_FILE_BYTES + 1)
    try:
        item = plan_edit.get_item(db, item_id)
        plan_files.store(db, user, item, step, upload.filename, data, settings)
    except DomainError as exc:
        if exc.status == 404:
            raise
        db.rollback()
        return _item_page(request, db, settings, user, item_id, status_code=exc.status,
                          problem=_problem(exc), failed=step)
    done = step if step in DONE else "material"
    return see_other(f"/console/plan/items/{item_id}?done={done}#step-{step}")


@router.post("/plan/items/{item_id:int}/delete")
def delete_item(item_id: int, request: Request, db: SessionDep, settings: SettingsDep,
                user: ConsoleStaff, form: PostedForm) -> Response:
    """The office deletes an item with its files, once it ticked the confirmation."""
    permissions.require_admin(user)
    item = plan_edit.get_item(db, item_id)
    if form.get("confirm") != "yes":
        return _item_page(request, db, settings, user, item_id, status_code=422,
                          problem=gettext(ACTION_PROBLEMS["confirm_delete"]), failed="delete")
    year = item.year
    plan_edit.delete_item(db, user, item_id, settings)
    return see_other(f"/console/plan?year={year}&done=deleted")
