"""What the compliance report adds beyond the quota (issue 18): each unit's adherence to the
year's broadcast plan (events.plan) and its accountability for citizens' questions
(events.question_stats), per unit and per session.

A session's questions are its lead unit's to answer: they count for the lead unit only, never
for a co-host (each question once). The sessions looked at are those the unit led in the
Beijing year that were ever published (a draft never took a question).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, col, select

from events import plan, question_stats
from events.evidence import year_bounds
from events.models import Event
from events.plan import Adherence
from events.question_stats import QuestionStats
from server.config import Settings

QUESTION_COUNTS = ("received", "approved", "answered_live", "answered_written", "open",
                   "overdue")


@dataclass
class SessionQuestions:
    """One session of a unit, with its questions' stats."""

    event: Event
    stats: QuestionStats


@dataclass
class UnitAccountability:
    plan: Adherence = field(default_factory=Adherence)
    # The unit's sessions' counts summed (no median: it is per session).
    questions: QuestionStats = field(default_factory=QuestionStats)
    sessions: list[SessionQuestions] = field(default_factory=list)


def led_sessions(db: Session, year: int, unit_ids: list[int] | None = None) -> list[Event]:
    """The sessions led in the Beijing year and ever published, oldest first."""
    start, end = year_bounds(year)
    stmt = select(Event).where(col(Event.starts_at) >= start, col(Event.starts_at) < end,
                               col(Event.published_at).is_not(None))
    if unit_ids is not None:
        stmt = stmt.where(col(Event.unit_id).in_(unit_ids))
    return list(db.exec(stmt.order_by(col(Event.starts_at), col(Event.id))))


def summed(stats: list[QuestionStats]) -> QuestionStats:
    total = QuestionStats()
    for one in stats:
        for name in QUESTION_COUNTS:
            setattr(total, name, getattr(total, name) + getattr(one, name))
        total.overdue_ids.extend(one.overdue_ids)
    return total


def of_units(db: Session, year: int, unit_ids: list[int], settings: Settings,
             now: datetime, year_sessions: list[Event] | None = None
             ) -> dict[int, UnitAccountability]:
    """Each listed unit's plan adherence and questions in the year, judged `now`.
    `year_sessions`: the year's sessions already read (oldest first, any unit, published or
    not), which spares reading them again."""
    adherence = plan.adherence(db, year, settings, now)
    if year_sessions is None:
        events = led_sessions(db, year, unit_ids)
    else:
        wanted = set(unit_ids)
        events = [e for e in year_sessions
                  if e.published_at is not None and e.unit_id in wanted]
    stats = question_stats.stats_of(db, [e.id for e in events if e.id is not None], now)
    found = {unit_id: UnitAccountability(plan=adherence.get(unit_id, Adherence()))
             for unit_id in unit_ids}
    for event in events:
        if event.id is not None and event.unit_id in found:
            found[event.unit_id].sessions.append(
                SessionQuestions(event=event, stats=stats.get(event.id, QuestionStats())))
    for item in found.values():
        item.questions = summed([session.stats for session in item.sessions])
    return found


def plan_public(adherence: Adherence) -> dict[str, int]:
    return {"total": adherence.total, **{state: getattr(adherence, state)
                                         for state in plan.STATES}}


def questions_public(stats: QuestionStats) -> dict[str, int]:
    return {name: getattr(stats, name) for name in QUESTION_COUNTS}


def median_text(days: float | None) -> str:
    return "" if days is None else f"{days:.1f}".removesuffix(".0")
