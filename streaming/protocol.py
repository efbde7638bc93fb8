"""The live room's WebSocket protocol: every frame type, and the one place frames are encoded
and decoded (docs/live-protocol.md tells it in prose; DESIGN.md fixes it).

Frames are JSON text, `{"type": NAME, ...fields}`. A frame a client sends that is not JSON, not
an object, of an unknown type or with a wrong field decodes to BadFrame, which the room answers
with an `error` frame (`bad_message`) and nothing else: the socket stays usable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# ---- server → client
# {viewer (null: read-only), moderation: pre|post, last_seq, last_pos, pinned, reset, first_seq}
HELLO = "hello"
# {seq, id, kind: comment|question|reply, author, text, video_time, created_at, pos}
COMMENT = "comment"
HELD = "held"  # {client_id, id}: your message waits for a host
REMOVED = "removed"  # {id, pos}
PINNED = "pinned"  # {id, pinned, pos}
VIEWERS = "viewers"  # {count}
ERROR = "error"  # {code, message}
ROOM = "room"  # {open, moderation: pre|post, slow_mode_s}: a host changed the room's rules

# ---- server → host (the console's socket, /ws/events/{id}/host; it hears the room's frames too)
QUEUED = "queued"  # {message}: a held message joined the queue
DECIDED = "decided"  # {id, state}: a host approved, rejected or removed it: off every queue
# {}: Redis is back after the processes could not hear each other; the queue's frames of that
# while are lost (the room's are read back by position): the console reads its queue again.
RESYNC = "resync"

# A question of the room's list changed (asked in public, voted, marked, answered, merged):
# its public fields (streaming.questions.question_public); merged → {id, state, merged_into}.
QUESTION = "question"
# Questions' vote counts that changed, at most one frame a second per room (streaming.tallies).
VOTES = "votes"  # {counts: {question id: votes}}

# ---- client → server
SEND_COMMENT = "comment"  # {text, client_id, video_time?}
SEND_QUESTION = "question"  # {text, client_id, video_time?}: a chat message and a Question
VOTE = "vote"  # {id}: a question's; counted silently (the room's `question` frame follows)
CLIENT_TYPES = frozenset({SEND_COMMENT, SEND_QUESTION, VOTE})

# ---- error codes
RATE_LIMITED = "rate_limited"
BANNED = "banned"
TOO_LONG = "too_long"
BLOCKED_WORD = "blocked_word"
BAD_MESSAGE = "bad_message"
CLOSED = "closed"
JOIN_REQUIRED = "join_required"  # a frame from a socket without a token (it only watches)
ALREADY_VOTED = "already_voted"  # a `vote` for a question this viewer already voted for
ERROR_CODES = frozenset({RATE_LIMITED, BANNED, TOO_LONG, BLOCKED_WORD, BAD_MESSAGE, CLOSED,
                         ALREADY_VOTED, JOIN_REQUIRED})

MAX_FRAME_BYTES = 4096
MAX_CLIENT_ID = 64


@dataclass(frozen=True)
class Sent:
    """A comment or question a viewer sent."""

    kind: str  # comment | question
    text: str
    client_id: str
    video_time: float | None


@dataclass(frozen=True)
class Vote:
    """A vote for a question of the room's list (a Question's id, streaming.questions)."""

    question_id: int


@dataclass(frozen=True)
class BadFrame:
    why: str


@dataclass
class Frames:
    """What a change shows: frames for the whole room, and frames for its hosts only."""

    room: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)

    def extend(self, more: Frames) -> None:
        self.room += more.room
        self.hosts += more.hosts


def encode(frame_type: str, **fields: Any) -> str:
    """A frame as the wire carries it (the type first, UTF-8 text, no spaces)."""
    return json.dumps({"type": frame_type, **fields}, ensure_ascii=False, separators=(",", ":"))


def seq_of(frame: str) -> int | None:
    """A comment frame's seq (None for other frames): what a socket sends once."""
    if not frame.startswith('{"type":"comment"'):
        return None
    seq = json.loads(frame).get("seq")
    return seq if isinstance(seq, int) else None


_POSITIONED = ('{"type":"comment"', '{"type":"removed"', '{"type":"pinned"')


def pos_of(frame: str) -> int | None:
    """The position in the room's stream of a comment, removed or pinned frame (None for other
    frames): what a socket sends once, and in order (streaming.stream)."""
    if not frame.startswith(_POSITIONED):
        return None
    pos = json.loads(frame).get("pos")
    return pos if isinstance(pos, int) and not isinstance(pos, bool) else None


def error(code: str, message: str) -> str:
    assert code in ERROR_CODES, code
    return encode(ERROR, code=code, message=message)


def refusal(code: str, message: str, retry_after_s: int | None) -> str:
    """An `error` frame that says, when the domain knows it (`rate_limited`: slow mode, two
    messages within 2 s), in `retry_after_s` how many seconds until the next is taken."""
    if retry_after_s is None:
        return error(code, message)
    assert code in ERROR_CODES, code
    return encode(ERROR, code=code, message=message, retry_after_s=retry_after_s)


def decode(text: str | bytes) -> Sent | Vote | BadFrame:
    """What a client's frame asks; BadFrame for anything else."""
    if isinstance(text, bytes) or len(text.encode("utf-8", "surrogatepass")) > MAX_FRAME_BYTES:
        return BadFrame("frames are JSON text of at most 4 KB")
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError):
        return BadFrame("not JSON")
    if not isinstance(frame, dict) or frame.get("type") not in CLIENT_TYPES:
        return BadFrame("expected an object whose type is comment, question or vote")
    if frame["type"] == VOTE:
        question_id = frame.get("id")
        if not isinstance(question_id, int) or isinstance(question_id, bool) \
                or not 1 <= question_id <= 2**31 - 1:
            return BadFrame("vote: id must be a question's id")
        return Vote(question_id)
    words, client_id, moment = frame.get("text"), frame.get("client_id", ""), \
        frame.get("video_time")
    if not isinstance(words, str) or not isinstance(client_id, str) \
            or len(client_id) > MAX_CLIENT_ID or not client_id.isprintable():
        return BadFrame("text must be a string, client_id a string of at most 64 characters")
    try:  # a lone surrogate ("\ud800") decodes from JSON but is no text
        words.encode("utf-8")
        client_id.encode("utf-8")
    except UnicodeEncodeError:
        return BadFrame("text must be valid Unicode")
    if moment is not None and (isinstance(moment, bool) or not isinstance(moment, int | float)
                               or not 0 <= moment < 7 * 24 * 3600):
        return BadFrame("video_time must be seconds into the video")
    return Sent(frame["type"], words, client_id, float(moment) if moment is not None else None)
