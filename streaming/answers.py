"""An answer for every question (issue 18; the plan's 二(一): "answers published after"): the
official answer given after a session as well as during it — a moment in the recording, a
written reply, or both — the outcome of a suggestion, the per-session stats
events.question_stats asks for (the compliance report and CSV, the public page), the questions
still open, and the reminders of those overdue.

What counts (one question may count as answered both live and in writing):
- received: every question citizens sent, whatever became of it (held, rejected and merged
  ones too: a duplicate was still asked).
- approved: those the public list holds (approved, shortlisted, answering, answered); a merged
  one is answered through the question it joined, so it is not counted twice.
- answered live: an approved question with a moment in the recording
  (answered_at_video_time), or marked answered by a host while the session ran (between its
  start and its end, not by writing an answer).
- answered in writing: an approved question with a written answer (官方回复).
- open: approved, answered neither way; overdue: open answer_days (KAIFANG_ANSWER_DAYS) after
  the session's end (Event.ends_at).
- median days: from the session's end to each answer (the written one's time; 0 for one
  answered live, or written before the end), over the answered questions; None for none.

Functions flush; the caller commits (and publishes the frames write_answer returns).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict, namedtuple
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select as columns
from sqlmodel import Session, col, select

from events import audit, notify, question_stats
from events.errors import Conflict, Invalid
from events.locking import lock_event
from events.models import Event, EventHost, EventStatus, Role, StaffUser, Unit
from events.question_stats import QuestionStats
from events.timeutil import utcnow
from events.units import clean_text
from server.config import Settings, get_settings
from streaming import jobs, protocol, questions, texts
from streaming.models import Question

OUTCOMES = ("adopted", "partly_adopted", "not_adopted")
MAX_REASON = 1000
# Overdue questions of sessions that ended longer ago than answer_days + this are history: the
# hourly reminder leaves them alone (the console still flags them).
REMIND_WITHIN = timedelta(days=90)
# Sessions per query of stats_for: a district's year (~2,000) in one, far below SQLite's
# (32,766) and PostgreSQL's (65,535) limits on bound values.
CHUNK = 10_000
# What stats_for reads of each question.
StatsRow = namedtuple("StatsRow", ("id", "event_id", "state", "answer", "answer_at",
                                   "answered_at", "answered_at_video_time"))
STATS_COLUMNS = tuple(col(column) for column in (
    Question.id, Question.event_id, Question.state, Question.answer, Question.answer_at,
    Question.answered_at, Question.answered_at_video_time))


# ---- the answer ------------------------------------------------------------------------------

def _outcome(outcome: str | None, reason: str | None) -> tuple[str, str] | None:
    """The outcome and its reason as stored, or None to keep both; 422 for an unknown outcome,
    a reason without one, or 不予采纳 without a reason."""
    said = "" if reason is None else \
        clean_text(reason, "reason", multiline=True).strip()
    if len(said) > MAX_REASON:
        raise Invalid(protocol.TOO_LONG, f"reason: at most {MAX_REASON} characters",
                      field="reason", max_length=MAX_REASON)
    if outcome is None:
        if said:
            raise Invalid("invalid", "outcome: a reason goes with an outcome", field="outcome")
        return None
    if outcome not in ("", *OUTCOMES):
        raise Invalid("invalid", f"outcome: one of {', '.join(OUTCOMES)} (or empty: none)",
                      field="outcome")
    if outcome == "not_adopted" and not said:
        raise Invalid("reason_required", "reason: say why the suggestion is not adopted "
                                         "(shown publicly)", field="reason")
    return outcome, said if outcome else ""


def _moment(db: Session, event_id: int, at_s: float | None) -> float | None:
    """Seconds into the session's published recording: 0 to its length (422 otherwise)."""
    if at_s is None:
        return None
    if not math.isfinite(at_s) or at_s < 0:
        raise Invalid("invalid", "at_s: seconds into the recording, 0 or more", field="at_s")
    recording = jobs.published(db, event_id)
    if recording is None:
        raise Invalid("no_recording", "at_s: this session has no published recording yet",
                      field="at_s")
    if recording.duration_s and at_s > recording.duration_s:
        raise Invalid("beyond_recording", f"at_s: the recording is {recording.duration_s:.1f} s "
                      "long", field="at_s", duration_s=recording.duration_s)
    return round(at_s, 1)


def write_answer(db: Session, actor: StaffUser, question_id: int, text: str | None,
                 now: datetime | None = None, *, outcome: str | None = None,
                 reason: str | None = None, at_s: float | None = None,
                 ) -> tuple[Question, protocol.Frames]:
    """The official answer to a public question, by those who run its session, during it or
    after: a written reply (`text`, replacing the last; None keeps it), the moment of the
    recording it was answered at (`at_s`), and for a suggestion its outcome (`outcome`: "" none,
    None keeps it) with its reason. An open question becomes answered. Every check comes
    before any change. Flushes; returns the frames to publish once committed."""
    now = now or utcnow()
    written = None if text is None else texts.checked(db, text, words=False,
                                                      limit=questions.MAX_ANSWER)
    decided = _outcome(outcome, reason)
    _found, event = questions.runner_question(db, actor, question_id)
    lock_event(db, event.id or 0)
    question = db.get(Question, question_id, populate_existing=True)
    assert question is not None
    if question.state not in questions.PUBLIC_STATES:
        raise Conflict("invalid_state", f"a question {question.state} cannot be answered")
    moment = _moment(db, event.id or 0, at_s)
    if written is None and moment is None and not _answered(question, event):
        raise Invalid("answer_required", "text or at_s: a written reply or the moment of the "
                      "recording it was answered at", field="text")
    before = {"answer": question.answer, "at_s": question.answered_at_video_time,
              "outcome": question.outcome, "reason": question.outcome_reason}
    if written is not None:
        question.answer, question.answer_by, question.answer_at = written, actor.id, now
    if question.state in questions.OPEN_STATES:
        questions.mark_answered(db, question, event, actor, now, moment)
    if moment is not None:
        question.answered_at_video_time = moment
    if decided is not None:
        question.outcome, question.outcome_reason = decided
    db.add(question)
    db.flush()
    after = {"answer": question.answer, "at_s": question.answered_at_video_time,
             "outcome": question.outcome, "reason": question.outcome_reason}
    audit.record(db, actor, "question.answer", "event", question.event_id,
                 unit_id=event.unit_id,
                 changes={"question": question.id, **{key: [before[key], after[key]]
                                                      for key in after
                                                      if before[key] != after[key]}})
    return question, questions.changed_frames([question])


# ---- what counts -----------------------------------------------------------------------------

class Asked(Protocol):
    """What deciding whether a question is answered reads: a Question, or a row of these
    columns (stats_for, which reads a year's questions)."""

    @property
    def answer(self) -> str: ...
    @property
    def answer_at(self) -> datetime | None: ...
    @property
    def answered_at(self) -> datetime | None: ...
    @property
    def answered_at_video_time(self) -> float | None: ...


class Held(Protocol):
    """A session's times: an Event, or a row of these columns."""

    @property
    def starts_at(self) -> datetime: ...
    @property
    def ends_at(self) -> datetime: ...


def _live(question: Asked, event: Held) -> bool:
    """Answered while the session ran: a moment in the recording, or marked answered by a host
    between its start and its end (not by the written answer, which sets both times at once)."""
    if question.answered_at_video_time is not None:
        return True
    marked = question.answered_at
    return marked is not None and event.starts_at <= marked <= event.ends_at \
        and marked != question.answer_at


def _answered(question: Asked, event: Held) -> bool:
    return bool(question.answer) or _live(question, event)


def _days_to_answer(question: Asked, event: Held) -> float:
    """Days from the session's end to an answered question's answer (0: live, or before)."""
    if _live(question, event) or question.answer_at is None:
        return 0.0
    return max(0.0, (question.answer_at - event.ends_at).total_seconds() / 86400)


def _overdue(question: Asked, event: Held, now: datetime, days: int) -> bool:
    return not _answered(question, event) and now > event.ends_at + timedelta(days=days)


def answer_days() -> int:
    """KAIFANG_ANSWER_DAYS, for the callers that have no Settings at hand (the stats hook)."""
    return get_settings().answer_days


def stats_for(db: Session, event_ids: list[int], now: datetime,
              days: int | None = None) -> dict[int, QuestionStats]:
    """Each listed session's QuestionStats (only sessions with questions are present)."""
    days = answer_days() if days is None else days
    found: dict[int, QuestionStats] = {}
    waits: dict[int, list[float]] = defaultdict(list)
    db.flush()  # as db.exec would: the rows are read on the session's connection
    for start in range(0, len(event_ids), CHUNK):
        # Columns, not objects: a year has tens of thousands of questions, and loading each as a
        # Question with its Event took seconds (bench/accountability.py).
        chunk = event_ids[start:start + CHUNK]
        times = {row.id: row for row in db.connection().execute(
            columns(col(Event.id), col(Event.starts_at), col(Event.ends_at))
            .where(col(Event.id).in_(chunk)))}
        rows = db.connection().execute(columns(*STATS_COLUMNS)
                                       .where(col(Question.event_id).in_(chunk))
                                       .order_by(col(Question.id)))
        for raw in rows:
            row = StatsRow._make(raw)  # its fields read faster than a Row's (~30,000 rows)
            held = times[row.event_id]
            stats = found.setdefault(row.event_id, QuestionStats())
            stats.received += 1
            if row.state not in questions.PUBLIC_STATES:
                continue
            stats.approved += 1
            stats.answered_live += _live(row, held)
            stats.answered_written += bool(row.answer)
            if _answered(row, held):
                waits[row.event_id].append(_days_to_answer(row, held))
                continue
            stats.open += 1
            if _overdue(row, held, now, days):
                stats.overdue += 1
                stats.overdue_ids.append(row.id)
    for event_id, stats in found.items():
        if waits[event_id]:
            stats.median_days = round(statistics.median(waits[event_id]), 1)
    return found


def _provider(db: Session, event_ids: list[int], now: datetime) -> dict[int, QuestionStats]:
    return stats_for(db, event_ids, now)


question_stats.register(_provider)


# ---- the questions still open ----------------------------------------------------------------

@dataclass
class OpenQuestion:
    """A public question of a session that is over, answered neither way."""

    question: Question
    event: Event
    days_since: int  # whole days since the session's end
    overdue: bool


def open_questions(db: Session, now: datetime, days: int, *, unit_id: int | None = None,
                   host: StaffUser | None = None, limit: int = 1000) -> list[OpenQuestion]:
    """The open questions of sessions already over (not cancelled): of one unit, of the
    sessions a host is assigned to, or of every unit; the longest waiting first."""
    query = select(Question, Event).join(Event, col(Event.id) == col(Question.event_id)).where(
        col(Question.state).in_(questions.PUBLIC_STATES), Question.answer == "",
        col(Question.answered_at_video_time).is_(None),
        Event.status != EventStatus.cancelled, col(Event.ends_at) <= now)
    if unit_id is not None:
        query = query.where(Event.unit_id == unit_id)
    if host is not None:
        query = query.join(EventHost, col(EventHost.event_id) == col(Event.id)).where(
            EventHost.user_id == host.id)
    found = []
    for question, event in db.exec(query.order_by(col(Event.ends_at), col(Question.id))
                                   .limit(limit)):
        if _answered(question, event):
            continue
        found.append(OpenQuestion(question, event, max(0, (now - event.ends_at).days),
                                  _overdue(question, event, now, days)))
    return found


def open_for(db: Session, actor: StaffUser, now: datetime, days: int,
             unit_id: int | None = None) -> list[OpenQuestion]:
    """What the console lists for one member of staff: an editor their unit's, a host the
    sessions assigned to them, an admin every unit's (or `unit_id`'s)."""
    if actor.role == Role.admin:
        return open_questions(db, now, days, unit_id=unit_id)
    if actor.role == Role.editor:
        return open_questions(db, now, days, unit_id=actor.unit_id or -1)
    return open_questions(db, now, days, host=actor)


# ---- reminders -------------------------------------------------------------------------------

def remind_overdue(db: Session, settings: Settings) -> int:
    """One console message (recipient unit:<code>, read in the unit's outbox) per unit listing
    its questions that became overdue since the last reminder; each question is reminded once
    (answer_reminded_at). Returns the reminders written."""
    now = utcnow()
    days = settings.answer_days
    oldest = now - timedelta(days=days) - REMIND_WITHIN
    by_unit: dict[int, list[OpenQuestion]] = defaultdict(list)
    for item in open_questions(db, now, days, limit=10_000):
        if item.overdue and item.question.answer_reminded_at is None \
                and item.event.ends_at > oldest:
            by_unit[item.event.unit_id].append(item)
    queued = 0
    for unit_id, items in sorted(by_unit.items()):
        unit = db.get(Unit, unit_id)
        if unit is None:
            continue
        sessions: dict[int, list[OpenQuestion]] = defaultdict(list)
        for item in items:
            sessions[item.event.id or 0].append(item)
        listed = "；".join(f"“{group[0].event.title}”{len(group)}个"
                          for group in sessions.values())
        body = (f"{notify.SIGNATURE}{unit.name}：以下活动有{len(items)}个公众问题在活动结束"
                f"{days}天后仍未答复：{listed}。请在工作台“待答问题”中补充录像中的回答时刻"
                f"或书面回复；建议类问题请注明采纳情况。")
        ids = sorted(item.question.id or 0 for item in items)
        message = notify.enqueue(
            db, topic="answer_reminder", channel="console", recipient=f"unit:{unit.code}",
            unit=unit, event=items[0].event if len(sessions) == 1 else None,
            subject=f"待答复问题：{len(items)}个已逾期", body=body,
            dedupe_key=f"answers:{unit.code}:{ids[0]}-{ids[-1]}:{len(ids)}")
        for item in items:
            item.question.answer_reminded_at = now
            db.add(item.question)
        if message is not None:
            message.recipient_masked = message.recipient  # a unit is no person
            queued += 1
    db.flush()
    return queued
