"""A session's ingest key: what lets an encoder (OBS, ffmpeg) publish its webcast.

The key is shown once, when issued; the database keeps only its SHA-256, so a leaked backup
publishes nothing. A second issue rotates it (the old one stops working at once), a revoke
ends it, and each key runs out `ingest_key_hours` after it was issued. The RTMP gate
(streaming.rtmp) asks `publisher_of` before it takes a single media message.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlmodel import Session, select

from events import audit, permissions, sessions
from events.errors import Conflict, NotFound
from events.models import Event, EventStatus, StaffUser
from events.timeutil import as_utc, utcnow
from server.config import Settings
from streaming.models import LiveStream

log = logging.getLogger("kaifang.ingest")

# 32 random bytes: 256 bits, 43 URL-safe characters (an RTMP stream name takes them as they are).
KEY_BYTES = 32
# The longest stream name looked at: a real key is 43 characters, an encoder may add "?…".
MAX_NAME = 200
# A session over (or called off) takes no publisher and gets no key.
CLOSED = frozenset({EventStatus.cancelled, EventStatus.ended, EventStatus.archived})
# What staff read in the console when a publisher is refused or cut off (LiveStream.last_error).
WRONG_KEY = "推流密钥无效"
EXPIRED_KEY = "推流密钥已过期，请重新生成"
REVOKED_KEY = "推流密钥已更换或撤销，推流已断开"
SESSION_CLOSED = "场次已结束或已取消，不再接收推流"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_prefix(key: str) -> str:
    """What a log line may show of a key: its first 4 characters."""
    return key[:4] + "…"


def rtmp_url(settings: Settings) -> str:
    """Where encoders publish: the configured address, else the public URL's host on our port."""
    if settings.rtmp_public_url:
        return settings.rtmp_public_url.rstrip("/")
    host = urlsplit(settings.public_url).hostname or "127.0.0.1"
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return f"rtmp://{host}:{settings.rtmp_port}/live"


def _stream_of(db: Session, event_id: int) -> LiveStream | None:
    return db.exec(select(LiveStream).where(LiveStream.event_id == event_id)).first()


def runnable_event(db: Session, user: StaffUser, event_id: int) -> Event:
    """The session, if this staff member runs it (its unit's editors, its assigned hosts, the
    office); 404 for one they may not see, 403 for one they see and do not run."""
    event = sessions.get_visible_event(db, event_id, user)
    permissions.require_runner(db, user, event)
    return event


def _require_open(event: Event) -> None:
    if event.status in CLOSED:
        raise Conflict("event_closed", f"a {event.status.value} session takes no webcast")


def issue_key(db: Session, user: StaffUser, event: Event, hours: int) -> tuple[LiveStream, str]:
    """A new key for the session (rotating any before it) → the row and the key, which is
    never stored and never seen again."""
    _require_open(event)
    assert event.id is not None
    stream = _stream_of(db, event.id)
    rotated = stream is not None and bool(stream.key_hash)
    if stream is None:
        stream = LiveStream(event_id=event.id)
    key = secrets.token_urlsafe(KEY_BYTES)
    now = utcnow()
    stream.key_hash = key_hash(key)
    stream.key_expires_at = now + timedelta(hours=hours)
    stream.key_issued_by = user.id
    stream.updated_at = now
    db.add(stream)
    db.flush()
    audit.record(db, user, "ingest.rotate" if rotated else "ingest.issue", "event", event.id,
                 unit_id=event.unit_id, changes={"expires_at": stream.key_expires_at})
    return stream, key


def revoke_key(db: Session, user: StaffUser, event: Event) -> None:
    """The session's key stops working; 404 no_ingest_key when it has none."""
    assert event.id is not None
    stream = _stream_of(db, event.id)
    if stream is None or not stream.key_hash:
        raise NotFound("no_ingest_key", "this session has no ingest key")
    stream.key_hash = ""
    stream.key_expires_at = None
    stream.updated_at = utcnow()
    db.add(stream)
    db.flush()
    audit.record(db, user, "ingest.revoke", "event", event.id, unit_id=event.unit_id)


def key_status(db: Session, event: Event) -> LiveStream | None:
    assert event.id is not None
    return _stream_of(db, event.id)


def key_active(stream: LiveStream | None, now: datetime | None = None) -> bool:
    return stream is not None and bool(stream.key_hash) and stream.key_expires_at is not None \
        and as_utc(stream.key_expires_at) > (now or utcnow())


class KeyRefused(Exception):
    """A publisher's key does not open a session: `code` for the log, `message` (Chinese) for
    the console, `event_id` when the key was the session's once (expired, or the session over)."""

    def __init__(self, code: str, message: str, event_id: int | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.message = message
        self.event_id = event_id


@dataclass(frozen=True)
class Publisher:
    event_id: int
    key_hash: str


def stream_key_of(name: str) -> str:
    """The key in a publish command's stream name: encoders may append "?query"."""
    return name.split("?", 1)[0].strip()


def publisher_of(db: Session, name: str) -> Publisher:
    """Which session a publish command's stream name opens; KeyRefused when none."""
    key = stream_key_of(name[:MAX_NAME])
    if len(key) < 20:  # no key we issue is shorter: look nothing up
        raise KeyRefused("wrong_key", WRONG_KEY)
    digest = key_hash(key)
    stream = db.exec(select(LiveStream).where(LiveStream.key_hash == digest)).first()
    if stream is None:
        raise KeyRefused("wrong_key", WRONG_KEY)
    if not key_active(stream):
        raise KeyRefused("expired_key", EXPIRED_KEY, stream.event_id)
    event = db.get(Event, stream.event_id)
    if event is None or event.status in CLOSED:
        raise KeyRefused("event_closed", SESSION_CLOSED, stream.event_id)
    return Publisher(stream.event_id, digest)


def still_valid(db: Session, publisher: Publisher) -> bool:
    """While publishing: the key was neither rotated, revoked nor run out."""
    stream = _stream_of(db, publisher.event_id)
    return key_active(stream) and stream is not None and stream.key_hash == publisher.key_hash


def note_error(db: Session, event_id: int, message: str) -> None:
    """Why the session's last publisher was refused or cut off, for the console."""
    stream = _stream_of(db, event_id)
    if stream is None:
        return
    stream.last_error = message[:200]
    stream.updated_at = utcnow()
    db.add(stream)
    db.flush()
