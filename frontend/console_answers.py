"""The questions still waiting for an answer, per unit, flagged in the console (issue 18):
/console/answers lists the public questions of sessions already over that have neither a
written answer nor a moment in the recording — an editor's unit's, a host's assigned
sessions', every unit's for the district office (filter ?unit=CODE) — the overdue ones
(answer_days after the session) flagged 逾期未答 with the days since it, each with a link to the
session's questions panel where it is answered. What counts is streaming.answers'."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from events import units
from events.models import Role
from events.timeutil import utcnow
from frontend.console_auth import ConsoleRoute, ConsoleStaff
from frontend.templating import render
from server.deps import SessionDep
from streaming import answers

router = APIRouter(prefix="/console", include_in_schema=False, route_class=ConsoleRoute)


def _sessions(found: list[answers.OpenQuestion]) -> list[dict[str, Any]]:
    """The open questions by session, in the order found (the longest waiting first)."""
    grouped: dict[int, dict[str, Any]] = {}
    for item in found:
        session = grouped.setdefault(item.event.id or 0, {
            "event": item.event, "days_since": item.days_since, "overdue": item.overdue,
            "questions": []})
        session["questions"].append(item.question)
    return list(grouped.values())


@router.get("/answers")
def open_answers(request: Request, db: SessionDep, user: ConsoleStaff) -> Response:
    days = request.app.state.settings.answer_days
    chosen = request.query_params.get("unit", "").strip()[:40]
    all_units = units.list_units(db) if user.role == Role.admin else []
    unit = next((u for u in all_units if u.code == chosen), None)
    found = answers.open_for(db, user, utcnow(), days, unit_id=unit.id if unit else None)
    names = {u.id: u.name for u in all_units}
    return render(request, "console/answers.html", sessions=_sessions(found),
                  open_count=len(found), overdue_count=sum(item.overdue for item in found),
                  answer_days=days, all_units=all_units, chosen=unit.code if unit else "",
                  unit_names=names)
