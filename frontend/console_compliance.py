"""Console pages of quota compliance: the district office's dashboard, a unit's drill-down, the
printable report and the year's rules; and the card an editor sees on the console home.

Handlers read events.quotas and render; the rules and the statuses live there.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError
from sqlmodel import Session
from starlette.datastructures import FormData

from events import permissions, quotas, units
from events.errors import DomainError, NotFound
from events.models import EventKind, QuotaRule, Role, StaffUser, UnitCategory
from events.timeutil import utcnow
from frontend import compliance_plan_views as plan_views
from frontend import compliance_views as views
from frontend.console_auth import ConsoleRoute, ConsoleStaff, see_other
from frontend.i18n import N_, gettext
from frontend.templating import format_datetime, render
from server.deps import PostedForm, SessionDep, SettingsDep, public_url
from streaming import audience

MAX_RULE_ROWS = 40
BLANK_RULE_ROWS = 1
RULE_FIELDS = ("category", "kind", "required", "deadline")
RULE_KINDS = tuple(EventKind)
RULE_CATEGORIES = (UnitCategory.livelihood, UnitCategory.subdistrict)
RULE_MESSAGES = {
    "category": N_("Choose the units the rule applies to."),
    "kind": N_("Choose a kind of session."),
    "required": N_("Enter how many sessions, a whole number from 1 to 100."),
    "deadline": N_("Enter a date within the year, or leave it empty for the whole year."),
    "duplicate_rule": N_("This rule appears twice: the same units, kind and deadline."),
    "too_many_rules": N_("Too many rules: at most 50 a year."),
    "form": N_("The rules could not be saved. Check the rows marked below."),
}
# events.quotas' error codes, as the form's messages.
DOMAIN_CODES = {"no_quota_category": "category", "deadline_outside_year": "deadline",
                "duplicate_rule": "duplicate_rule", "too_many_rules": "too_many_rules"}
DONE = {"rules_saved": N_("The rules are saved. The dashboard counts with them now.")}

router = APIRouter(prefix="/console", include_in_schema=False, route_class=ConsoleRoute)


def _base_url(request: Request) -> str:
    return public_url(request)


# ---- the dashboard --------------------------------------------------------------------------

def _plan_parts(report: quotas.ComplianceReport, settings: Any,
                chart_id: str) -> dict[str, Any]:
    """The broadcast plan and the questions of the report's units, for the templates."""
    found = plan_views.shown(plan_views.rows(report))
    return {"plan_rows": found, "plan_totals": plan_views.totals(found), "pv": plan_views,
            "answer_days": settings.answer_days,
            "plan_chart": plan_views.plan_chart(found, report.year, chart_id)}


@router.get("/compliance")
def dashboard(request: Request, db: SessionDep, settings: SettingsDep,
              user: ConsoleStaff) -> Response:
    permissions.require_admin(user)
    year = views.parse_year(request.query_params.get("year"))
    category = views.parse_category(request.query_params.get("category"))
    report = quotas.compute(db, year, category=category or None, settings=settings,
                            accountable=True)
    rows = views.unit_rows(report)
    shown_ids = {row.id for row in rows}
    counts = views.monthly_counts(views.events_of_year(db, year, user), year,
                                  shown_ids if category else None)
    return render(
        request, "console/compliance.html", year=year, category=category, rows=rows,
        groups=views.grouped(rows), columns=views.columns(rows), summary=views.summary(rows),
        months=views.monthly_chart(counts, year), status_chart=views.status_chart(rows),
        years=views.year_choices(year), category_filters=views.CATEGORY_FILTERS,
        today=views.date_text(report.today), v=views, **_plan_parts(report, settings, "chart-plan"))


# ---- one unit -------------------------------------------------------------------------------

def _unit_report(db: Session, settings: Any, code: str,
                 year: int) -> tuple[views.UnitRow, Any]:
    unit = units.get_unit_by_code(db, code) if len(code) <= 40 else None
    if unit is None or unit.id is None:
        raise NotFound("unit_not_found", f"no unit with code {code!r}")
    report = quotas.compute(db, year, unit_id=unit.id, settings=settings, accountable=True)
    rows = views.unit_rows(report)
    if not rows:
        raise NotFound("unit_not_found", f"no unit with code {code!r}")
    return rows[0], report


@router.get("/compliance/units/{code}")
def unit_page(code: str, request: Request, db: SessionDep, settings: SettingsDep,
              user: ConsoleStaff) -> Response:
    year = views.parse_year(request.query_params.get("year"))
    row, report = _unit_report(db, settings, code, year)
    permissions.require_unit_editor(user, row.id)
    views.with_webcasts([row], audience.evidence_of(
        db, sorted({e.id for r in row.requirements for e in r.evidence})))
    (accountable,) = plan_views.rows(report)
    return render(request, "console/compliance_unit.html", year=year, row=row,
                  years=views.year_choices(year), today=views.date_text(report.today),
                  v=views, pv=plan_views, accountable=accountable,
                  answer_days=settings.answer_days)


# ---- the editor's card ----------------------------------------------------------------------

def editor_card(db: Session, user: StaffUser) -> dict[str, Any] | None:
    """This year's standing of an editor's own unit, for the console home; None for others."""
    if user.role != Role.editor or user.unit_id is None:
        return None
    year = views.this_year()
    report = quotas.compute(db, year, unit_id=user.unit_id)
    rows = views.unit_rows(report)
    if not rows:
        return None
    return {"year": year, "row": rows[0], "v": views}


# ---- the printable report -------------------------------------------------------------------

@router.get("/compliance/report")
def printable_report(request: Request, db: SessionDep, settings: SettingsDep,
                     user: ConsoleStaff) -> Response:
    permissions.require_admin(user)
    year = views.parse_year(request.query_params.get("year"))
    report = quotas.compute(db, year, settings=settings, accountable=True)
    rows = views.unit_rows(report)
    counts = views.monthly_counts(views.events_of_year(db, year, user), year)
    return render(
        request, "console/compliance_report.html", year=year, rows=rows,
        groups=views.grouped(rows), columns=views.columns(rows), summary=views.summary(rows),
        months=views.monthly_chart(counts, year), status_chart=views.status_chart(rows),
        generated=format_datetime(utcnow()), today=views.date_text(report.today), v=views,
        base_url=_base_url(request), generated_by=user.display_name or user.username,
        **_plan_parts(report, settings, "r-chart-plan"))


# ---- the year's rules -----------------------------------------------------------------------

def _rule_values(rule: QuotaRule) -> dict[str, str]:
    deadline = rule.deadline.isoformat() if rule.deadline else ""
    return {"category": rule.category.value, "kind": rule.kind.value,
            "required": str(rule.required), "deadline": deadline, "id": str(rule.id or ""),
            "remove": ""}


def _blank_row() -> dict[str, str]:
    return {"category": "", "kind": "", "required": "", "deadline": "", "id": "", "remove": ""}


def _typed_rows(form: FormData) -> tuple[list[dict[str, str]], list[int]]:
    """The rows as typed, and the indexes of those ticked for removal."""
    count_raw = str(form.get("rows", "0"))
    count = min(int(count_raw), MAX_RULE_ROWS) if count_raw.isdecimal() else 0
    rows, removed = [], []
    for index in range(count):
        row = {name: str(form.get(f"{name}-{index}", "")).strip()[:20] for name in RULE_FIELDS}
        row["id"] = ""
        row["remove"] = "1" if form.get(f"remove-{index}") else ""
        rows.append(row)
        if row["remove"]:
            removed.append(index)
    return rows, removed


def _rule_in(row: dict[str, str], year: int) -> tuple[quotas.RuleIn | None, dict[str, str]]:
    """One typed row as the domain's RuleIn, or the messages of what is wrong with it."""
    errors: dict[str, str] = {}
    if row["category"] not in {c.value for c in RULE_CATEGORIES}:
        errors["category"] = gettext(RULE_MESSAGES["category"])
    if row["kind"] not in {k.value for k in RULE_KINDS}:
        errors["kind"] = gettext(RULE_MESSAGES["kind"])
    raw = row["required"]
    if not (raw.isdecimal() and 1 <= int(raw) <= 100):
        errors["required"] = gettext(RULE_MESSAGES["required"])
    deadline: date | None = None
    if row["deadline"]:
        try:
            deadline = date.fromisoformat(row["deadline"])
        except ValueError:
            deadline = None
        if deadline is None or deadline.year != year:
            errors["deadline"] = gettext(RULE_MESSAGES["deadline"])
    if errors:
        return None, errors
    try:
        return quotas.RuleIn(category=UnitCategory(row["category"]), kind=EventKind(row["kind"]),
                             required=int(raw), deadline=deadline), {}
    except ValidationError:
        return None, {"form": gettext(RULE_MESSAGES["form"])}


def _rules_page(request: Request, db: Session, year: int, rows: list[dict[str, str]], *,
                status_code: int = 200, errors: dict[int, dict[str, str]] | None = None,
                message: str = "") -> Response:
    done_key = request.query_params.get("done", "")
    source = quotas.carried_from(db, year)
    return render(
        request, "console/compliance_rules.html", status_code=status_code, year=year,
        rows=rows, errors=errors or {}, message=message, years=views.year_choices(year),
        done=gettext(DONE[done_key]) if done_key in DONE else "", v=views,
        carried_from=source if source != year else None,
        categories=[(c.value, gettext(views.CATEGORY_HEADINGS[c.value]))
                    for c in RULE_CATEGORIES],
        kinds=[(k.value, views.kind_label(k.value)) for k in RULE_KINDS])


@router.get("/compliance/rules")
def rules_form(request: Request, db: SessionDep, user: ConsoleStaff) -> Response:
    permissions.require_admin(user)
    year = views.parse_year(request.query_params.get("year"))
    rows = [_rule_values(rule) for rule in quotas.rules_for_year(db, year)]
    return _rules_page(request, db, year, rows + [_blank_row() for _ in range(BLANK_RULE_ROWS)])


@router.post("/compliance/rules")
def save_rules(request: Request, db: SessionDep, user: ConsoleStaff, form: PostedForm) -> Response:
    permissions.require_admin(user)
    year = views.parse_year(request.query_params.get("year"))
    typed, removed = _typed_rows(form)
    if form.get("action") == "add_row":
        return _rules_page(request, db, year, typed + [_blank_row()])
    kept = [(i, row) for i, row in enumerate(typed)
            if i not in removed and any(row[name] for name in RULE_FIELDS)]
    errors: dict[int, dict[str, str]] = {}
    rules: list[quotas.RuleIn] = []
    seen: dict[tuple[str, str, str], int] = {}
    for index, row in kept:
        rule, row_errors = _rule_in(row, year)
        key = (row["category"], row["kind"], row["deadline"])
        if rule is not None and key in seen:
            row_errors = {"form": gettext(RULE_MESSAGES["duplicate_rule"])}
        seen.setdefault(key, index)
        if row_errors:
            errors[index] = row_errors
        elif rule is not None:
            rules.append(rule)
    if not errors:
        try:
            quotas.set_rules(db, user, year, rules)
        except DomainError as exc:
            db.rollback()
            message = gettext(RULE_MESSAGES[DOMAIN_CODES.get(exc.code, "form")])
            return _rules_page(request, db, year, [row for _i, row in kept],
                               status_code=exc.status, message=message)
        return see_other(f"/console/compliance/rules?year={year}&done=rules_saved")
    return _rules_page(request, db, year, typed, status_code=422, errors=errors,
                       message=gettext(RULE_MESSAGES["form"]))

