"""The live room's rules: who is in it, what they may send, what hosts decide, and the order.

Every approved message gets the room's next `seq`, and every change a page shows its next
position (streaming.stream), under the session's lock (events.locking), in the transaction
that makes it: gapless and rising per session, whatever the number of hosts and processes.
Pre-moderation (the default, plan 信息发布审核) holds each message until a host approves it;
post-moderation publishes at once and a host may remove it. Functions flush; the caller
commits, then tells the room (streaming.broker) what changed. The room's rules (open, slow mode,
moderation) are streaming.room_rules.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from events import audit, permissions, registration, sessions
from events.clients import address_bucket
from events.errors import Conflict, Forbidden, Invalid, NotFound, Throttled, Unauthenticated
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
from streaming import protocol, stream
from streaming.blocked_words import (  # noqa: F401 (the room's API)
    MAX_WORDS,
    blocked_words,
    contains_blocked_word,
    set_blocked_words,
)
from streaming.models import LiveMessage, LiveRoom, Viewer
from streaming.room_rules import (  # noqa: F401 (the room's API)
    MAX_SLOW_MODE_S,
    configure,
    is_open,
    room_public,
    tally,
)
from streaming.stream import (  # noqa: F401 (the room's API)
    BACKLOG_PAGE,
    backlog,
    comment_frame,
    message_public,
    pinned_ids,
    room_of,
)

VIEWER_PURPOSE = "live-viewer"
TICKET_PURPOSE = "live-ticket"
TICKET_MAX_AGE_S = 60 * 24 * 3600
VIEWER_TOKEN_MAX_AGE_S = 7 * 24 * 3600
MAX_TEXT = 300
MAX_NICKNAME = 20
# At least this long between two messages of one viewer, slow mode or not.
MIN_INTERVAL = timedelta(seconds=2)
# Per address, whatever the nicknames taken there; generous, as a community centre or an office
# may watch together behind one address.
ADDRESS_MESSAGES, ADDRESS_WINDOW = 20, timedelta(seconds=10)
ADDRESS_JOINS, JOIN_WINDOW = 100, timedelta(minutes=5)
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
    ADDRESS_JOINS a JOIN_WINDOW from one address (rate_limited). The viewer shows as registered
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
    if key and _count(db, Viewer, event.id, key, now - JOIN_WINDOW) >= ADDRESS_JOINS:
        # Not under the session's lock: two racing joins may both pass; the limit is against
        # floods, not exact.
        raise Throttled(protocol.RATE_LIMITED, "too many viewers from this address; wait a "
                        "few minutes", retry_after_s=int(JOIN_WINDOW.total_seconds()))
    linked = _registration_of(db, signer, event.id, manage_token) if manage_token \
        else _ticket_of(db, signer, event.id, ticket) if ticket else None
    viewer = Viewer(event_id=event.id, nickname=name, address_key=key, created_at=now,
                    registration_id=linked)
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
    if viewer.banned_at is not None:
        raise Forbidden(protocol.BANNED, "a host removed you from this room")
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


def _count(db: Session, table: type[Viewer] | type[LiveMessage], event_id: int, key: str,
           since: datetime) -> int:
    """Rows of one address in a room since a moment (the per-address limits)."""
    return int(db.exec(select(func.count()).select_from(table).where(
        table.event_id == event_id, table.address_key == key,
        col(table.created_at) > since)).one())


def viewer_public(viewer: Viewer) -> dict[str, Any]:
    return {"id": viewer.id, "nickname": viewer.nickname,
            "registered": viewer.registration_id is not None}


# ---- messages -----------------------------------------------------------------------------

def message_for_hosts(message: LiveMessage) -> dict[str, Any]:
    """A held message as the hosts' queue shows it (who sent it, to ban them)."""
    return {**message_public(message), "viewer_id": message.viewer_id}


def _approve(db: Session, message: LiveMessage, actor: StaffUser | None, now: datetime) -> None:
    """Gives the message the room's next seq and position: the caller holds the session's
    lock (streaming.questions approves its questions' messages with it)."""
    stream.approve(db, message, actor, now)


def send(db: Session, viewer: Viewer, sent: protocol.Sent,
         now: datetime | None = None, sender_key: str = "") -> LiveMessage:
    """A viewer's comment or question: held (pre-moderation) or approved with its seq (post).
    Raises with the protocol's codes: closed, banned, too_long, blocked_word, rate_limited
    (per viewer, and per address: `sender_key` is address_key's hash of it). Flushes."""
    now = now or utcnow()
    event = lock_event(db, viewer.event_id)
    room = db.get(LiveRoom, viewer.event_id)
    if not is_open(event, room, now):
        raise Conflict(protocol.CLOSED, "the room takes no messages now")
    viewer = db.get(Viewer, viewer.id, populate_existing=True) or viewer
    if viewer.banned_at is not None:
        raise Forbidden(protocol.BANNED, "a host removed you from this room")
    text = clean_text(sent.text, "text", multiline=True).strip()
    if not text:
        raise Invalid("empty", "say something", field="text")
    if len(text) > MAX_TEXT:
        raise Invalid(protocol.TOO_LONG, f"at most {MAX_TEXT} characters", field="text",
                      max_length=MAX_TEXT)
    if contains_blocked_word(db, text):
        raise Invalid(protocol.BLOCKED_WORD, "the message holds a word this room does not take",
                      field="text")
    wait = max(MIN_INTERVAL, timedelta(seconds=room.slow_mode_s if room else 0))
    if viewer.last_message_at is not None and now < viewer.last_message_at + wait:
        left = (viewer.last_message_at + wait - now).total_seconds()
        raise Throttled(protocol.RATE_LIMITED, "wait a moment before the next message",
                        retry_after_s=max(1, round(left + 0.5)))
    key = sender_key
    if key and _count(db, LiveMessage, viewer.event_id, key,
                      now - ADDRESS_WINDOW) >= ADDRESS_MESSAGES:
        raise Throttled(protocol.RATE_LIMITED, "too many messages from this address; wait a "
                        "moment", retry_after_s=int(ADDRESS_WINDOW.total_seconds()))
    viewer.last_message_at = now
    db.add(viewer)
    message = LiveMessage(event_id=viewer.event_id, viewer_id=viewer.id, kind=sent.kind,
                          author=viewer.nickname, text=text, client_id=sent.client_id,
                          state="held", video_time=sent.video_time, created_at=now,
                          address_key=key, registered=viewer.registration_id is not None)
    db.add(message)
    db.flush()
    if event.moderation == Moderation.post:
        _approve(db, message, None, now)
        db.flush()
    if message.kind == "question":  # questions: its votable, answerable row (one line)
        _questions().from_room(db, message)
    return message


def held(db: Session, event_id: int, limit: int = 200) -> list[LiveMessage]:
    """The moderation queue, oldest first."""
    return list(db.exec(select(LiveMessage).where(
        LiveMessage.event_id == event_id, LiveMessage.state == "held")
        .order_by(col(LiveMessage.id)).limit(limit)))


def decided_frame(message: LiveMessage) -> str:
    return protocol.encode(protocol.DECIDED, id=message.id, state=message.state)


def moderate(db: Session, actor: StaffUser, message_id: int, action: str,
             now: datetime | None = None) -> tuple[LiveMessage, protocol.Frames]:
    """A host's decision on a message: approve (it gets its seq), reject, pin, unpin, answered.
    A message another host already decided is 409 already_handled: no message is handled twice.
    Returns the message and the frames the room and its hosts must see. Flushes."""
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
        frames.hosts.append(decided_frame(message))
        if message.kind == "question":  # questions: its row follows the decision
            changed = _questions().message_decided(db, message, actor, now)
            frames.room.extend([changed] if changed else [])
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
    words = clean_text(text, "text", multiline=True).strip()
    if not words:
        raise Invalid("empty", "say something", field="text")
    if len(words) > MAX_TEXT:
        raise Invalid(protocol.TOO_LONG, f"at most {MAX_TEXT} characters", field="text",
                      max_length=MAX_TEXT)
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


def ban(db: Session, actor: StaffUser, event_id: int, viewer_id: int, reason: str,
        now: datetime | None = None) -> tuple[list[int], protocol.Frames]:
    """Removes a viewer from the room: their messages disappear everywhere (the room's lists
    and the hosts' queues). Returns the ids of the approved messages dropped, and the frames.
    Flushes."""
    now = now or utcnow()
    event = sessions.get_visible_event(db, event_id, actor)
    permissions.require_runner(db, actor, event)
    reason = clean_text(reason, "reason").strip()
    if not reason:
        raise Invalid("reason_required", "say why", field="reason")
    lock_event(db, event_id)
    viewer = db.get(Viewer, viewer_id) if 0 < viewer_id <= 2**31 - 1 else None
    if viewer is None or viewer.event_id != event_id:
        raise NotFound("viewer_not_found", f"no viewer {viewer_id} in this room")
    viewer.banned_at, viewer.ban_reason = now, reason[:200]
    db.add(viewer)
    removed, frames = [], protocol.Frames()
    for message in db.exec(select(LiveMessage).where(
            LiveMessage.viewer_id == viewer_id,
            col(LiveMessage.state).in_(["held", "approved"]))):
        if message.state == "approved":
            removed.append(message.id or 0)
            frames.room.append(stream.removed_frame(message, stream.record(db, message,
                                                                           "removed")))
        message.state, message.decided_at, message.decided_by = "removed", now, actor.id
        db.add(message)
        frames.hosts.append(decided_frame(message))
    db.flush()
    audit.record(db, actor, "live.ban", "event", event_id, unit_id=event.unit_id,
                 changes={"viewer": viewer_id, "reason": reason, "removed": len(removed)})
    return removed, frames


def _questions() -> Any:
    """streaming.questions, which imports this module: its hooks above keep a question asked in
    the room and its row in step."""
    from streaming import questions

    return questions


def queued_frame(message: LiveMessage) -> str:
    return protocol.encode(protocol.QUEUED, message=message_for_hosts(message))


