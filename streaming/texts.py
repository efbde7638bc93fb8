"""What a viewer may write in a room (a comment, a question, a host's reply): the length, the
blocked words of the district office's list, no control characters. One place for the room and
the questions (streaming.room, streaming.questions), one layer below both."""

from __future__ import annotations

from sqlmodel import Session, col, select

from events import audit, permissions
from events.errors import Invalid
from events.models import StaffUser
from events.units import clean_text
from streaming import protocol
from streaming.models import BlockedWord

MAX_TEXT = 300
MAX_WORDS = 500


def checked(db: Session, text: str, *, words: bool = True, limit: int = MAX_TEXT) -> str:
    """The text as stored: control characters gone, trimmed; 422 `empty`, `too_long` (more than
    `limit` characters) or `blocked_word` (unless `words` is False: a host's own words)."""
    text = clean_text(text, "text", multiline=True).strip()
    if not text:
        raise Invalid("empty", "say something", field="text")
    if len(text) > limit:
        raise Invalid(protocol.TOO_LONG, f"at most {limit} characters", field="text",
                      max_length=limit)
    if words and contains_blocked_word(db, text):
        raise Invalid(protocol.BLOCKED_WORD, "the text holds a word this room does not take",
                      field="text")
    return text


def blocked_words(db: Session) -> list[str]:
    return list(db.exec(select(BlockedWord.word).order_by(col(BlockedWord.word))))


def contains_blocked_word(db: Session, text: str) -> bool:
    folded = text.casefold()
    return any(word.casefold() in folded for word in blocked_words(db))


def set_blocked_words(db: Session, actor: StaffUser, words: list[str]) -> list[str]:
    """Replaces the list (the district office keeps it for every room). Flushes."""
    permissions.require_admin(actor)
    cleaned = sorted({clean_text(word, "words").strip() for word in words} - {""})
    if len(cleaned) > MAX_WORDS or any(len(word) > 40 for word in cleaned):
        raise Invalid("invalid", f"words: at most {MAX_WORDS}, each at most 40 characters",
                      field="words")
    before = blocked_words(db)
    for row in db.exec(select(BlockedWord)):
        db.delete(row)
    db.flush()
    for word in cleaned:
        db.add(BlockedWord(word=word, added_by=actor.id))
    db.flush()
    audit.record(db, actor, "live.blocked_words", "blocked_words", None,
                 changes={"added": sorted(set(cleaned) - set(before)),
                          "removed": sorted(set(before) - set(cleaned))})
    return cleaned
