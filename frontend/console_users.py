"""The console's account pages: the district office adds staff, changes roles and units,
deactivates accounts and resets passwords. Forms post and redirect; the rules live in
events/staff.py."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError
from sqlmodel import Session

from events import permissions, staff, units
from events.errors import DomainError
from events.models import Role
from frontend import console_forms as forms
from frontend.console_auth import ConsoleRoute, ConsoleStaff, see_other
from frontend.i18n import N_, gettext
from frontend.templating import render
from server.deps import PostedForm, SessionDep, SettingsDep, SignerDep, start_staff_session

DONE = {
    "user_created": N_("The account is created. Give the user their username and password."),
    "user_saved": N_("The account is saved."),
    "user_deactivated": N_("The account is deactivated; it can no longer sign in."),
    "user_activated": N_("The account is active again."),
}
# Domain error codes, as the sentence shown beside the field, and the field it belongs to.
CODE_MESSAGES = {
    "invalid_username": ("username",
                         N_("A username is 2-60 letters, digits, '_', '.' or '-', e.g. wang.li.")),
    "username_taken": ("username", N_("This username is taken: choose another.")),
    "unit_required": ("unit_id", N_("An editor works for a unit: choose one.")),
    "unknown_unit": ("unit_id", N_("Choose an active unit.")),
    "cannot_change_self": ("form", N_(
        "You cannot deactivate your own account or give up your own admin role. "
        "Ask another admin.")),
}
SHORT_PASSWORD = N_("A password needs at least %(n)s characters.")
CREATE_FIELDS = ("username", "display_name", "role", "unit_id", "password")
EDIT_FIELDS = ("display_name", "role", "unit_id", "password")
TOGGLES = ("deactivate", "activate")

router = APIRouter(prefix="/console", include_in_schema=False, route_class=ConsoleRoute)


def _users_page(request: Request, db: Session, *, status_code: int = 200,
                errors: dict[str, str] | None = None, typed: dict[str, str] | None = None,
                failed_id: int = 0) -> Response:
    key = request.query_params.get("done", "")
    all_units = units.list_units(db, include_retired=True)
    return render(request, "console/users.html", status_code=status_code,
                  users=staff.list_users(db), roles=list(Role),
                  active_units=[u for u in all_units if u.retired_at is None],
                  unit_names={u.id: u.name for u in all_units},
                  errors=errors or {}, typed=typed or {}, failed_id=failed_id,
                  done=gettext(DONE[key]) if key in DONE else "")


def _errors(exc: ValidationError | DomainError, typed: dict[str, str]) -> dict[str, str]:
    if isinstance(exc, DomainError):
        if exc.code in CODE_MESSAGES:
            field, text = CODE_MESSAGES[exc.code]
            if exc.code == "cannot_change_self":
                field = forms.domain_error_field(exc, field)
            return {field: gettext(text)}
        return {forms.domain_error_field(exc, "form"): forms.domain_error_message(exc)}
    errors = forms.validation_messages(exc)
    if "password" in errors and typed.get("password"):
        errors["password"] = gettext(SHORT_PASSWORD) % {"n": staff.MIN_PASSWORD_LENGTH}
    if "username" in errors and typed.get("username"):
        errors["username"] = gettext(CODE_MESSAGES["invalid_username"][1])
    return errors


def _typed(form: Any, names: tuple[str, ...]) -> dict[str, str]:
    # Passwords are kept as typed: spaces may be part of them.
    return {name: str(form.get(name, "")) if name == "password"
            else str(form.get(name, "")).strip() for name in names}


def _unit_id(raw: str) -> int | None:
    return int(raw) if raw.isdecimal() and len(raw) < 10 else None


@router.get("/users")
def users_page(request: Request, db: SessionDep, user: ConsoleStaff) -> Response:
    permissions.require_admin(user)
    return _users_page(request, db)


@router.post("/users")
def create_user(request: Request, db: SessionDep, user: ConsoleStaff,
                form: PostedForm) -> Response:
    permissions.require_admin(user)
    typed = _typed(form, CREATE_FIELDS)
    data: dict[str, Any] = {**typed, "unit_id": _unit_id(typed["unit_id"]),
                            "role": typed["role"] or None}
    try:
        staff.create_user(db, user, staff.UserCreate.model_validate(data))
    except (ValidationError, DomainError) as exc:
        db.rollback()
        status = exc.status if isinstance(exc, DomainError) else 422
        return _users_page(request, db, status_code=status, errors=_errors(exc, typed),
                           typed=typed)
    return see_other("/console/users?done=user_created")


def _change(action: object, typed: dict[str, str]) -> tuple[dict[str, Any], str]:
    """The form's fields as a UserUpdate body, and the notice to show once saved."""
    if action in TOGGLES:
        done = "user_deactivated" if action == "deactivate" else "user_activated"
        return {"active": action == "activate"}, done
    change: dict[str, Any] = {"display_name": typed["display_name"],
                              "role": typed["role"] or None, "unit_id": _unit_id(typed["unit_id"])}
    if typed["password"]:
        change["password"] = typed["password"]  # empty: the password stays as it is
    return change, "user_saved"


@router.post("/users/{user_id}")
def update_user(user_id: int, request: Request, db: SessionDep, user: ConsoleStaff,
                form: PostedForm, signer: SignerDep, settings: SettingsDep) -> Response:
    permissions.require_admin(user)
    action = form.get("action")
    typed = _typed(form, EDIT_FIELDS)
    change, done = _change(action, typed)
    try:
        updated = staff.update_user(db, user, user_id, staff.UserUpdate.model_validate(change))
    except (ValidationError, DomainError) as exc:
        db.rollback()
        if isinstance(exc, DomainError) and exc.status == 404:
            raise
        status = exc.status if isinstance(exc, DomainError) else 422
        return _users_page(request, db, status_code=status, errors=_errors(exc, typed),
                           typed={} if action in TOGGLES else typed, failed_id=user_id)
    response = see_other(f"/console/users?done={done}#user-{user_id}")
    if updated.id == user.id:
        # A new password of your own ends your other sessions, not the one doing it.
        start_staff_session(response, signer, settings, updated)
    return response
