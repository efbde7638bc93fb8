"""Citizens' questions as accountability evidence (issue 18, the plan's 二(一), 二(四)): per
session, how many were received, approved, answered live or in writing, still open, and how
long answers took. The questions are streaming's (streaming.answers registers the provider);
events/ (the compliance report, the CSV, the plan) reads them only through here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session


@dataclass
class QuestionStats:
    """One session's questions. `open` counts approved questions with no answer yet (neither
    a moment in the recording nor a written reply); `overdue` those of them still open
    answer_days (KAIFANG_ANSWER_DAYS) after the session ended. `median_days` runs from the
    session's end to each answer (0 for one answered live); None when nothing is answered."""

    received: int = 0
    approved: int = 0
    answered_live: int = 0
    answered_written: int = 0
    open: int = 0
    overdue: int = 0
    median_days: float | None = None
    # The overdue questions' ids, for the console's flags.
    overdue_ids: list[int] = field(default_factory=list)


# (db, event ids, now) -> {event id: its stats}; sessions without questions may be absent.
StatsProvider = Callable[[Session, list[int], datetime], dict[int, QuestionStats]]
_providers: list[StatsProvider] = []


def register(provider: StatsProvider) -> None:
    if provider not in _providers:
        _providers.append(provider)


def stats_of(db: Session, event_ids: list[int], now: datetime) -> dict[int, QuestionStats]:
    """Every listed session's stats (an empty QuestionStats for one with no questions)."""
    found: dict[int, QuestionStats] = {}
    for provider in _providers:
        found.update(provider(db, event_ids, now))
    return {event_id: found.get(event_id, QuestionStats()) for event_id in event_ids}
