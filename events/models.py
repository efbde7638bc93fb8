"""Tables of the events domain: units, sessions, staff, the audit log."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from events.timeutil import utcnow
from server.db import UTCDateTime, enum_column


class UnitCategory(StrEnum):
    livelihood = "livelihood"
    subdistrict = "subdistrict"
    other = "other"


class EventKind(StrEnum):
    open_meeting = "open_meeting"
    open_day = "open_day"
    public_report = "public_report"
    chief_dialogue = "chief_dialogue"
    broadcast = "broadcast"


class EventMode(StrEnum):
    in_person = "in_person"
    online = "online"
    hybrid = "hybrid"


class Moderation(StrEnum):
    pre = "pre"
    post = "post"


class EventStatus(StrEnum):
    draft = "draft"
    pending_review = "pending_review"
    published = "published"
    live = "live"
    ended = "ended"
    archived = "archived"
    cancelled = "cancelled"


class Role(StrEnum):
    admin = "admin"
    editor = "editor"
    host = "host"


class Unit(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=40, unique=True, index=True)
    name: str = Field(max_length=100)
    name_en: str = Field(default="", max_length=120)
    category: UnitCategory = Field(sa_column=enum_column(UnitCategory))
    sort_order: int = Field(default=0)
    retired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Where quota reminders go; empty: they stay in the console's outbox. Staff data only.
    contact_email: str = Field(default="", max_length=200)
    # The press office (区新闻办, a unit of category other): it writes the broadcast plan's
    # scripts (events.plan). Seeded for the unit `publicity`; the office may mark another.
    press_office: bool = Field(default=False)


class Event(SQLModel, table=True):
    """A public session (会议开放, 开放日, …); named Event to keep 'session' for the database."""

    id: int | None = Field(default=None, primary_key=True)
    kind: EventKind = Field(sa_column=enum_column(EventKind, index=True))
    unit_id: int = Field(foreign_key="unit.id", index=True)
    title: str = Field(max_length=200)
    summary: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    starts_at: datetime = Field(sa_type=UTCDateTime, index=True)
    ends_at: datetime = Field(sa_type=UTCDateTime)
    mode: EventMode = Field(default=EventMode.in_person,
                           sa_column=enum_column(EventMode, default=EventMode.in_person))
    venue: str = Field(default="", max_length=200)
    address: str = Field(default="", max_length=300)
    capacity: int = Field(default=0)
    registration_opens_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    registration_closes_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    moderation: Moderation = Field(default=Moderation.pre,
                                   sa_column=enum_column(Moderation, default=Moderation.pre))
    premiere_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    status: EventStatus = Field(
        default=EventStatus.draft,
        sa_column=enum_column(EventStatus, index=True, default=EventStatus.draft))
    # Shown to the public: why a session was cancelled or postponed.
    public_notice: str = Field(default="", max_length=500)
    postponed_from: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Shown to the editor: why the office sent a draft back.
    review_note: str = Field(default="", max_length=500)
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    minutes: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    attendee_count: int | None = Field(default=None)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # When the registrations' personal data was erased (retention); counts are kept.
    personal_data_purged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_by: int | None = Field(default=None, foreign_key="staffuser.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # When what the public reads last changed after publication (an approved revision or an
    # admin's edit): the portal says "更新于 …" and the audit log says what changed.
    revised_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The themed series it belongs to (events.series), if any; its themes are EventTheme rows.
    # No ON DELETE: SQLite cannot add one to a column of an existing table (and its reflection
    # would not see it), so removing a series clears its sessions' series_id first.
    series_id: int | None = Field(default=None, foreign_key="series.id", index=True)


class CohostState(StrEnum):
    invited = "invited"
    accepted = "accepted"
    declined = "declined"


class EventCohost(SQLModel, table=True):
    event_id: int = Field(foreign_key="event.id", primary_key=True, ondelete="CASCADE")
    unit_id: int = Field(foreign_key="unit.id", primary_key=True)
    # A unit co-hosts (is shown, counts for its quota) only once it accepted (events.cohosts).
    state: CohostState = Field(default=CohostState.invited,
                               sa_column=enum_column(CohostState, default=CohostState.invited))
    responded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    responded_by: int | None = Field(default=None, foreign_key="staffuser.id")


class EventMaterial(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="event.id", index=True, ondelete="CASCADE")
    title: str = Field(max_length=200)
    url: str = Field(max_length=1000)
    position: int = Field(default=0)


class StaffUser(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=60, unique=True, index=True)
    display_name: str = Field(default="", max_length=100)
    password_hash: str = Field(max_length=300)
    role: Role = Field(sa_column=enum_column(Role))
    unit_id: int | None = Field(default=None, foreign_key="unit.id")
    active: bool = Field(default=True)
    # Bumped on password change or logout-everywhere; old cookies stop working.
    session_version: int = Field(default=1)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class LoginFailure(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    # A keyed hash of username and address: throttle state holds no personal data.
    key: str = Field(max_length=64, index=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class AuditEntry(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    user_id: int | None = Field(default=None, foreign_key="staffuser.id")
    username: str = Field(default="", max_length=60)
    action: str = Field(max_length=40)
    entity: str = Field(max_length=20)
    entity_id: int | None = Field(default=None, index=True)
    unit_id: int | None = Field(default=None, index=True)
    # JSON: {"field": [old, new]} or free detail.
    changes: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))


__all__ = [
    "AuditEntry",
    "Event",
    "CohostState",
    "EventCohost",
    "EventKind",
    "EventMaterial",
    "EventMode",
    "EventStatus",
    "LoginFailure",
    "Moderation",
    "Role",
    "StaffUser",
    "Unit",
    "UnitCategory",
]


class RegistrationStatus(StrEnum):
    confirmed = "confirmed"
    waitlisted = "waitlisted"
    cancelled = "cancelled"


ACTIVE_PHONE = "status IN ('confirmed', 'waitlisted') AND phone_hash <> ''"


class Registration(SQLModel, table=True):
    """A citizen's seat (or place on the waitlist) for one session."""

    __table_args__ = (
        UniqueConstraint("event_id", "code", name="uq_registration_event_code"),
        Index("ix_registration_event_phone", "event_id", "phone_hash"),
        Index("ix_registration_event_status", "event_id", "status"),
        # One active registration per phone and session, refused by the database itself;
        # walk-ins without a phone (and erased rows) have phone_hash ''.
        Index("uq_registration_active_phone", "event_id", "phone_hash", unique=True,
              sqlite_where=text(ACTIVE_PHONE), postgresql_where=text(ACTIVE_PHONE)),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="event.id", ondelete="CASCADE")
    status: RegistrationStatus = Field(sa_column=enum_column(RegistrationStatus))
    code: str = Field(max_length=8)
    # Personal data: blanked by erasure or purge; the row (and so the counts) stays.
    name: str = Field(default="", max_length=50)
    phone: str = Field(default="", max_length=20)
    # Keyed hash of the phone: finds duplicates without reading the number.
    phone_hash: str = Field(default="", max_length=64)
    question: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    source: str = Field(default="online", max_length=10)
    # The secret nonce of the page whose form made this registration: a double-clicked submit
    # that lands on another process still leads that page to its own ticket.
    form_nonce: str | None = Field(default=None, max_length=32)
    consent_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # When one joined the waitlist; its order is the id (events.seats), which no clock reverses.
    queued_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    promoted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    cancelled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    checked_in_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    checked_in_by: int | None = Field(default=None, foreign_key="staffuser.id")
    erased_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class OutboxMessage(SQLModel, table=True):
    """A notification to a citizen or a unit; sent by a backend, readable by staff."""

    # How many texts a number got today (events.smscap): counted by recipient and time.
    __table_args__ = (
        Index("ix_outboxmessage_recipient_created", "recipient", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=10)  # sms | email
    recipient: str = Field(max_length=200)
    # Masked recipient, for lists shown to staff.
    recipient_masked: str = Field(default="", max_length=200)
    subject: str = Field(default="", max_length=200)
    body: str = Field(sa_column=Column(Text, nullable=False))
    topic: str = Field(max_length=40, index=True)
    event_id: int | None = Field(default=None, foreign_key="event.id", index=True,
                                 ondelete="SET NULL")
    registration_id: int | None = Field(default=None, foreign_key="registration.id",
                                        ondelete="SET NULL")
    # The unit a message is for when it concerns no session (quota reminders): its editors
    # read it in the console.
    unit_id: int | None = Field(default=None, foreign_key="unit.id", index=True,
                                ondelete="SET NULL")
    # Sending waits until then (reminders); a reminder keyed to an old start time is void.
    due_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    dedupe_key: str | None = Field(default=None, max_length=120, unique=True)
    # A text's template parameters as a JSON object (events.sms); a code is blanked once sent.
    sms_params: str = Field(default="{}", sa_column=Column(Text, nullable=False,
                                                            server_default="{}"))
    # pending | sending | sent | failed | void | unsent (no SMS gateway is configured)
    state: str = Field(default="pending", max_length=10, index=True)
    # While `sending`: the worker's claim ends then (a dead worker's claim runs out).
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    attempts: int = Field(default=0)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    error: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class QuotaRule(SQLModel, table=True):
    """One line of a year's plan: units of a category hold `required` sessions of a kind by
    `deadline` (None: by 31 December), judged in Beijing time. See events/quotas.py."""

    __table_args__ = (
        UniqueConstraint("year", "category", "kind", "deadline",
                         name="uq_quotarule_year_category_kind_deadline"),
    )

    id: int | None = Field(default=None, primary_key=True)
    year: int = Field(index=True)
    category: UnitCategory = Field(sa_column=enum_column(UnitCategory))
    kind: EventKind = Field(sa_column=enum_column(EventKind))
    required: int
    deadline: date | None = Field(default=None)


class RegistrationAttempt(SQLModel, table=True):
    """One public registration attempt, counted against its client address and its phone
    within a sliding window (events.ratelimit); the worker deletes what the window left."""

    __table_args__ = (Index("ix_registrationattempt_key_at", "key", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    # A keyed hash of "address:…" or "phone:…": limiter state holds no personal data.
    key: str = Field(max_length=64)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class RecoveryChallenge(SQLModel, table=True):
    """A one-time code sent to a phone to find its registrations again (events.recovery).
    Keys and the code are keyed hashes: no number, address or code is stored."""

    __table_args__ = (
        Index("ix_recoverychallenge_phone_created", "phone_key", "created_at"),
        Index("ix_recoverychallenge_address_created", "address_key", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    phone_key: str = Field(max_length=64)
    address_key: str = Field(max_length=64)
    code_hash: str = Field(max_length=64)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    tries: int = Field(default=0)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class RevisionState(StrEnum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"


class EventRevision(SQLModel, table=True):
    """An editor's change to what the public reads of a published session, waiting for the
    district office's review (信息发布审核); the published version stays up until approved."""

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="event.id", index=True, ondelete="CASCADE")
    state: RevisionState = Field(sa_column=enum_column(RevisionState, index=True))
    # JSON: the proposed values of the reviewed fields, e.g. {"title": "…", "materials": [...]}.
    fields: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    submitted_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    submitted_by: int | None = Field(default=None, foreign_key="staffuser.id")
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    decided_by: int | None = Field(default=None, foreign_key="staffuser.id")
    # Why the office rejected it; the editor reads it.
    reason: str = Field(default="", max_length=500)


class EventHost(SQLModel, table=True):
    """A host account assigned to run one session (go live, end, check people in)."""

    event_id: int = Field(foreign_key="event.id", primary_key=True, ondelete="CASCADE")
    user_id: int = Field(foreign_key="staffuser.id", primary_key=True)
    assigned_by: int | None = Field(default=None, foreign_key="staffuser.id")
    assigned_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# The plan's tables (themes, series, the broadcast plan) live in their own module; importing
# it here registers them wherever the events' tables are.
from events.models_plan import EventTheme, PlanFile, PlanItem, Series, Theme  # noqa: E402,F401
