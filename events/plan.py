"""The year's broadcast plan (直播计划, issue 18; the plan's 二(四)): items imported or entered
by the office, each carried out by one broadcast session, with its production steps and a state.

THE INTERFACE (foundation): the plan helper implements every function below and may add more;
pages (frontend/console_plan.py, portal_plan.py) and the compliance report read only these.

Steps of an item, in order, who does them, and when each is due (dates in Beijing):
- material  (the lead unit uploads its written material; staff-only files)
- script    (the press office — a unit with press_office, or an admin — uploads the script)
- recording (the linked session's recording uploaded: events.plan_media)
- announced (the linked session published with its premiere_at, at least
             KAIFANG_ANNOUNCE_DAYS before the premiere)
- archived  (the video on the portal, within KAIFANG_ARCHIVE_DAYS after the premiere)
States: planned | on_track | at_risk | done | late | missed (see `item_state`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlmodel import Session

from events.models import Event, PlanFile, PlanItem, Theme, Unit
from server.config import Settings

STATES = ("planned", "on_track", "at_risk", "done", "late", "missed")
STEPS = ("material", "script", "recording", "announced", "archived")
# Who does each step: the lead unit, or the press office.
STEP_OWNERS = {"material": "lead_unit", "script": "press_office", "recording": "lead_unit",
               "announced": "lead_unit", "archived": "lead_unit"}


@dataclass
class StepView:
    step: str  # one of STEPS
    owner: str  # lead_unit | press_office
    # The Beijing date it is due by; None while it cannot be known (no session linked yet).
    due: date | None
    done_at: datetime | None
    # Done after `due`, or not done and `due` has passed.
    late: bool
    files: list[PlanFile] = field(default_factory=list)  # material and script only


@dataclass
class ItemView:
    item: PlanItem
    unit: Unit
    theme: Theme | None
    event: Event | None  # the linked session, if any
    steps: list[StepView]
    state: str  # one of STATES
    # Why it is at_risk, late or missed, as a code (e.g. "no_session", "script_missing",
    # "announced_late"); "" otherwise. The API gives it as is, pages translate it.
    reason: str


@dataclass
class Adherence:
    """One unit's items of a year, by state (the compliance report's plan columns)."""

    total: int = 0
    planned: int = 0
    on_track: int = 0
    at_risk: int = 0
    done: int = 0
    late: int = 0
    missed: int = 0


class PlanCsvInvalid(Exception):
    """A plan file that cannot be imported: every bad line, nothing imported. The router
    answers 422 {error: "invalid_csv", lines: [{line, field, message}]}."""

    def __init__(self, lines: list[dict[str, object]]) -> None:
        super().__init__(f"{len(lines)} bad line(s)")
        self.lines = lines


def items_of_year(db: Session, year: int, settings: Settings,
                  now: datetime | None = None, unit_id: int | None = None) -> list[ItemView]:
    """The year's items (of one unit when `unit_id`), by month then file order, judged `now`."""
    raise NotImplementedError


def item_view(db: Session, item_id: int, settings: Settings,
              now: datetime | None = None) -> ItemView:
    """One item (NotFound when there is none)."""
    raise NotImplementedError


def adherence(db: Session, year: int, settings: Settings,
              now: datetime | None = None) -> dict[int, Adherence]:
    """Per lead unit id, its items of the year by state (units without items are absent)."""
    raise NotImplementedError


def remind_due(db: Session, settings: Settings) -> int:
    """Reminds each lead unit of a plan item's step that is due soon or late (once per step
    and threshold); returns the reminders written."""
    return 0
