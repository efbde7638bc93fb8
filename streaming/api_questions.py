"""HTTP for citizens' questions and their votes, and the hosts' handling of them (DESIGN.md's
contract; the rules are streaming.questions').

A viewer is named by the `viewer_token` of the body or, without one, by the viewer cookie that
joining the room set (`kaifang_viewer`): 401 `bad_token` for neither, a forged one or another
session's. Every change is published to the room once committed (`question` frames; a `comment`
frame for a chat message approved with its question); a held question to its hosts only; vote
counts in batches (`votes` frames, streaming.tallies).
"""

from __future__ import annotations

import contextlib
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field
from sqlmodel import Session

from events import permissions, sessions
from events.errors import DomainError, NotFound
from events.schemas import answer, answers
from server.deps import JSONRoute, OptionalStaffDep, SessionDep, StaffDep, error_responses
from streaming import answers as answering
from streaming import messages, protocol, questions, room, tallies
from streaming.broker import Broker, publish_after_commit
from streaming.models import Viewer
from streaming.schemas import QuestionPublic

router = APIRouter(route_class=JSONRoute)
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]
# streaming.api_live sets it when a viewer joins (a router imports no other router).
VIEWER_COOKIE = "kaifang_viewer"
TOKEN_MAX = 500


class AskIn(BaseModel):
    # Longer than a question may be, so that the domain answers `too_long` (422) itself.
    text: str = Field(max_length=2000)
    viewer_token: str | None = Field(default=None, max_length=TOKEN_MAX)


class VoteIn(BaseModel):
    viewer_token: str | None = Field(default=None, max_length=TOKEN_MAX)


class QuestionModerationIn(BaseModel):
    action: str = Field(max_length=20)
    # merge: the question this one joins.
    into: int | None = Field(default=None, ge=1, le=2**31 - 1)
    # answered: where the video was, when the server does not know (a live stream).
    video_time: float | None = Field(default=None, ge=0, le=7 * 24 * 3600)


class AnswerIn(BaseModel):
    # Longer than they may be, so that the domain answers `too_long` (422) itself. None: kept.
    text: str | None = Field(default=None, max_length=questions.MAX_ANSWER * 2)
    # adopted | partly_adopted | not_adopted ("": none); not_adopted needs `reason`.
    outcome: str | None = Field(default=None, max_length=20)
    reason: str | None = Field(default=None, max_length=answering.MAX_REASON * 2)
    # Seconds into the session's published recording where it was answered.
    at_s: float | None = Field(default=None, allow_inf_nan=False)


def _viewer(request: Request, db: Session, event_id: int, token: str | None) -> Viewer:
    return room.viewer_of(db, request.app.state.signer, event_id,
                          token or request.cookies.get(VIEWER_COOKIE))


def _publish(request: Request, db: Session, event_id: int,
             frames: protocol.Frames) -> None:
    broker: Broker = request.app.state.broker
    publish_after_commit(db, broker, event_id, frames)


@router.post("/api/events/{event_id}/questions", status_code=201,
             responses=error_responses(401, 403, 409, 429))
def ask(event_id: Id, body: AskIn, request: Request, db: SessionDep) -> QuestionPublic:
    """A viewer's question: `held` until a host approves it (pre-moderation) or `approved` at
    once (post); 409 `questions_closed` outside the session's window."""
    sessions.get_visible_event(db, event_id, None)
    viewer = _viewer(request, db, event_id, body.viewer_token)
    question = questions.ask(db, viewer, body.text)
    _publish(request, db, event_id, questions.changed_frames([question]))
    return answer(QuestionPublic, questions.question_public(question))


@router.get("/api/events/{event_id}/questions")
def list_questions(event_id: Id, request: Request, db: SessionDep, viewer: OptionalStaffDep,
                   sort: Annotated[str, Query(pattern="^(votes|new)$")] = "votes",
                   state: Annotated[str, Query(pattern="^(public|held|all)$")] = "public",
                   ) -> list[QuestionPublic]:
    """The public list (approved, shortlisted, answering, answered), most votes first (ties:
    older first) or newest first; those who run the session add `state=held` or `state=all`."""
    event = sessions.get_visible_event(db, event_id, viewer)
    states = questions.PUBLIC_STATES
    if state != "public":
        if viewer is None:
            raise NotFound("event_not_found", f"no session with id {event_id}")
        permissions.require_runner(db, viewer, event)
        states = ("held",) if state == "held" else (*questions.PUBLIC_STATES,
                                                    *questions.HIDDEN_STATES)
    viewer_id = None
    token = request.cookies.get(VIEWER_COOKIE)
    if token:  # a stale or foreign cookie: the list, without `voted`
        with contextlib.suppress(DomainError):
            viewer_id = _viewer(request, db, event_id, token).id
    return answers(QuestionPublic, questions.listed(db, event_id, sort, states=states,
                                                    viewer_id=viewer_id))


@router.post("/api/questions/{question_id}/votes", status_code=201,
             responses=error_responses(401, 403, 409))
def vote(question_id: Id, request: Request, db: SessionDep,
         body: VoteIn | None = None) -> QuestionPublic:
    """One vote per viewer and question (409 `already_voted`), for an open question."""
    found = questions.get_question(db, question_id)
    viewer = _viewer(request, db, found.event_id, body.viewer_token if body else None)
    question = questions.vote(db, viewer, question_id)
    tallies.count_after_commit(db, tallies.vote_counts(request.app.state), question)
    return answer(QuestionPublic, questions.question_public(question, voted=True))


@router.post("/api/questions/{question_id}/moderation", responses=error_responses(409))
def moderate(question_id: Id, body: QuestionModerationIn, request: Request, db: SessionDep,
             user: StaffDep) -> QuestionPublic:
    """A host's action: approve | reject (held only; 409 `already_handled` when another host
    was first), shortlist, answering, answered, merge (with `into`)."""
    question, frames = messages.moderate_question(db, user, question_id, body.action,
                                                  into=body.into, video_time=body.video_time)
    _publish(request, db, question.event_id, frames)
    return answer(QuestionPublic, questions.question_public(question))


@router.put("/api/questions/{question_id}/answer", responses=error_responses(409))
def write_answer(question_id: Id, body: AnswerIn, request: Request, db: SessionDep,
                 user: StaffDep) -> QuestionPublic:
    """The official answer (官方回复), shown publicly with the question, during the session or
    after it: a written reply (`text`), the moment of the recording it was answered at
    (`at_s`: 422 `beyond_recording` past its end, `no_recording` without one), or both; a
    suggestion's `outcome` with its `reason` (422 `reason_required` for not_adopted without
    one). 409 `invalid_state` for a question not on the public list."""
    question, frames = answering.write_answer(db, user, question_id, body.text,
                                              outcome=body.outcome, reason=body.reason,
                                              at_s=body.at_s)
    _publish(request, db, question.event_id, frames)
    return answer(QuestionPublic, questions.question_public(question))
