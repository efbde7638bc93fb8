"""Citizens' questions to a session's hosts, their votes, and what hosts do with them (DESIGN.md's
questions endpoints; the room's `question` and `vote` frames, docs/live-protocol.md).

A question is a row of its own (streaming.models.Question), not a chat message: it is collected
before the session as well as during it (the plan's 市民对话一把手: "topics and questions
collected before, answers published after"), it is voted for, and it keeps its answer.

- The window: questions and votes are taken from the session's publication until it ends
  (published, before `ends_at`; or live, however late), unless a host closed the room
  (LiveRoom.closed; the rule is streaming.phase's) — otherwise 409 `questions_closed`. A
  session the public cannot see is 404.
- The same gates as the room's messages, from the same modules: a banned viewer is refused
  (403 `banned`, streaming.bans), control characters go, at most texts.MAX_TEXT characters
  (`too_long`), no blocked word (`blocked_word`, streaming.texts), one message or question per
  viewer per pace.MIN_INTERVAL (or the slow mode's wait) through the same
  Viewer.last_message_at (429 `rate_limited`, streaming.pace).
- Pre-moderation holds a question (`held`, seen by hosts only) until a host approves it; post
  publishes it at once (`approved`).
- A question sent over the room's socket is both: the chat's LiveMessage of kind question (the
  chat stream, its console queue) and a Question linked by `message_id`, made in the same
  transaction. A host's approve or reject of either moves the other too, in the same
  transaction and under the session's lock; the second host to decide gets 409
  `already_handled`, whichever of the two he used. That link is streaming.messages' (the one
  module above this one and streaming.room).
- Votes: one per viewer and question (the unique pair of QuestionVote, written under the
  session's lock: two concurrent votes of one viewer count once, the other is 409
  `already_voted`), only for a question still open (approved, shortlisted, answering); at most
  pace.ADDRESS_VOTES a pace.VOTE_WINDOW per address and question (429 `rate_limited`).
- Host actions (the session's runners, events.permissions.require_runner), each in the audit
  log: approve / reject (held only), shortlist, answering (one per session: the question
  answered before goes back to the shortlist, or to approved if it never was on it), answered
  (the video position when the server knows it, else the host's `video_time`, else null), merge
  into another public question of the session (its voters join the other's, each counted
  once; the merged one leaves the public list), and the official answer (官方回复: a written
  reply, the moment of the recording, a suggestion's outcome), which marks an open question
  answered — streaming.answers.write_answer, during the session or after it.
- The public list holds approved, shortlisted, answering and answered questions of viewers not
  banned, with the author's nickname only.

Functions flush; the caller commits, then publishes the frames they return (a `question` frame
per changed question to the room, or to its hosts only while the public may not see it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, literal, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from events import audit, permissions, sessions
from events.errors import Conflict, Invalid, NotFound
from events.locking import lock_event
from events.models import Event, Moderation, StaffUser
from events.timeutil import iso_local, utcnow
from streaming import bans, jobs, live_state, pace, phase, protocol, texts
from streaming.models import LiveRoom, Question, QuestionVote, Viewer

PUBLIC_STATES: tuple[str, ...] = ("approved", "shortlisted", "answering", "answered")
# Still waiting for its answer: votes count, and a host may mark it.
OPEN_STATES = ("approved", "shortlisted", "answering")
HIDDEN_STATES = ("held", "rejected", "merged")
ACTIONS = ("approve", "reject", "shortlist", "answering", "answered", "merge")
# The state each action leads to: the same state again means another host was first.
TARGETS = {"approve": "approved", "reject": "rejected", "shortlist": "shortlisted",
           "answering": "answering", "answered": "answered", "merge": "merged"}
# The states each action may start from (moderate); `answer` (streaming.answers.write_answer)
# takes any public state. The one table of what a host may do to a question: the console
# offers what it says.
ALLOWED_FROM: dict[str, tuple[str, ...]] = {
    "approve": ("held",), "reject": ("held",),
    "shortlist": ("approved", "answering"),
    "answering": ("approved", "shortlisted"),
    "answered": OPEN_STATES,
    "merge": ("held", *OPEN_STATES),
}
SORTS = ("votes", "new")
MAX_ANSWER = 2000
MAX_ID = 2**31 - 1
CLOSED = "questions_closed"


def actions_of(state: str) -> tuple[str, ...]:
    """What a host may do to a question in this state (ALLOWED_FROM), `answer` last."""
    return (*(action for action in ACTIONS if state in ALLOWED_FROM[action]),
            *(("answer",) if state in PUBLIC_STATES else ()))


def is_open(event: Event, live_room: LiveRoom | None, now: datetime) -> bool:
    """Questions are taken from publication until the session ends, unless a host closed the
    room (streaming.phase.takes_questions)."""
    return phase.takes_questions(phase.phase_of(event, now),
                                 live_room is not None and live_room.closed)


def _require_open(db: Session, event: Event, now: datetime) -> None:
    if not is_open(event, db.get(LiveRoom, event.id), now):
        raise Conflict(CLOSED, "this session takes questions from its publication until it "
                               "ends, and not once a host has closed its room")


# ---- the public's side -----------------------------------------------------------------------

def question_public(question: Question, voted: bool = False) -> dict[str, Any]:
    """A question as the API lists it (QuestionPublic): the author's nickname, nothing more of
    them."""
    return {"id": question.id, "text": question.text, "author": question.author,
            "votes": question.votes, "state": question.state, "answer": question.answer,
            "answered_at_video_time": question.answered_at_video_time,
            "answered_at": iso_local(question.answered_at) if question.answered_at else None,
            "created_at": iso_local(question.created_at), "merged_into": question.merged_into,
            "message_id": question.message_id, "voted": voted,
            # A suggestion's outcome (adopted | partly_adopted | not_adopted) and its reason.
            "outcome": question.outcome or None, "outcome_reason": question.outcome_reason}


def question_frame(question: Question, hosts: bool = False) -> str:
    """The room's `question` frame: a public question's fields; of one that left the list
    (merged, rejected) only its id, state and where it went. The hosts' (`hosts`): every
    field, whatever the state."""
    if question.state in PUBLIC_STATES or hosts:
        fields = question_public(question)
        fields.pop("voted")
    else:
        fields = {"id": question.id, "state": question.state,
                  "merged_into": question.merged_into}
    return protocol.encode(protocol.QUESTION, **fields)


def changed_frames(changed: list[Question]) -> protocol.Frames:
    """What changed questions show: the room hears the public ones, and those that left its
    list; the hosts hear every one in full (a held question, a rejected one)."""
    frames = protocol.Frames()
    for question in changed:
        if question.state in PUBLIC_STATES or question.state == "merged":
            frames.room.append(question_frame(question))
        if question.state not in PUBLIC_STATES:
            frames.hosts.append(question_frame(question, hosts=True))
    return frames


def _asked_from(db: Session, event_id: int, address_key: str, since: datetime) -> int:
    """Questions of this room since a moment by viewers who joined from one address."""
    return int(db.exec(select(func.count()).select_from(Question)
                       .join(Viewer, col(Viewer.id) == col(Question.viewer_id))
                       .where(Question.event_id == event_id, Viewer.address_key == address_key,
                              col(Question.created_at) > since)).one())


def ask(db: Session, viewer: Viewer, text: str, now: datetime | None = None) -> Question:
    """A viewer's question through the API: held (pre-moderation) or approved (post). Flushes."""
    now = now or utcnow()
    event = lock_event(db, viewer.event_id)
    _require_open(db, event, now)
    viewer = db.get(Viewer, viewer.id, populate_existing=True) or viewer
    bans.check(db, viewer, now)
    text = texts.checked(db, text)
    pace.check_viewer(viewer, db.get(LiveRoom, event.id), now)
    if viewer.address_key:
        pace.check_address(_asked_from(db, viewer.event_id, viewer.address_key,
                                       now - pace.ADDRESS_WINDOW),
                           pace.ADDRESS_MESSAGES, pace.ADDRESS_WINDOW, "questions")
    viewer.last_message_at = now
    db.add(viewer)
    public = event.moderation == Moderation.post
    question = Question(event_id=viewer.event_id, viewer_id=viewer.id, author=viewer.nickname,
                        text=text, state="approved" if public else "held", created_at=now,
                        decided_at=now if public else None)
    db.add(question)
    db.flush()
    return question


def listed(db: Session, event_id: int, sort: str = "votes", *, states: tuple[str, ...] =
           PUBLIC_STATES, viewer_id: int | None = None, limit: int = 500,
           now: datetime | None = None) -> list[dict[str, Any]]:
    """A session's questions: most votes first (ties: the older first) or newest first. The
    public's states by default, without the questions of viewers whose ban or timeout runs;
    `voted` says whether `viewer_id` voted for each."""
    if sort not in SORTS:
        raise Invalid("invalid", "sort: votes or new", field="sort")
    # The viewer's own votes in the same statement: a vote committed between two reads would
    # show a pressed button beside the count before it (PostgreSQL's read committed and
    # SQLite's statements each read their own moment).
    mine = exists().where(col(QuestionVote.question_id) == col(Question.id),
                          col(QuestionVote.viewer_id) == viewer_id) \
        if viewer_id is not None else literal(False)
    query = select(Question, mine).outerjoin(
        Viewer, col(Viewer.id) == col(Question.viewer_id)).where(
        Question.event_id == event_id, col(Question.state).in_(states),
        or_(col(Question.viewer_id).is_(None), ~bans.active(now or utcnow())))
    order = [col(Question.votes).desc(), col(Question.id)] if sort == "votes" \
        else [col(Question.id).desc()]
    return [question_public(question, bool(voted))
            for question, voted in db.exec(query.order_by(*order).limit(limit))]


def get_question(db: Session, question_id: int) -> Question:
    found = db.get(Question, question_id) if 0 < question_id <= MAX_ID else None
    if found is None:
        raise NotFound("question_not_found", f"no question with id {question_id}")
    return found


def vote(db: Session, viewer: Viewer, question_id: int,
         now: datetime | None = None) -> Question:
    """The viewer's vote for an open question of their session: 409 already_voted the second
    time; a question the public does not see is 404; an answered one 409 not_votable. Flushes."""
    now = now or utcnow()
    found = get_question(db, question_id)
    if found.event_id != viewer.event_id:
        raise NotFound("question_not_found", f"no question {question_id} in this room")
    event = lock_event(db, viewer.event_id)
    _require_open(db, event, now)
    viewer = db.get(Viewer, viewer.id, populate_existing=True) or viewer
    bans.check(db, viewer, now)
    question = db.get(Question, question_id, populate_existing=True)
    if question is None or question.state in HIDDEN_STATES:
        raise NotFound("question_not_found", f"no question {question_id} in this room")
    if question.state not in OPEN_STATES:
        raise Conflict("not_votable", "this question has been answered: votes are closed")
    if db.exec(select(QuestionVote.id).where(QuestionVote.question_id == question_id,
                                             QuestionVote.viewer_id == viewer.id)).first():
        raise Conflict(protocol.ALREADY_VOTED, "you have voted for this question already")
    pace.check_vote(db, viewer, question_id, now)
    assert viewer.id is not None
    db.add(QuestionVote(question_id=question_id, viewer_id=viewer.id, created_at=now))
    try:
        db.flush()
    except IntegrityError as exc:  # a second process without the lock's help: the pair decides
        raise Conflict(protocol.ALREADY_VOTED,
                       "you have voted for this question already") from exc
    question.votes += 1
    db.add(question)
    db.flush()
    return question


def vote_from_room(viewer: Viewer, question_id: int, db: Session) -> Question:
    """A `vote` frame: as `vote`, its refusals in the protocol's codes (a question that is not
    an open one of this room is `bad_message`, a closed window `closed`)."""
    try:
        return vote(db, viewer, question_id)
    except NotFound as exc:
        raise Invalid(protocol.BAD_MESSAGE, "vote: no open question with this id in this room") \
            from exc
    except Conflict as exc:
        if exc.code == CLOSED:
            raise Conflict(protocol.CLOSED, exc.message) from exc
        if exc.code == "not_votable":
            raise Invalid(protocol.BAD_MESSAGE, exc.message) from exc
        raise


# ---- the hosts' side -------------------------------------------------------------------------

def runner_question(db: Session, actor: StaffUser, question_id: int) -> tuple[Question, Event]:
    """The question and its session for one who runs it (404 for a session they may not see,
    403 for one they may see but not run)."""
    found = get_question(db, question_id)
    event = sessions.get_visible_event(db, found.event_id, actor)
    permissions.require_runner(db, actor, event)
    return found, event


def video_position(db: Session, event: Event, now: datetime) -> float | None:
    """Seconds into the video now, when the server knows it: a premiere's position, or the
    seconds since a live webcast went on air."""
    on_air = live_state.live_position(db, event, now)
    if on_air is not None:
        return on_air
    premiere = phase.premiere_of(event)
    if premiere is None or now < premiere or event.id is None:
        return None
    recording = jobs.published(db, event.id)
    position = phase.premiere_position(event, now,
                                       recording.duration_s if recording is not None else None)
    return None if position is None else round(position, 1)


def mark_answered(db: Session, question: Question, event: Event, actor: StaffUser,
                   now: datetime, video_time: float | None) -> None:
    position = video_position(db, event, now)
    question.state = "answered"
    question.answered_at, question.answered_by = now, actor.id
    question.answered_at_video_time = position if position is not None else video_time


def _merge(db: Session, question: Question, into: int | None) -> list[Question]:
    """Moves the question's voters to `into` (each viewer counted once) and points what was
    merged into it there too. Returns the questions whose public fields changed."""
    target = db.get(Question, into, populate_existing=True) \
        if into is not None and 0 < into <= MAX_ID else None
    if target is None or target.event_id != question.event_id or target.id == question.id \
            or target.state not in PUBLIC_STATES:
        raise Invalid("invalid_target", "into: another public question of this session",
                      field="into")
    already = set(db.exec(select(QuestionVote.viewer_id).where(
        QuestionVote.question_id == target.id)))
    for moved in db.exec(select(QuestionVote).where(QuestionVote.question_id == question.id)):
        if moved.viewer_id in already:
            db.delete(moved)
        else:
            moved.question_id = target.id or 0
            db.add(moved)
    db.flush()
    for earlier in db.exec(select(Question).where(Question.merged_into == question.id)):
        earlier.merged_into = target.id
        db.add(earlier)
    target.votes = len(list(db.exec(select(QuestionVote.id).where(
        QuestionVote.question_id == target.id))))
    question.state, question.merged_into = "merged", target.id
    db.add(target)
    return [target]


def moderate(db: Session, actor: StaffUser, question_id: int, action: str, *,
             into: int | None = None, video_time: float | None = None,
             now: datetime | None = None) -> tuple[Question, protocol.Frames]:
    """A host's action on a question (see the module's docstring). Returns the question and the
    frames the room and its hosts must see once committed. A held question's chat message
    follows through streaming.messages.moderate_question. Flushes."""
    now = now or utcnow()
    if action not in ACTIONS:
        raise Invalid("invalid", f"action: one of {', '.join(ACTIONS)}", field="action")
    if action == "merge" and into is None:
        raise Invalid("invalid_target", "into: the question to merge this one into",
                      field="into")
    _found, event = runner_question(db, actor, question_id)
    lock_event(db, event.id or 0)
    question = db.get(Question, question_id, populate_existing=True)
    assert question is not None
    before = question.state
    if before not in ALLOWED_FROM[action]:
        if before == TARGETS[action] or action in ("approve", "reject"):
            raise Conflict("already_handled", "another host has handled this question")
        raise Conflict("invalid_state", f"a question {before} cannot be marked {action}")
    changed = [question]
    if action == "merge":
        changed += _merge(db, question, into)
    elif action == "answered":
        mark_answered(db, question, event, actor, now, video_time)
    elif action == "answering":
        for previous in db.exec(select(Question).where(
                Question.event_id == question.event_id, Question.state == "answering",
                Question.id != question.id)):
            previous.state = "shortlisted" if previous.shortlisted_at else "approved"
            db.add(previous)
            changed.append(previous)
        question.state = "answering"
    else:
        question.state = TARGETS[action]
        if action == "shortlist":
            question.shortlisted_at = question.shortlisted_at or now
    if before == "held":
        question.decided_at, question.decided_by = now, actor.id
    db.add(question)
    db.flush()
    frames = changed_frames(changed)
    audit.record(db, actor, f"question.{action}", "event", question.event_id,
                 unit_id=event.unit_id,
                 changes={"question": question.id, "state": [before, question.state],
                          **({"into": question.merged_into} if action == "merge" else {})})
    return question, frames
