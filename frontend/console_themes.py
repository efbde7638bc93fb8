"""Console: the office's list of themes (add, rename, retire, bring back); events.themes
holds the rules."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError
from sqlmodel import Session

from events import permissions, themes
from events.errors import DomainError
from frontend import console_forms as forms
from frontend.console_auth import ConsoleRoute, ConsoleStaff, see_other
from frontend.i18n import N_, gettext
from frontend.templating import render
from server.deps import PostedForm, SessionDep

DONE = {
    "theme_created": N_("The theme is added: units can choose it now."),
    "theme_saved": N_("The theme is saved."),
    "theme_retired": N_("The theme is retired: it is offered no more, and stays on the "
                        "sessions that have it."),
    "theme_restored": N_("The theme is offered again."),
}
CODE_MESSAGES = {
    "theme_exists": ("code", N_("A theme with this code exists already.")),
    "required": ("name", N_("This field is required.")),
}
BAD_CODE = N_("A code is 2-40 lower-case letters, digits or '-', e.g. air-quality.")

router = APIRouter(prefix="/console", include_in_schema=False, route_class=ConsoleRoute)


def _errors(exc: ValidationError | DomainError) -> dict[str, str]:
    if isinstance(exc, DomainError):
        field, text = CODE_MESSAGES.get(exc.code, (forms.domain_error_field(exc, "form"),
                                                   N_("Please check this field.")))
        return {field: gettext(text)}
    errors = forms.validation_messages(exc)
    if "code" in errors:
        errors["code"] = gettext(BAD_CODE)
    return errors


def _page(request: Request, db: Session, *, status_code: int = 200,
          errors: dict[str, str] | None = None, typed: dict[str, str] | None = None,
          failed: str = "") -> Response:
    key = request.query_params.get("done", "")
    return render(request, "console/themes.html", status_code=status_code,
                  themes=themes.list_themes(db, include_retired=True), errors=errors or {},
                  typed=typed or {}, failed=failed,
                  done=gettext(DONE[key]) if key in DONE else "")


@router.get("/themes")
def themes_page(request: Request, db: SessionDep, user: ConsoleStaff) -> Response:
    permissions.require_admin(user)
    return _page(request, db)


@router.post("/themes")
def create_theme(request: Request, db: SessionDep, user: ConsoleStaff,
                 form: PostedForm) -> Response:
    permissions.require_admin(user)
    typed = {name: str(form.get(name, "")).strip() for name in ("code", "name", "name_en")}
    try:
        themes.create_theme(db, user, themes.ThemeCreate.model_validate(typed))
    except (ValidationError, DomainError) as exc:
        db.rollback()
        status = exc.status if isinstance(exc, DomainError) else 422
        return _page(request, db, status_code=status, errors=_errors(exc), typed=typed)
    return see_other("/console/themes?done=theme_created")


@router.post("/themes/{code}")
def update_theme(code: str, request: Request, db: SessionDep, user: ConsoleStaff,
                 form: PostedForm) -> Response:
    permissions.require_admin(user)
    action = str(form.get("action", "save"))
    typed = {name: str(form.get(name, "")).strip() for name in ("name", "name_en")}
    if action in ("retire", "restore"):
        change: dict[str, object] = {"retired": action == "retire"}
        done = "theme_retired" if action == "retire" else "theme_restored"
    else:
        change, done = dict(typed), "theme_saved"
    try:
        themes.update_theme(db, user, code[:40], themes.ThemeUpdate.model_validate(change))
    except (ValidationError, DomainError) as exc:
        db.rollback()
        if isinstance(exc, DomainError) and exc.status == 404:
            raise
        status = exc.status if isinstance(exc, DomainError) else 422
        return _page(request, db, status_code=status, errors=_errors(exc), typed=typed,
                     failed=code)
    return see_other(f"/console/themes?done={done}#theme-{code}")
