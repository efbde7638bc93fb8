"""A room's ordered stream: every change of what its pages show, at the room's next position.

Two counters, both gapless per room and both moved under the session's lock
(events.locking) in the transaction that makes the change:
- `seq` rises by one per approved message (DESIGN.md): what a `comment` frame carries, the
  order of the list, what the console checks for holes.
- `pos` rises by one per change a page must see (LiveChange): a message shown (publish, a
  host's reply), taken away (a take-down after approval, a ban's removals), pinned or unpinned.
  Every `comment`, `removed` and `pinned` frame carries its `pos`; a page that reconnects
  after a position (or after a `seq`: the position of that comment) is sent every change since,
  in order, so a take-down or an unpin made while it was away reaches it too.

Replaying a change shows the room as it is now: a `comment` whose message has since been
taken away replays as `removed` at its position (the text is not shown again), so the stream
stays gapless and a page can check its position (last + 1).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from events.models import StaffUser
from events.timeutil import iso_local
from streaming import protocol
from streaming.models import LiveChange, LiveMessage, LiveRoom

# A page that opens the room (or falls this far behind) gets its last page, not everything:
# older messages are read a page at a time (`GET /api/events/{id}/comments?before=SEQ`).
LAST_PAGE = 200
# Changes replayed to one socket at most; a page further behind gets the last page instead
# (`hello.reset`).
REPLAY_MAX = 1000
BACKLOG_PAGE = 500


def room_of(db: Session, event_id: int) -> LiveRoom:
    found = db.get(LiveRoom, event_id)
    if found is None:
        found = LiveRoom(event_id=event_id)
        db.add(found)
        db.flush()
    return found


def record(db: Session, message: LiveMessage, kind: str, pinned: bool = False) -> int:
    """The room's next position for a change of `message`; the caller holds the session's
    lock. Flushes."""
    assert message.id is not None
    room = room_of(db, message.event_id)
    room.last_pos += 1
    db.add(room)
    db.add(LiveChange(event_id=message.event_id, pos=room.last_pos, kind=kind,
                      message_id=message.id, pinned=pinned))
    db.flush()
    return room.last_pos


def approve(db: Session, message: LiveMessage, actor: StaffUser | None, now: Any) -> None:
    """Gives the message the room's next seq and position: the caller holds the session's
    lock."""
    room = room_of(db, message.event_id)
    room.last_seq += 1
    message.seq, message.state = room.last_seq, "approved"
    message.decided_at, message.decided_by = now, actor.id if actor else None
    db.add(room)
    db.add(message)
    db.flush()
    message.pos = record(db, message, "comment")
    db.add(message)


def removed_frame(message: LiveMessage, pos: int) -> str:
    return protocol.encode(protocol.REMOVED, id=message.id, pos=pos)


def pinned_frame(message: LiveMessage, pos: int) -> str:
    return protocol.encode(protocol.PINNED, id=message.id, pinned=message.pinned, pos=pos)


def message_public(message: LiveMessage) -> dict[str, Any]:
    """A message as the room and the API show it (a `comment` frame's fields)."""
    return {"seq": message.seq, "id": message.id, "kind": message.kind, "author": message.author,
            "text": message.text, "video_time": message.video_time,
            "created_at": iso_local(message.created_at), "pinned": message.pinned,
            "reply_to": message.reply_to, "registered": message.registered}


def comment_frame(message: LiveMessage) -> str:
    fields = message_public(message)
    fields.pop("pinned")
    return protocol.encode(protocol.COMMENT, **fields, pos=message.pos)


def changes_after(db: Session, event_id: int, after_pos: int,
                  limit: int = BACKLOG_PAGE) -> list[str]:
    """The frames of the room's changes after a position, in order, as the room is now."""
    frames = []
    for change, message in db.exec(
            select(LiveChange, LiveMessage)
            .join(LiveMessage, col(LiveMessage.id) == col(LiveChange.message_id))
            .where(LiveChange.event_id == event_id, col(LiveChange.pos) > after_pos)
            .order_by(col(LiveChange.pos)).limit(limit)):
        if change.kind == "comment" and message.state == "approved":
            frames.append(comment_frame(message))
        elif change.kind == "pinned":
            frames.append(protocol.encode(protocol.PINNED, id=message.id,
                                          pinned=change.pinned, pos=change.pos))
        else:  # taken away, then or since
            frames.append(removed_frame(message, change.pos))
    return frames


def pos_of_seq(db: Session, event_id: int, seq: int) -> int:
    """The position of the comment with this seq: what a page that says `after=SEQ` has seen
    (0 when it has seen nothing)."""
    if seq <= 0:
        return 0
    found = db.exec(select(LiveMessage.pos).where(
        LiveMessage.event_id == event_id, LiveMessage.seq == seq)).first()
    if found is None:  # a seq this room never gave: treat the page as new
        return 0
    return int(found)


def backlog(db: Session, event_id: int, after: int,
            limit: int = BACKLOG_PAGE) -> list[LiveMessage]:
    """Approved messages after `after`, oldest first (from the (event_id, seq) index)."""
    return list(db.exec(select(LiveMessage).where(
        LiveMessage.event_id == event_id, LiveMessage.state == "approved",
        col(LiveMessage.seq) > after).order_by(col(LiveMessage.seq)).limit(limit)))


def last_page(db: Session, event_id: int, before: int | None = None,
              limit: int = LAST_PAGE) -> list[LiveMessage]:
    """The newest approved messages (before `before`'s seq when given), oldest first: what a
    page opens with, and the pages a reader scrolls back through."""
    query = select(LiveMessage).where(LiveMessage.event_id == event_id,
                                      LiveMessage.state == "approved",
                                      col(LiveMessage.seq).is_not(None))
    if before is not None:
        query = query.where(col(LiveMessage.seq) < before)
    found = list(db.exec(query.order_by(col(LiveMessage.seq).desc()).limit(limit)))
    found.reverse()
    return found


def pinned_ids(db: Session, event_id: int) -> list[int]:
    """The approved messages hosts pinned, oldest first (a page shows them on top)."""
    return [i for i in db.exec(select(LiveMessage.id).where(
        LiveMessage.event_id == event_id, LiveMessage.state == "approved",
        col(LiveMessage.pinned).is_(True)).order_by(col(LiveMessage.id))) if i is not None]


def last_pos(db: Session, event_id: int) -> int:
    found = db.get(LiveRoom, event_id)
    return found.last_pos if found else 0


def message_for_hosts(message: LiveMessage) -> dict[str, Any]:
    """A message as the hosts' console shows it (who sent it, to ban them)."""
    return {**message_public(message), "viewer_id": message.viewer_id}


def queued_frame(message: LiveMessage) -> str:
    return protocol.encode(protocol.QUEUED, message=message_for_hosts(message))


def decided_frame(message: LiveMessage) -> str:
    return protocol.encode(protocol.DECIDED, id=message.id, state=message.state)
