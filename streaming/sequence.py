"""The room's order and how its messages show: the seq an approved message takes, and the
frames that carry a message (what streaming.room and streaming.questions both need, one layer
below both).

Every approved message gets the room's next `seq` under the session's lock (events.locking),
in the transaction that approves it: gapless and rising per session, whatever the number of
hosts and processes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from events.models import StaffUser
from events.timeutil import iso_local
from streaming import protocol
from streaming.models import LiveMessage, LiveRoom


def room_of(db: Session, event_id: int) -> LiveRoom:
    found = db.get(LiveRoom, event_id)
    if found is None:
        found = LiveRoom(event_id=event_id)
        db.add(found)
        db.flush()
    return found


def approve(db: Session, message: LiveMessage, actor: StaffUser | None, now: datetime) -> None:
    """Gives the message the room's next seq: the caller holds the session's lock."""
    found = room_of(db, message.event_id)
    found.last_seq += 1
    message.seq, message.state = found.last_seq, "approved"
    message.decided_at, message.decided_by = now, actor.id if actor else None
    db.add(found)
    db.add(message)


def message_public(message: LiveMessage) -> dict[str, Any]:
    """A message as the room and the API show it (a `comment` frame's fields)."""
    return {"seq": message.seq, "id": message.id, "kind": message.kind, "author": message.author,
            "text": message.text, "video_time": message.video_time,
            "created_at": iso_local(message.created_at), "pinned": message.pinned,
            "reply_to": message.reply_to, "registered": message.registered}


def message_for_hosts(message: LiveMessage) -> dict[str, Any]:
    """A message as the hosts' console shows it (who sent it, to ban them)."""
    return {**message_public(message), "viewer_id": message.viewer_id}


def comment_frame(message: LiveMessage) -> str:
    fields = message_public(message)
    fields.pop("pinned")
    return protocol.encode(protocol.COMMENT, **fields)


def queued_frame(message: LiveMessage) -> str:
    return protocol.encode(protocol.QUEUED, message=message_for_hosts(message))


def decided_frame(message: LiveMessage) -> str:
    return protocol.encode(protocol.DECIDED, id=message.id, state=message.state)
