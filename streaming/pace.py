"""How fast a room takes what its viewers send: one message or question per viewer per
MIN_INTERVAL (or the slow mode's wait), ADDRESS_MESSAGES an ADDRESS_WINDOW per address,
ADDRESS_JOINS viewers a JOIN_WINDOW per address, and ADDRESS_VOTES votes per address and
question a VOTE_WINDOW. One place for the room and the questions (streaming.room,
streaming.questions), one layer below both.

The per-address limits count rows by `address_key` (a keyed hash; no address is stored) and
are generous, as a community centre or an office may watch together behind one address: a
family on one Wi-Fi may all vote for a question, a hundred viewers minted at one address may
not.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from events.errors import Throttled
from streaming import protocol
from streaming.models import LiveMessage, LiveRoom, QuestionVote, Viewer

# At least this long between two messages (or questions) of one viewer, slow mode or not.
MIN_INTERVAL = timedelta(seconds=2)
ADDRESS_MESSAGES, ADDRESS_WINDOW = 20, timedelta(seconds=10)
ADDRESS_JOINS, JOIN_WINDOW = 100, timedelta(minutes=5)
ADDRESS_VOTES, VOTE_WINDOW = 5, timedelta(minutes=10)


def check_viewer(viewer: Viewer, live_room: LiveRoom | None, now: datetime) -> None:
    """429 `rate_limited` (with the seconds to wait) when the viewer's last message or
    question is closer than MIN_INTERVAL or the room's slow mode."""
    wait = max(MIN_INTERVAL, timedelta(seconds=live_room.slow_mode_s if live_room else 0))
    if viewer.last_message_at is not None and now < viewer.last_message_at + wait:
        left = (viewer.last_message_at + wait - now).total_seconds()
        raise Throttled(protocol.RATE_LIMITED, "wait a moment before the next message",
                        retry_after_s=max(1, round(left + 0.5)))


def check_address(sent: int, limit: int, window: timedelta, what: str) -> None:
    """429 `rate_limited` once `sent` (an address's count in the window) reaches `limit`."""
    if sent >= limit:
        raise Throttled(protocol.RATE_LIMITED, f"too many {what} from this address; wait a "
                        "moment", retry_after_s=int(window.total_seconds()))


def count_since(db: Session, table: type[Viewer] | type[LiveMessage], event_id: int, key: str,
                since: datetime) -> int:
    """Rows of one address in a room since a moment."""
    return int(db.exec(select(func.count()).select_from(table).where(
        table.event_id == event_id, table.address_key == key,
        col(table.created_at) > since)).one())


def check_vote(db: Session, viewer: Viewer, question_id: int, now: datetime) -> None:
    """429 `rate_limited` past ADDRESS_VOTES votes for one question from viewers of one address
    a VOTE_WINDOW."""
    if not viewer.address_key:
        return
    cast = int(db.exec(select(func.count()).select_from(QuestionVote)
                       .join(Viewer, col(Viewer.id) == col(QuestionVote.viewer_id))
                       .where(QuestionVote.question_id == question_id,
                              Viewer.address_key == viewer.address_key,
                              col(QuestionVote.created_at) > now - VOTE_WINDOW)).one())
    check_address(cast, ADDRESS_VOTES, VOTE_WINDOW, "votes for this question")
