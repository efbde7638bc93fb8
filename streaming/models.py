"""Tables of the streaming half: a session's recordings and the jobs that transcode them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from events.timeutil import utcnow
from server.db import UTCDateTime


class Recording(SQLModel, table=True):
    """One upload of a session's recording. The session plays the newest one that succeeded;
    a re-upload that fails leaves the one before it playing."""

    __table_args__ = (Index("ix_recording_event_created", "event_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="event.id", ondelete="CASCADE")
    # queued | running | succeeded | failed: its job's, kept here for the session's pages.
    state: str = Field(default="queued", max_length=10)
    # Where its HLS lives in the store (streaming.storage), once published.
    media_key: str = Field(default="", max_length=80)
    duration_s: float = Field(default=0)
    width: int = Field(default=0)
    height: int = Field(default=0)
    has_audio: bool = Field(default=False)
    # The renditions written, highest first, comma-separated: 720p,480p,360p or audio.
    renditions: str = Field(default="", max_length=80)
    # Bytes: recordings are larger than 2 GiB (a 64-bit column).
    size_bytes: int = Field(default=0, sa_type=BigInteger)
    uploaded_by: int | None = Field(default=None, foreign_key="staffuser.id",
                                    ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class LiveStream(SQLModel, table=True):
    """A session's webcast (streaming.live_hub): its ingest key, the folder its encoder writes,
    and what happened to it. One per session; a rotated key is a new hash on the same row.

    state: idle (no publisher yet) → preview (a publisher, the session not live: staff only) →
    on_air (the session is live: the public sees the segments from `on_air_at`) ⇄ waiting (the
    publisher dropped: within the grace time the same stream goes on) → ended (the session
    ended; `recording_id` names the archive made of the on-air segments)."""

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="event.id", ondelete="CASCADE", unique=True)
    # The key's SHA-256 (hex): the key itself is shown once, when issued, and never stored.
    key_hash: str = Field(default="", max_length=64, index=True)
    key_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    key_issued_by: int | None = Field(default=None, foreign_key="staffuser.id",
                                      ondelete="SET NULL")
    state: str = Field(default="idle", max_length=10)
    # rtmp | browser: what the last publisher was.
    source: str = Field(default="", max_length=10)
    # The live folder (streaming.storage's live root), named like a recording's key.
    media_key: str = Field(default="", max_length=80)
    width: int = Field(default=0)
    height: int = Field(default=0)
    # Publisher connections so far: each writes a run of segments (a discontinuity between).
    runs: int = Field(default=0)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    on_air_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    off_air_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The last time the publisher's signal came or went (the room's 信号中断 notice).
    signal_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Why the last publisher was refused or cut off (shown to staff; no personal data).
    last_error: str = Field(default="", max_length=200)
    recording_id: int | None = Field(default=None, foreign_key="recording.id",
                                     ondelete="SET NULL")
    # Evidence: the most sockets watching at once, and the distinct viewers, while live.
    peak_viewers: int = Field(default=0)
    total_viewers: int = Field(default=0)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TranscodeJob(SQLModel, table=True):
    """Turning one recording into HLS. Claimed with a lease like the outbox (events.delivery):
    a worker that dies mid-job leaves its lease to run out, and the job is taken up again
    (streaming.jobs), at most MAX_ATTEMPTS times."""

    id: int | None = Field(default=None, primary_key=True)
    recording_id: int = Field(foreign_key="recording.id", ondelete="CASCADE", index=True)
    event_id: int = Field(foreign_key="event.id", ondelete="CASCADE", index=True)
    # queued | running | succeeded | failed
    state: str = Field(default="queued", max_length=10, index=True)
    progress: float = Field(default=0)
    attempts: int = Field(default=0)
    # A queued job waits until then (a retry's backoff).
    due_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # While running: the worker's claim ends then (the database's clock) unless it renews it.
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # While running: the token of the attempt that holds it. Every write of the run names it,
    # so a run that lost its lease (another attempt holds a new token) can change nothing.
    lease: str = Field(default="", max_length=32, sa_column_kwargs={"server_default": ""})
    # The tail of ffmpeg's complaint, or why the job gave up: shown to staff, no personal data.
    error: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Upload(SQLModel, table=True):
    """A resumable upload in progress (the console's): its bytes so far are in the store's
    uploads folder; a dropped connection goes on from `received`."""

    id: int | None = Field(default=None, primary_key=True)
    # The upload's capability in its URL, beside the staff session that must match `user_id`.
    token: str = Field(max_length=64, unique=True)
    event_id: int = Field(foreign_key="event.id", ondelete="CASCADE", index=True)
    user_id: int = Field(foreign_key="staffuser.id", ondelete="CASCADE")
    size_bytes: int = Field(sa_type=BigInteger)
    received: int = Field(default=0, sa_type=BigInteger)
    path: str = Field(max_length=200)
    # The job it became, once complete and accepted.
    job_id: int | None = Field(default=None, foreign_key="transcodejob.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class RecordingTrack(SQLModel, table=True):
    """Captions (or subtitles) in one language, or the chapters, of a recording: WebVTT, as
    staff attached it (SRT is converted on the way in)."""

    id: int | None = Field(default=None, primary_key=True)
    recording_id: int = Field(foreign_key="recording.id", ondelete="CASCADE", index=True)
    kind: str = Field(max_length=10)  # captions | subtitles | chapters
    language: str = Field(default="zh", max_length=10)
    label: str = Field(default="", max_length=40)
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class LiveRoom(SQLModel, table=True):
    """A session's live room: the last `seq` given (gapless, under the session's lock), the
    last position of its stream of changes (LiveChange), and what its hosts set."""

    event_id: int = Field(foreign_key="event.id", primary_key=True, ondelete="CASCADE")
    last_seq: int = Field(default=0)
    last_pos: int = Field(default=0)
    closed: bool = Field(default=False)
    # Seconds a viewer waits between two messages (0: the default rate limit only).
    slow_mode_s: int = Field(default=0)


class Viewer(SQLModel, table=True):
    """Someone in a room: a nickname and a signed token (streaming.room); no account."""

    __table_args__ = (Index("ix_viewer_event_address", "event_id", "address_key", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="event.id", index=True, ondelete="CASCADE")
    nickname: str = Field(max_length=20)
    # Set when the viewer showed a registration's manage token: shown as registered.
    registration_id: int | None = Field(default=None, foreign_key="registration.id",
                                        ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_message_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    banned_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # A timeout's end (None: banned for the rest of the session); streaming.bans.
    banned_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ban_reason: str = Field(default="", max_length=200)
    # A keyed hash of the address it joined from (no address is stored): joins per address
    # are limited.
    address_key: str = Field(default="", max_length=64)


class LiveMessage(SQLModel, table=True):
    """A comment, a question or a host's reply. Approved ones carry the room's next `seq`."""

    __table_args__ = (UniqueConstraint("event_id", "seq"),
                      Index("ix_livemessage_event_state", "event_id", "state"),
                      Index("ix_livemessage_event_address", "event_id", "address_key",
                            "created_at"))

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="event.id", ondelete="CASCADE")
    viewer_id: int | None = Field(default=None, foreign_key="viewer.id", index=True,
                                  ondelete="SET NULL")
    kind: str = Field(max_length=10)  # comment | question | reply
    author: str = Field(max_length=40)
    text: str = Field(sa_column=Column(Text, nullable=False))
    client_id: str = Field(default="", max_length=64)
    # held | approved | rejected | removed
    state: str = Field(max_length=10)
    seq: int | None = Field(default=None)
    # Its position in the room's stream of changes when approved (LiveChange).
    pos: int | None = Field(default=None)
    pinned: bool = Field(default=False)
    # Seconds into the video when it was sent (the premiere's position, or the live stream's).
    video_time: float | None = Field(default=None)
    reply_to: int | None = Field(default=None, foreign_key="livemessage.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    decided_by: int | None = Field(default=None, foreign_key="staffuser.id", ondelete="SET NULL")
    # A keyed hash of the address it came from: messages per address are limited, however
    # many nicknames one address takes.
    address_key: str = Field(default="", max_length=64)
    # Its author linked a registration for the session when joining (shown as 已报名).
    registered: bool = Field(default=False)


class LiveChange(SQLModel, table=True):
    """One change of what a room's pages show, at the room's next position (`pos`, gapless
    per room, under the session's lock, streaming.stream): a message shown (`comment`), taken
    away (`removed`: rejected after approval, or its author banned), pinned or unpinned
    (`pinned`, with the state it set). A page that reconnects after a position replays these in
    order (docs/live-protocol.md)."""

    __table_args__ = (UniqueConstraint("event_id", "pos"),)

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="event.id", ondelete="CASCADE")
    pos: int
    kind: str = Field(max_length=10)  # comment | removed | pinned
    message_id: int = Field(foreign_key="livemessage.id", ondelete="CASCADE")
    pinned: bool = Field(default=False)


class BlockedWord(SQLModel, table=True):
    """A word no room message may carry (staff keep the list): such a message is refused with
    `blocked_word`."""

    id: int | None = Field(default=None, primary_key=True)
    word: str = Field(max_length=40, unique=True)
    added_by: int | None = Field(default=None, foreign_key="staffuser.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Question(SQLModel, table=True):
    """A citizen's question to the session's hosts (streaming.questions): asked through the API
    (collected before the session, as the plan has it for 市民对话一把手) or through the room's
    socket, where it is also a LiveMessage of kind question (`message_id`), kept in step.

    held → approved | rejected (a host, pre-moderation; post publishes at once as approved);
    approved ⇄ shortlisted → answering (one per session) → answered; any open one may be merged
    into another of its session (`merged_into`), which takes its votes. `votes` counts the
    QuestionVote rows, written under the session's lock."""

    __table_args__ = (Index("ix_question_event_state", "event_id", "state"),)

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="event.id", ondelete="CASCADE")
    viewer_id: int | None = Field(default=None, foreign_key="viewer.id", index=True,
                                  ondelete="SET NULL")
    # The viewer's nickname when asked: the only thing the public learns of the author.
    author: str = Field(max_length=40)
    text: str = Field(sa_column=Column(Text, nullable=False))
    # held | approved | rejected | shortlisted | answering | answered | merged
    state: str = Field(max_length=12)
    votes: int = Field(default=0)
    # When a host shortlisted it: a question no longer being answered goes back to the list.
    shortlisted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The official answer (官方回复), shown publicly, and who wrote it last.
    answer: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    answer_by: int | None = Field(default=None, foreign_key="staffuser.id", ondelete="SET NULL")
    answer_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    answered_by: int | None = Field(default=None, foreign_key="staffuser.id",
                                    ondelete="SET NULL")
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Seconds into the video when it was answered (null: the position was not known).
    answered_at_video_time: float | None = Field(default=None)
    # For a suggestion (建议): adopted | partly_adopted | not_adopted ("" none given); a
    # not_adopted one carries its reason, shown publicly (the plan's 二(一)).
    outcome: str = Field(default="", max_length=16)
    outcome_reason: str = Field(default="", sa_column=Column(Text, nullable=False,
                                                             server_default=""))
    # When the unit was reminded that it is still unanswered (once).
    answer_reminded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    merged_into: int | None = Field(default=None, foreign_key="question.id", ondelete="SET NULL")
    message_id: int | None = Field(default=None, foreign_key="livemessage.id", unique=True,
                                   ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    decided_by: int | None = Field(default=None, foreign_key="staffuser.id", ondelete="SET NULL")


class QuestionVote(SQLModel, table=True):
    """One viewer's vote for one question: the unique pair is what makes a second vote
    `already_voted`, whatever the number of processes."""

    __table_args__ = (UniqueConstraint("question_id", "viewer_id"),)

    id: int | None = Field(default=None, primary_key=True)
    question_id: int = Field(foreign_key="question.id", ondelete="CASCADE")
    viewer_id: int = Field(foreign_key="viewer.id", index=True, ondelete="CASCADE")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
