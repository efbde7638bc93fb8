"""The year's broadcast plan (直播计划, issue 18; the plan's 二(四)): items imported or entered
by the office, each carried out by one broadcast session, with its production steps and a state.

(Foundation: the plan helper fills this module; the worker calls `remind_due` hourly.)
"""

from __future__ import annotations

from sqlmodel import Session

from server.config import Settings


def remind_due(db: Session, settings: Settings) -> int:
    """Reminds each lead unit of a plan item's step that is due soon or late (once per step
    and threshold); returns the reminders written."""
    return 0
