"""The public page of a year's results: what each unit held, and where it stands on its quota.

The plan asks that results be published. The statuses come from events.quotas; the sessions
listed are the public ones that were held and closed out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from events import closeout, quotas, sessions
from frontend import compliance_views as views
from frontend.portal import UnitView, unit_directory
from frontend.templating import render
from server.deps import SessionDep

router = APIRouter(include_in_schema=False)


@dataclass
class HeldSession:
    id: int
    title: str
    kind: str
    starts_at: Any
    organiser: UnitView
    role: str  # "lead" | "cohost"


@dataclass
class UnitResult:
    unit: UnitView
    status: str
    requirements: list[views.RequirementView]
    held: list[HeldSession] = field(default_factory=list)


@router.get("/results")
def results(request: Request, db: SessionDep) -> Response:
    year = min(views.parse_year(request.query_params.get("year")), views.this_year())
    report = quotas.compute(db, year)
    directory = unit_directory(db)
    rows = views.unit_rows(report)
    by_unit = {row.id: UnitResult(unit=directory[row.id], status=row.status,
                                  requirements=row.requirements) for row in rows}
    held = closeout.held(views.events_of_year(db, year, viewer=None))
    cohosts = sessions.cohost_ids(db, [e.id for e in held if e.id is not None])
    for event in held:
        assert event.id is not None
        hosts = [(event.unit_id, "lead")] + [(u, "cohost") for u in cohosts[event.id]]
        for unit_id, role in hosts:
            if unit_id in by_unit:
                by_unit[unit_id].held.append(HeldSession(
                    id=event.id, title=event.title, kind=event.kind.value,
                    starts_at=event.starts_at, organiser=directory[event.unit_id], role=role))
    groups = []
    for key, heading, members in views.grouped(rows):
        shown = [by_unit[row.id] for row in members if row.has_quota or by_unit[row.id].held]
        if shown:
            groups.append((key, heading, shown))
    years = [y for y in views.year_choices(year) if y <= views.this_year()]
    return render(request, "portal/results.html", section="results", year=year, groups=groups,
                  summary=views.summary(rows), years=years,
                  held_count=len(held), today=views.date_text(report.today), v=views)
