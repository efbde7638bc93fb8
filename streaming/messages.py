"""The link between a chat message and a question: a question asked in the room's chat is both
a LiveMessage of kind question (streaming.room: the chat stream, the console's queue) and a
Question linked by `message_id` (streaming.questions: its votes, its answer). This module, above
both, keeps the two in step; neither of them imports the other.

- `send`: the room's message, and for a question its row, held or approved as the message is,
  in one transaction; the frames say so to the room (a `comment`, and a `question` when it is
  public at once) or to its hosts (`queued`, and the held question).
- `moderate`: a host's decision on a question's chat message moves its row too.
- `moderate_question`: a host's decision on a held question moves its chat message too
  (approved: it takes the room's next seq; rejected or merged: it never shows).

Every change happens under the session's lock the called function takes; the second host to
decide gets 409 `already_handled`, whichever of the two he used. Functions flush; the caller
commits, then publishes the frames.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from events.models import StaffUser
from events.timeutil import utcnow
from streaming import protocol, questions, room
from streaming.models import LiveMessage, Question, Viewer
from streaming.stream import approve, comment_frame, decided_frame, queued_frame


def send(db: Session, viewer: Viewer, sent: protocol.Sent, now: datetime | None = None,
         sender_key: str = "") -> tuple[LiveMessage, protocol.Frames]:
    """room.send, and a question's row with it. Returns the message and the frames."""
    message = room.send(db, viewer, sent, now=now, sender_key=sender_key)
    frames = protocol.Frames()
    if message.state == "approved":
        frames.room.append(comment_frame(message))
    else:
        frames.hosts.append(queued_frame(message))
    if message.kind == "question":
        question = Question(event_id=message.event_id, viewer_id=message.viewer_id,
                            author=message.author, text=message.text, message_id=message.id,
                            state="approved" if message.state == "approved" else "held",
                            created_at=message.created_at, decided_at=message.decided_at)
        db.add(question)
        db.flush()
        frames.extend(questions.changed_frames([question]))
    return message, frames


def moderate(db: Session, actor: StaffUser, message_id: int, action: str,
             now: datetime | None = None) -> tuple[LiveMessage, protocol.Frames]:
    """room.moderate; a held question's row takes the decision on its chat message."""
    now = now or utcnow()
    message, frames = room.moderate(db, actor, message_id, action, now=now)
    if message.kind != "question" or action not in ("approve", "reject"):
        return message, frames
    question = db.exec(select(Question).where(Question.message_id == message.id)).first()
    if question is not None and question.state == "held":
        question.state = "approved" if message.state == "approved" else "rejected"
        question.decided_at, question.decided_by = now, actor.id
        db.add(question)
        db.flush()
        frames.extend(questions.changed_frames([question]))
    return message, frames


def moderate_question(db: Session, actor: StaffUser, question_id: int, action: str, *,
                      into: int | None = None, video_time: float | None = None,
                      now: datetime | None = None) -> tuple[Question, protocol.Frames]:
    """questions.moderate; a held question's chat message takes the decision on it."""
    now = now or utcnow()
    question, frames = questions.moderate(db, actor, question_id, action, into=into,
                                          video_time=video_time, now=now)
    message = db.get(LiveMessage, question.message_id) if question.message_id else None
    if message is None or message.state != "held" or question.state == "held":
        return question, frames
    if question.state == "approved":
        approve(db, message, actor, now)  # the room's next seq, under the lock still held
        db.flush()
        frames.room.insert(0, comment_frame(message))
    else:
        message.state, message.decided_at, message.decided_by = "rejected", now, actor.id
        db.add(message)
        db.flush()
    frames.hosts.insert(0, decided_frame(message))
    return question, frames
