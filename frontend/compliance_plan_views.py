"""What the compliance pages show of the broadcast plan and the citizens' questions (issue 18),
shaped from events.quotas' report (its units' `accountability`): labels, rows, the charts.

It decides nothing: the plan's states are events.plan's, the questions' counts
events.question_stats'. Shared by the dashboard, the unit's drill-down and the printable report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from events.accountability import median_text
from frontend import charts
from frontend.i18n import gettext
from frontend.plan_views import STATE_COLORS, STATE_ICONS, state_label

# The plan's states, from the best to the worst, as the bars stack them.
PLAN_STATES = ("done", "on_track", "planned", "at_risk", "late", "missed")
# Words, icons and colours are the plan pages' (frontend/plan_views.py): a state reads the
# same everywhere, and never rests on colour alone.


@dataclass
class PlanView:
    total: int
    counts: dict[str, int]  # state -> items

    @property
    def states(self) -> list[tuple[str, int]]:
        """The states that have items, in PLAN_STATES' order."""
        return [(state, self.counts[state]) for state in PLAN_STATES if self.counts[state]]


@dataclass
class SessionView:
    id: int
    title: str
    starts_at: datetime
    received: int
    approved: int
    answered_live: int
    answered_written: int
    open: int
    overdue: int
    median: str  # days, "" while nothing is answered


@dataclass
class AccountabilityRow:
    id: int
    code: str
    name: str
    plan: PlanView
    received: int
    open: int
    overdue: int
    sessions: list[SessionView]

    @property
    def has_questions(self) -> bool:
        return self.received > 0


def plan_view(adherence: Any) -> PlanView:
    return PlanView(total=adherence.total,
                    counts={state: getattr(adherence, state) for state in PLAN_STATES})


def session_view(session: Any) -> SessionView:
    event, stats = session.event, session.stats
    return SessionView(id=event.id, title=event.title, starts_at=event.starts_at,
                       received=stats.received, approved=stats.approved,
                       answered_live=stats.answered_live,
                       answered_written=stats.answered_written, open=stats.open,
                       overdue=stats.overdue, median=median_text(stats.median_days))


def rows(report: Any) -> list[AccountabilityRow]:
    """Every unit of the report, in its order, with its plan and its questions."""
    out = []
    for compliance in report.units:
        unit, found = compliance.unit, compliance.accountability
        out.append(AccountabilityRow(
            id=unit.id, code=unit.code, name=unit.name, plan=plan_view(found.plan),
            received=found.questions.received, open=found.questions.open,
            overdue=found.questions.overdue,
            sessions=[session_view(s) for s in found.sessions]))
    return out


def shown(found: Sequence[AccountabilityRow]) -> list[AccountabilityRow]:
    """The units with something to show: items in the plan, or questions received."""
    return [row for row in found if row.plan.total or row.received]


def totals(found: Sequence[AccountabilityRow]) -> dict[str, int]:
    counts = {state: sum(row.plan.counts[state] for row in found) for state in PLAN_STATES}
    return {"total": sum(row.plan.total for row in found), **counts,
            "received": sum(row.received for row in found),
            "open": sum(row.open for row in found),
            "overdue": sum(row.overdue for row in found)}


def plan_chart(found: Sequence[AccountabilityRow], year: int,
               chart_id: str = "chart-plan") -> dict[str, Any] | None:
    """The year's items by lead unit and state (stacked bars); None when the plan is empty."""
    planned = [row for row in found if row.plan.total]
    if not planned:
        return None
    series = [charts.Series(f"{STATE_ICONS[s]} {state_label(s)}",
                            [row.plan.counts[s] for row in planned], STATE_COLORS[s])
              for s in PLAN_STATES]
    title = gettext("The %(year)s broadcast plan by lead unit") % {"year": year}
    all_items = totals(planned)
    description = gettext("%(total)s items: %(done)s done, %(late)s late, %(missed)s missed; "
                          "the table below gives each unit's numbers.") % all_items
    svg = charts.stacked_rows(chart_id, title, description, [row.name for row in planned],
                              series, width=440, label_width=96)
    return {"svg": svg, "title": title}
