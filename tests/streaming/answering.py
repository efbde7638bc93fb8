"""Helpers for the answers' tests: questions written straight into the database (their times
chosen), on sessions made by tests/frontend/archive_sessions.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from events.models import Event
from streaming.models import Question


def add_question(db: Session, event_id: int, text: str, *, state: str = "approved",
                 author: str = "市民", **fields: Any) -> int:
    event = db.get(Event, event_id)
    assert event is not None
    question = Question(event_id=event_id, author=author, text=text, state=state,
                        created_at=event.starts_at, **fields)
    db.add(question)
    db.commit()
    assert question.id is not None
    return question.id


def fresh_question(db: Session, question_id: int) -> Question:
    db.expire_all()
    question = db.get(Question, question_id)
    assert question is not None
    return question


def ends_of(db: Session, event_id: int) -> datetime:
    event = db.get(Event, event_id)
    assert event is not None
    return event.ends_at
