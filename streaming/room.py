"""The live room's rules: who is in it, what they may send, what hosts decide, and the order.

Every approved message gets the room's next `seq`, and every change a page shows its next
position (streaming.stream), under the session's lock (events.locking), in the transaction
that makes it: gapless and rising per session, whatever the number of hosts and processes.
The text and pace checks are streaming.texts' and streaming.pace's, the bans streaming.bans';
a question asked in the room is linked to its row by streaming.messages (above this module and
streaming.questions). Pre-moderation (the default, plan 信息发布审核) holds each message until
a host approves it; post-moderation publishes at once and a host may remove it. Functions
flush; the caller commits, then tells the room (streaming.broker) what changed. The room's
rules (open, slow mode, moderation) are streaming.room_rules.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from events import audit, permissions, registration, sessions
from events.clients import address_bucket
from events.errors import Conflict, Invalid, NotFound, Unauthenticated
from events.locking import lock_event
from events.models import (
    Event,
    Moderation,
    Registration,
    RegistrationStatus,
    StaffUser,
    Unit,
)
from events.timeutil import utcnow
from events.units import clean_text
from server.security import Signer
from streaming import bans, live_state, pace, protocol, stream, texts
from streaming.models import LiveMessage, LiveRoom, Viewer

# Re-exported: what the room's callers and tests read here (the checks live one layer down).
from streaming.pace import ADDRESS_JOINS as ADDRESS_JOINS
from streaming.pace import ADDRESS_MESSAGES as ADDRESS_MESSAGES
from streaming.pace import ADDRESS_WINDOW as ADDRESS_WINDOW
from streaming.pace import JOIN_WINDOW as JOIN_WINDOW
from streaming.pace import MIN_INTERVAL as MIN_INTERVAL
from streaming.room_rules import MAX_SLOW_MODE_S as MAX_SLOW_MODE_S
from streaming.room_rules import configure as configure
from streaming.room_rules import is_open as is_open
from streaming.room_rules import room_public as room_public
from streaming.room_rules import tally as tally
from streaming.stream import BACKLOG_PAGE as BACKLOG_PAGE
from streaming.stream import approve as _approve
from streaming.stream import backlog as backlog
from streaming.stream import comment_frame as comment_frame
from streaming.stream import decided_frame as decided_frame
from streaming.stream import message_for_hosts as message_for_hosts
from streaming.stream import message_public as message_public
from streaming.stream import pinned_ids as pinned_ids
from streaming.stream import queued_frame as queued_frame
from streaming.stream import room_of as room_of
from streaming.texts import MAX_TEXT as MAX_TEXT
from streaming.texts import MAX_WORDS as MAX_WORDS
from streaming.texts import blocked_words as blocked_words
from streaming.texts import contains_blocked_word as contains_blocked_word
from streaming.texts import set_blocked_words as set_blocked_words

VIEWER_PURPOSE = "live-viewer"
TICKET_PURPOSE = "live-ticket"
TICKET_MAX_AGE_S = 60 * 24 * 3600
VIEWER_TOKEN_MAX_AGE_S = 7 * 24 * 3600
MAX_NICKNAME = 20
ACTIONS = frozenset({"approve", "reject", "pin", "unpin", "answered"})


# ---- viewers ------------------------------------------------------------------------------

def address_key(signer: Signer, address: str) -> str:
    """What the per-address limits count: a keyed hash (no address is stored)."""
    return signer.keyed_hash("live-address", address_bucket(address))


def ticket_cookie(event_id: int) -> str:
    """The cookie a registration's ticket page leaves for its session's room."""
    return f"kaifang_ticket_{event_id}"


def room_ticket(signer: Signer, registration_id: int, event_id: int) -> str:
    """What that cookie holds: the registration, signed (not its manage token, which can
    cancel it)."""
    return signer.dumps(TICKET_PURPOSE, {"r": registration_id, "e": event_id})


def join(db: Session, signer: Signer, event: Event, nickname: str, address: str = "",
         now: datetime | None = None, manage_token: str | None = None,
         ticket: str | None = None) -> tuple[Viewer, str]:
    """A viewer of a public session, and the signed token that names them; at most
    ADDRESS_JOINS a JOIN_WINDOW from one address (rate_limited), none from an address a ban of
    this room covers (403 banned, streaming.bans). The viewer shows as registered
    with a registration's manage token for this session (422 invalid_ticket for any other), or
    with the `ticket` its ticket page left in this browser (ignored when no longer valid).
    Flushes."""
    assert event.id is not None
    now = now or utcnow()
    name = clean_text(nickname, "nickname").strip()
    if not 1 <= len(name) <= MAX_NICKNAME:
        raise Invalid("invalid_nickname", f"nickname: 1 to {MAX_NICKNAME} characters",
                      field="nickname")
    key = address_key(signer, address) if address else ""
    if key:
        # Not under the session's lock: two racing joins may both pass; the limit is against
        # floods, not exact.
        pace.check_address(pace.count_since(db, Viewer, event.id, key, now - JOIN_WINDOW),
                           ADDRESS_JOINS, JOIN_WINDOW, "viewers")
    linked = _registration_of(db, signer, event.id, manage_token) if manage_token \
        else _ticket_of(db, signer, event.id, ticket) if ticket else None
    viewer = Viewer(event_id=event.id, nickname=name, address_key=key, created_at=now,
                    registration_id=linked)
    bans.check(db, viewer, now)
    db.add(viewer)
    db.flush()
    return viewer, signer.dumps(VIEWER_PURPOSE, {"v": viewer.id, "e": event.id})


def viewer_of(db: Session, signer: Signer, event_id: int, token: str | None) -> Viewer:
    """The viewer a token names, in this session's room; 401 bad_token otherwise, 403 banned."""
    payload = signer.loads(VIEWER_PURPOSE, token or "", max_age_s=VIEWER_TOKEN_MAX_AGE_S)
    viewer = db.get(Viewer, payload.get("v")) if isinstance(payload, dict) \
        and isinstance(payload.get("v"), int) and payload.get("e") == event_id else None
    if viewer is None or viewer.event_id != event_id:
        raise Unauthenticated("bad_token", "this viewer token is not one of this room's")
    bans.check(db, viewer)
    return viewer


def _registration_of(db: Session, signer: Signer, event_id: int, token: str) -> int:
    """The id of a live registration of this session behind a manage token; 422 otherwise."""
    try:
        found = registration.from_manage_token(db, signer, token)
    except NotFound:
        found = None
    if found is None or found.event_id != event_id \
            or found.status == RegistrationStatus.cancelled or found.id is None:
        raise Invalid("invalid_ticket", "this ticket is not a registration for this session",
                      field="manage_token")
    return found.id


def _ticket_of(db: Session, signer: Signer, event_id: int, ticket: str) -> int | None:
    payload = signer.loads(TICKET_PURPOSE, ticket, max_age_s=TICKET_MAX_AGE_S)
    found = db.get(Registration, payload["r"]) if isinstance(payload, dict) \
        and isinstance(payload.get("r"), int) and payload.get("e") == event_id else None
    if found is None or found.erased_at or found.status == RegistrationStatus.cancelled:
        return None
    return found.id


def viewer_public(viewer: Viewer) -> dict[str, Any]:
    return {"id": viewer.id, "nickname": viewer.nickname,
            "registered": viewer.registration_id is not None}


# ---- messages -----------------------------------------------------------------------------

def send(db: Session, viewer: Viewer, sent: protocol.Sent,
         now: datetime | None = None, sender_key: str = "") -> LiveMessage:
    """A viewer's comment or question: held (pre-moderation) or approved with its seq (post).
    Raises with the protocol's codes: closed, banned, too_long, blocked_word, rate_limited
    (per viewer, and per address: `sender_key` is address_key's hash of it). Flushes. A
    question's own row is streaming.messages.send's."""
    now = now or utcnow()
    event = lock_event(db, viewer.event_id)
    room = db.get(LiveRoom, viewer.event_id)
    if not is_open(event, room, now):
        raise Conflict(protocol.CLOSED, "the room takes no messages now")
    viewer = db.get(Viewer, viewer.id, populate_existing=True) or viewer
    bans.check(db, viewer, now)
    text = texts.checked(db, sent.text)
    pace.check_viewer(viewer, room, now)
    key = sender_key
    if key:
        pace.check_address(pace.count_since(db, LiveMessage, viewer.event_id, key,
                                            now - ADDRESS_WINDOW),
                           ADDRESS_MESSAGES, ADDRESS_WINDOW, "messages")
    viewer.last_message_at = now
    db.add(viewer)
    # On air, the server knows the position: seconds since the on-air moment (the archive's).
    on_air = live_state.live_position(db, event, now)
    message = LiveMessage(event_id=viewer.event_id, viewer_id=viewer.id, kind=sent.kind,
                          author=viewer.nickname, text=text, client_id=sent.client_id,
                          state="held", video_time=sent.video_time if on_air is None else on_air,
                          created_at=now,
                          address_key=key, registered=viewer.registration_id is not None)
    db.add(message)
    db.flush()
    if event.moderation == Moderation.post:
        _approve(db, message, None, now)
        db.flush()
    return message


def held(db: Session, event_id: int, limit: int = 200) -> list[LiveMessage]:
    """The moderation queue, oldest first."""
    return list(db.exec(select(LiveMessage).where(
        LiveMessage.event_id == event_id, LiveMessage.state == "held")
        .order_by(col(LiveMessage.id)).limit(limit)))


def moderate(db: Session, actor: StaffUser, message_id: int, action: str,
             now: datetime | None = None) -> tuple[LiveMessage, protocol.Frames]:
    """A host's decision on a message: approve (it gets its seq), reject, pin, unpin, answered.
    A message another host already decided is 409 already_handled: no message is handled twice.
    Returns the message and the frames the room and its hosts must see. Flushes. A question's
    own row follows through streaming.messages.moderate."""
    now = now or utcnow()
    if action not in ACTIONS:
        raise Invalid("invalid", f"action: one of {', '.join(sorted(ACTIONS))}", field="action")
    found = db.get(LiveMessage, message_id) if 0 < message_id <= 2**31 - 1 else None
    if found is None:
        raise NotFound("message_not_found", f"no message with id {message_id}")
    event = sessions.get_visible_event(db, found.event_id, actor)
    permissions.require_runner(db, actor, event)
    lock_event(db, found.event_id)
    message = db.get(LiveMessage, message_id, populate_existing=True)
    assert message is not None
    frames = protocol.Frames()
    if action == "reject" and message.state == "approved":
        # Taken back after it was shown (post-moderation, or a host who thinks again): it
        # leaves every page; a second host's reject finds it handled.
        message.state, message.pinned = "rejected", False
        message.decided_at, message.decided_by = now, actor.id
        db.add(message)
        frames.room.append(stream.removed_frame(message, stream.record(db, message, "removed")))
        frames.hosts.append(decided_frame(message))
    elif action in ("approve", "reject"):
        if message.state != "held":
            raise Conflict("already_handled", "another host has decided on this message")
        if action == "approve":
            _approve(db, message, actor, now)
            frames.room.append(comment_frame(message))
        else:
            message.state, message.decided_at, message.decided_by = "rejected", now, actor.id
            db.add(message)
            # Its sender's page waits for a decision ("waits for a host"); the others have
            # never seen it and drop an id they do not show.
            frames.room.append(protocol.encode(protocol.REMOVED, id=message.id))
        frames.hosts.append(decided_frame(message))
    else:
        if message.state != "approved":
            raise Conflict("not_approved", "only an approved message can be pinned or marked")
        if action in ("pin", "unpin"):
            message.pinned = action == "pin"
            db.add(message)
            position = stream.record(db, message, "pinned", pinned=message.pinned)
            frames.room.append(stream.pinned_frame(message, position))
    db.flush()
    audit.record(db, actor, f"live.{action}", "event", message.event_id,
                 unit_id=event.unit_id, changes={"message": message.id})
    return message, frames


def reply(db: Session, actor: StaffUser, message_id: int, text: str,
          now: datetime | None = None) -> tuple[LiveMessage, protocol.Frames]:
    """A host's answer to a message, shown to the room as 官方回复 under the unit's name. A held
    message is approved first, so the room sees what is answered before the answer. Flushes."""
    now = now or utcnow()
    found = db.get(LiveMessage, message_id) if 0 < message_id <= 2**31 - 1 else None
    if found is None:
        raise NotFound("message_not_found", f"no message with id {message_id}")
    event = sessions.get_visible_event(db, found.event_id, actor)
    permissions.require_runner(db, actor, event)
    words = texts.checked(db, text, words=False)
    lock_event(db, found.event_id)
    message = db.get(LiveMessage, message_id, populate_existing=True)
    assert message is not None
    if message.state not in ("held", "approved"):
        raise Conflict("already_handled", "this message was rejected or removed")
    frames = protocol.Frames()
    if message.state == "held":
        _approve(db, message, actor, now)
        frames.room.append(comment_frame(message))
        frames.hosts.append(decided_frame(message))
    unit = db.get(Unit, event.unit_id)
    answer = LiveMessage(event_id=message.event_id, kind="reply",
                         author=(unit.name if unit else "")[:40], text=words, state="held",
                         reply_to=message.id, created_at=now,
                         video_time=message.video_time)
    db.add(answer)
    db.flush()
    _approve(db, answer, actor, now)
    db.flush()
    frames.room.append(comment_frame(answer))
    audit.record(db, actor, "live.reply", "event", message.event_id, unit_id=event.unit_id,
                 changes={"message": message.id, "reply": answer.id})
    return answer, frames


