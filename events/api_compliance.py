"""HTTP for quota compliance: the published report (JSON, CSV) and the yearly rules.

The report is public: the plan asks that results be published, and it counts only published
sessions. Editing the rules is for the district office (admins).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from events import compliance_report, permissions, quotas, units
from events.errors import Invalid
from events.schemas import ComplianceReportPublic, QuotaRulesPublic, answer
from server.deps import JSONRoute, SessionDep, SettingsDep, StaffDep

router = APIRouter(prefix="/api", route_class=JSONRoute)

YearParam = Annotated[str | None, Query(max_length=10)]
CategoryParam = Annotated[str | None, Query(max_length=20)]
UnitParam = Annotated[str | None, Query(max_length=40)]


class RulesIn(BaseModel):
    rules: list[quotas.RuleIn] = Field(max_length=quotas.MAX_RULES)


def parse_year(value: str | None) -> int:
    """The year asked for (this Beijing year when none); 422 for anything but 2000-2100."""
    if value is None or value.strip() == "":
        return quotas.today_local().year
    text = value.strip()
    if not (text.isascii() and text.isdigit()):
        raise Invalid("invalid_year", f"year: expected a number like 2018, got {value!r}",
                      field="year")
    return quotas.check_year(int(text))


def _unit_id(db: SessionDep, unit: str | None) -> int | None:
    """A unit by code, or by id when it is a number."""
    if unit is None or unit == "":
        return None
    if unit.isascii() and unit.isdigit() and len(unit) < 10:
        return units.get_unit(db, int(unit)).id
    return units.get_unit_by_code(db, unit).id


def _report(db: SessionDep, settings: SettingsDep, year: str | None, category: str | None,
            unit: str | None) -> quotas.ComplianceReport:
    return quotas.compute(db, parse_year(year), category=category or None,
                          unit_id=_unit_id(db, unit), settings=settings, accountable=True)


def _csv(text: str, filename: str, related: str = "") -> Response:
    # The BOM lets Excel read the file as UTF-8.
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if related:
        headers["Link"] = f'<{related}>; rel="related"'
    return Response("\ufeff" + text, media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/compliance", response_model=ComplianceReportPublic,
            responses={404: {"description": "`unit_not_found`"}})
def compliance(db: SessionDep, settings: SettingsDep, year: YearParam = None,
               category: CategoryParam = None, unit: UnitParam = None) -> Response:
    # The same text `kaifang compliance --format json` prints.
    report = _report(db, settings, year, category, unit)
    return Response(compliance_report.report_json(report), media_type="application/json")


@router.get("/compliance.csv", response_class=Response, responses={
    200: {"description": "The report as CSV (UTF-8 with BOM), one row per unit and requirement",
          "content": {"text/csv": {"schema": {"type": "string"}}}},
    404: {"description": "`unit_not_found`"}})
def compliance_csv(db: SessionDep, settings: SettingsDep, year: YearParam = None,
                   category: CategoryParam = None, unit: UnitParam = None) -> Response:
    report = _report(db, settings, year, category, unit)
    # The per-session questions are a file of their own; the Link header names it.
    return _csv(compliance_report.report_csv(report), f"compliance-{report.year}.csv",
                f"/api/compliance/sessions.csv?year={report.year}")


@router.get("/compliance/sessions.csv", response_class=Response, responses={
    200: {"description": "Citizens' questions per session (UTF-8 with BOM), one row per "
                         "session a unit led in the year",
          "content": {"text/csv": {"schema": {"type": "string"}}}},
    404: {"description": "`unit_not_found`"}})
def compliance_sessions_csv(db: SessionDep, settings: SettingsDep, year: YearParam = None,
                            category: CategoryParam = None,
                            unit: UnitParam = None) -> Response:
    report = _report(db, settings, year, category, unit)
    return _csv(compliance_report.report_sessions_csv(report),
                f"compliance-sessions-{report.year}.csv")


@router.get("/compliance/rules")
def rules(db: SessionDep, year: YearParam = None) -> QuotaRulesPublic:
    return answer(QuotaRulesPublic, quotas.rules_public(db, parse_year(year)))


@router.put("/compliance/rules")
def set_rules(body: RulesIn, db: SessionDep, user: StaffDep,
              year: YearParam = None) -> QuotaRulesPublic:
    permissions.require_admin(user)
    if year is None or year.strip() == "":
        raise Invalid("invalid_year", "year: say which year's rules these are", field="year")
    chosen = parse_year(year)
    quotas.set_rules(db, user, chosen, body.rules)
    return answer(QuotaRulesPublic, quotas.rules_public(db, chosen))
