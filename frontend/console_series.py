"""Console: a unit's series (list, create, edit) and, for the office, their deletion.

The rules are events.series'; these handlers parse the form, call it and render."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError
from sqlmodel import Session

from events import permissions, series, themes, units
from events.errors import DomainError, Forbidden
from events.models import Role, StaffUser
from frontend import console_forms as forms
from frontend.console_auth import ConsoleRoute, ConsoleStaff, see_other
from frontend.i18n import N_, gettext
from frontend.templating import render
from server.deps import PostedForm, SessionDep

DONE = {
    "series_created": N_("The series is created. Put sessions in it from their form."),
    "series_saved": N_("The series is saved."),
    "series_deleted": N_("The series is deleted; its sessions are in no series now."),
}
CODE_MESSAGES = {
    "forbidden": N_("You may only act on your own unit's series."),
    "unknown_unit": N_("Choose an active unit."),
    "required": N_("This field is required."),
}
FIELDS = ("title", "unit_id", "summary")

router = APIRouter(prefix="/console", include_in_schema=False, route_class=ConsoleRoute)


def _require_unit_staff(user: StaffUser) -> None:
    if user.role == Role.host:
        raise Forbidden("forbidden", "hosts do not manage series")


def _errors(exc: ValidationError | DomainError) -> dict[str, str]:
    if isinstance(exc, ValidationError):
        return forms.validation_messages(exc)
    return {forms.domain_error_field(exc, "form"):
            gettext(CODE_MESSAGES.get(exc.code, N_("Please check this field.")))}


def _typed(form: Any) -> dict[str, str]:
    return {name: str(form.get(name, "")).strip() for name in FIELDS}


def _list_page(request: Request, db: Session, user: StaffUser, *, status_code: int = 200,
               errors: dict[str, str] | None = None,
               typed: dict[str, str] | None = None) -> Response:
    key = request.query_params.get("done", "")
    found = series.list_series(db, user)
    if not permissions.is_admin(user):
        found = [s for s in found if s.unit_id == user.unit_id]
    return render(request, "console/series.html", status_code=status_code,
                  items=series.series_public(db, found), units=units.list_units(db),
                  own_unit=units.get_unit(db, user.unit_id) if user.unit_id else None,
                  unit_fixed=user.role == Role.editor, errors=errors or {}, typed=typed or {},
                  done=gettext(DONE[key]) if key in DONE else "")


@router.get("/series")
def series_list(request: Request, db: SessionDep, user: ConsoleStaff) -> Response:
    _require_unit_staff(user)
    return _list_page(request, db, user)


@router.post("/series")
def create_series(request: Request, db: SessionDep, user: ConsoleStaff,
                  form: PostedForm) -> Response:
    _require_unit_staff(user)
    typed = _typed(form)
    if user.role == Role.editor:
        typed["unit_id"] = str(user.unit_id or "")  # an editor acts for their own unit only
    raw = typed["unit_id"]
    data = {**typed, "unit_id": int(raw) if raw.isdecimal() and len(raw) < 10 else None}
    try:
        created = series.create_series(db, user, series.SeriesCreate.model_validate(data))
    except (ValidationError, DomainError) as exc:
        db.rollback()
        status = exc.status if isinstance(exc, DomainError) else 422
        return _list_page(request, db, user, status_code=status, errors=_errors(exc),
                          typed=typed)
    return see_other(f"/console/series/{created.id}?done=series_created")


def _edit_page(request: Request, db: Session, user: StaffUser, found: series.Series, *,
               status_code: int = 200, errors: dict[str, str] | None = None,
               typed: dict[str, str] | None = None) -> Response:
    assert found.id is not None
    key = request.query_params.get("done", "")
    values = typed or {"title": found.title, "summary": found.summary}
    return render(request, "console/series_edit.html", status_code=status_code,
                  series=series.series_public(db, [found])[0], values=values,
                  members=series.public_sessions(db, found.id), errors=errors or {},
                  may_delete=permissions.is_admin(user),
                  done=gettext(DONE[key]) if key in DONE else "")


def _manageable(db: Session, user: StaffUser, series_id: int) -> series.Series:
    _require_unit_staff(user)
    found = series.get_visible_series(db, series_id, user)
    permissions.require_unit_editor(user, found.unit_id)
    return found


@router.get("/series/{series_id:int}")
def edit_series(series_id: int, request: Request, db: SessionDep,
                user: ConsoleStaff) -> Response:
    return _edit_page(request, db, user, _manageable(db, user, series_id))


@router.post("/series/{series_id:int}")
def update_series(series_id: int, request: Request, db: SessionDep, user: ConsoleStaff,
                  form: PostedForm) -> Response:
    found = _manageable(db, user, series_id)
    typed = {name: str(form.get(name, "")).strip() for name in ("title", "summary")}
    try:
        series.update_series(db, user, series_id, series.SeriesUpdate.model_validate(typed))
    except (ValidationError, DomainError) as exc:
        db.rollback()
        status = exc.status if isinstance(exc, DomainError) else 422
        return _edit_page(request, db, user, found, status_code=status, errors=_errors(exc),
                          typed=typed)
    return see_other(f"/console/series/{series_id}?done=series_saved")


@router.post("/series/{series_id:int}/delete")
def delete_series(series_id: int, db: SessionDep, user: ConsoleStaff,
                  form: PostedForm) -> Response:
    series.delete_series(db, user, series_id)
    return see_other("/console/series?done=series_deleted")


def form_choices(db: Session, user: StaffUser, values: dict[str, Any]) -> dict[str, Any]:
    """The session form's theme checkboxes and series options: the active themes (and a
    retired one the session has), the series the user may choose (and the session's own)."""
    chosen = set(values.get("themes") or [])
    theme_rows = [t for t in themes.list_themes(db, include_retired=True)
                  if t.retired_at is None or t.code in chosen]
    offered = series.list_series(db, user)
    if not permissions.is_admin(user):
        offered = [s for s in offered if s.unit_id == user.unit_id]
    current = str(values.get("series_id") or "")
    if current.isdecimal() and len(current) < 10 and \
            int(current) not in {s.id for s in offered}:
        kept = db.get(series.Series, int(current))
        if kept is not None:
            offered.append(kept)
    names = {u.id: u.name for u in units.list_units(db, include_retired=True)}
    return {"theme_options": theme_rows,
            "series_options": [(str(s.id), s.title, names.get(s.unit_id, "")) for s in offered],
            "max_themes": themes.MAX_THEMES}
