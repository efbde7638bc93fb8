"""Registration: register, cancel, erase, check in. Capacity holds under any burst."""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field, field_validator
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from events import audit, notify, permissions, seats, smscap
from events.errors import Busy, Conflict, DomainError, Invalid, NotFound
from events.locking import lock_event
from events.models import Event, OutboxMessage, Registration, RegistrationStatus, StaffUser
from events.sessions import get_visible_event, is_public, registration_state
from events.timeutil import iso_local, utcnow
from events.units import MultilineText, Text, clean_text
from server.security import Signer

R = RegistrationStatus
# No 0/O, 1/I/L: a code read aloud or typed at the door is unambiguous.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8
MANAGE_PURPOSE = "registration-manage"
PHONE_PATTERN = re.compile(r"^1[3-9]\d{9}$", re.ASCII)
CHECKIN_STATUSES = frozenset({"published", "live", "ended"})
SESSION_OVER_STATUSES = frozenset({"cancelled", "ended", "archived"})
# The door opens this long before the start (KAIFANG_CHECKIN_OPENS_BEFORE_S) and closes at the end.
CHECKIN_OPENS_BEFORE = timedelta(hours=2)


def normalise_phone(raw: str) -> str:
    """One number is one number however it is typed: full-width or Arabic-Indic digits and
    punctuation become ASCII (NFKC, then any decimal digit), before validating and hashing."""
    text = unicodedata.normalize("NFKC", raw)
    text = "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in text)
    phone = re.sub(r"[\s\-()]", "", text)
    if phone.startswith("+86"):
        phone = phone[3:]
    elif phone.startswith("0086"):
        phone = phone[4:]
    return phone


class RegistrationIn(BaseModel):
    name: Text = Field(min_length=1, max_length=50)
    phone: str = Field(min_length=1, max_length=20)
    question: MultilineText = Field(default="", max_length=1000)
    consent: bool

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("a name is required")
        return value

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        phone = normalise_phone(value)
        if not PHONE_PATTERN.match(phone):
            raise ValueError("a mainland mobile number has 11 digits and starts with 1")
        return phone

    @field_validator("consent")
    @classmethod
    def _consent(cls, value: bool) -> bool:
        if not value:
            raise ValueError("consent to the privacy notice is required")
        return value


def mask_phone(phone: str) -> str:
    return f"{phone[:3]}****{phone[-4:]}" if len(phone) >= 7 else ("*" * len(phone))


def mask_name(name: str) -> str:
    if not name:
        return ""
    if len(name) == 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def _random_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def _new_code(db: Session, event_id: int) -> str:
    while True:
        code = _random_code()
        taken = db.exec(select(Registration.id).where(Registration.event_id == event_id,
                                                      Registration.code == code)).first()
        if taken is None:
            return code


def manage_token(signer: Signer, registration: Registration | Registered) -> str:
    return signer.dumps(MANAGE_PURPOSE, {"r": registration.id, "c": registration.code})


def from_manage_token(db: Session, signer: Signer, token: str) -> Registration:
    """The registration behind a manage link; forged, altered or erased links find nothing."""
    payload = signer.loads(MANAGE_PURPOSE, token)
    if not isinstance(payload, dict) or not isinstance(payload.get("r"), int):
        raise NotFound("invalid_token", "this link is not valid")
    registration = db.get(Registration, payload["r"])
    if registration is None or registration.code != payload.get("c") or registration.erased_at:
        raise NotFound("registration_not_found", "this registration no longer exists")
    return registration


def registration_public(db: Session | None, registration: Registration | Registered,
                        token: str | None = None) -> dict[str, Any]:
    """What the citizen sees of their own ticket: their data masked, the code in full.

    A fresh Registered knows its place on the waitlist; a stored Registration asks `db`.
    """
    out: dict[str, Any] = {
        "id": registration.id,
        "event_id": registration.event_id,
        "status": registration.status.value,
        "code": registration.code,
        "name": mask_name(registration.name),
        "phone": mask_phone(registration.phone),
        "waitlist_position": _waitlist_position(db, registration),
        "created_at": iso_local(registration.created_at),
        "checked_in_at": iso_local(registration.checked_in_at),
    }
    if token is not None:
        out["manage_token"] = token
    return out


@dataclass(frozen=True)
class RegistrationRequest:
    """One citizen's request: the session, what they typed and, from the portal's form, the
    nonce of that page (see own_registration)."""

    event_id: int
    data: RegistrationIn
    form_nonce: str | None = None
    # Who sent it (events.ratelimit counts attempts per address).
    client_address: str = ""


@dataclass(frozen=True)
class Registered:
    """A registration register_many made: what its ticket shows, and its place on the waitlist
    as it was at the commit."""

    id: int
    event_id: int
    status: RegistrationStatus
    code: str
    name: str
    phone: str
    created_at: datetime
    waitlist_position: int | None
    checked_in_at: datetime | None = None


def _waitlist_position(db: Session | None, registration: Registration | Registered
                       ) -> int | None:
    if isinstance(registration, Registered):
        return registration.waitlist_position
    assert db is not None, "a stored registration's place is read from the database"
    return seats.waitlist_position(db, registration)


def register_many(db: Session, signer: Signer, requests: Sequence[RegistrationRequest],
                  *, sms_daily_cap: int = 0) -> list[Registered | DomainError]:
    """Registers a batch in one transaction: each session is locked once and counted once, and
    the rows go in with one INSERT (group commit; see events.registration_desk). Seats go in
    the order given. One outcome per request, in that order: what was made, or the refusal.

    Rows, not ORM objects: building a model object costs more than writing its row.
    """
    outcomes: list[Registered | DomainError | None] = [None] * len(requests)
    by_event: dict[int, list[int]] = {}
    for index, request in enumerate(requests):
        by_event.setdefault(request.event_id, []).append(index)
    # Everything that needs no database is done before the lock: the lock is the bottleneck.
    hashes = [signer.keyed_hash("phone", request.data.phone) for request in requests]
    rows: list[dict[str, Any]] = []
    made: list[tuple[int, Event, int | None]] = []  # request index, session, waitlist place
    for event_id in sorted(by_event):  # one order for every batch: no deadlock between them
        indices = by_event[event_id]
        try:
            event = _event_open_for_registration(db, event_id)
        except Busy:
            raise  # the lock was not had in time: the whole batch is answered 503
        except DomainError as exc:
            for index in indices:
                outcomes[index] = type(exc)(exc.code, exc.message, **exc.detail)
            continue
        assert event.id is not None
        # The waitlist's order is the rows' ids, given under the lock: the order of the commits,
        # so the place each citizen is told stays true when another process commits next, and
        # a clock stepped back cannot reverse it (queued_at only records the time).
        now = utcnow()
        taken_phones = seats.active_phone_hashes(db, event.id, {hashes[i] for i in indices})
        confirmed, waitlisted = seats.counts(db, [event.id])[event.id]
        codes = iter(_fresh_codes(db, event.id, len(indices)))
        for index in indices:
            if hashes[index] in taken_phones:
                outcomes[index] = Conflict("already_registered",
                                           "this mobile number is already registered")
                continue
            taken_phones.add(hashes[index])
            data = requests[index].data
            position = None
            if event.capacity > 0 and confirmed >= event.capacity:
                waitlisted += 1
                position = waitlisted
            else:
                confirmed += 1
            rows.append({
                "event_id": event.id, "status": R.confirmed if position is None else R.waitlisted,
                "code": next(codes), "name": data.name, "phone": data.phone,
                "phone_hash": hashes[index], "question": data.question.strip(),
                "source": "online", "form_nonce": requests[index].form_nonce,
                "consent_at": now, "created_at": now, "queued_at": now, "promoted_at": None,
                "cancelled_at": None, "checked_in_at": None, "checked_in_by": None,
                "erased_at": None,
            })
            made.append((index, event, position))
    if not rows:
        return [outcome for outcome in outcomes if outcome is not None]
    table = Registration.__table__  # type: ignore[attr-defined]
    try:
        ids = db.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True),
                         rows).scalars().all()
    except IntegrityError as exc:  # not expected: codes are checked and phones counted locked
        raise Conflict("try_again", "please submit again") from exc
    messages: list[dict[str, Any]] = []
    for (index, event, position), row, new_id in zip(made, rows, ids, strict=True):
        outcomes[index] = Registered(new_id, row["event_id"], row["status"], row["code"],
                                     row["name"], row["phone"], row["created_at"], position)
        messages += notify.received_messages(event, new_id, row["status"], row["code"],
                                             row["phone"])
    messages = smscap.within_daily_cap(db, messages, sms_daily_cap, utcnow())
    if messages:
        db.execute(insert(OutboxMessage.__table__), messages)  # type: ignore[attr-defined]
    return [outcome for outcome in outcomes if outcome is not None]


def own_registration(db: Session, signer: Signer, event_id: int, phone: str,
                     form_nonce: str) -> Registration | None:
    """The active registration that this very form (its page's secret nonce) made with this
    phone, if any: the second submit of a double click is led to the first one's ticket."""
    return db.exec(select(Registration).where(
        Registration.event_id == event_id,
        Registration.phone_hash == signer.keyed_hash("phone", phone),
        Registration.form_nonce == form_nonce,
        col(Registration.status).in_([R.confirmed, R.waitlisted]),
        col(Registration.erased_at).is_(None))).first()


def _event_open_for_registration(db: Session, event_id: int) -> Event:
    """The session, locked, once it is public and open for registration: checked before the
    lock (a closed session makes nobody wait) and again under it (it may have closed since)."""
    _check_open(db.get(Event, event_id), event_id)
    event = lock_event(db, event_id)
    _check_open(event, event_id)
    return event


def _check_open(event: Event | None, event_id: int) -> None:
    if event is None or not is_public(event):
        raise NotFound("event_not_found", f"no session with id {event_id}")
    if registration_state(event) != "open":
        raise Conflict("registration_closed", "registration for this session is not open")


def _fresh_codes(db: Session, event_id: int, count: int) -> list[str]:
    """`count` ticket codes, distinct and unused in this session (called under its lock)."""
    codes: set[str] = set()
    while len(codes) < count:
        wanted = {_random_code() for _ in range(count - len(codes))} - codes
        taken = set(db.exec(select(Registration.code).where(
            Registration.event_id == event_id, col(Registration.code).in_(wanted))))
        codes |= wanted - taken
    return list(codes)


def cancel(db: Session, registration: Registration) -> list[Registration]:
    """Frees the seat (or the waitlist place); the head of the waitlist moves up at once.
    Once the session is cancelled or over, a seat freed is no seat: nobody moves up."""
    if registration.status == R.cancelled:
        return []
    event = lock_event(db, registration.event_id)
    db.refresh(registration)
    was_confirmed = registration.status == R.confirmed
    if registration.checked_in_at is not None:
        raise Conflict("already_checked_in", "a ticket used at the door cannot be cancelled")
    registration.status = R.cancelled
    registration.cancelled_at = utcnow()
    db.add(registration)
    db.flush()
    holds = event.status.value not in SESSION_OVER_STATUSES and utcnow() < event.ends_at
    promoted = seats.promote_waitlist(db, event) if was_confirmed and holds else []
    for other in promoted:
        notify.promoted(db, event, other)
    return promoted


def erase(db: Session, registration: Registration) -> None:
    """The citizen's right to erasure: cancel, then blank what identifies them.

    A ticket already used at the door stays counted as attendance; only the person goes.
    """
    if registration.checked_in_at is None:
        cancel(db, registration)
    _blank(registration)
    db.add(registration)
    notify.void_for_registration(db, registration)
    db.flush()


def _blank(registration: Registration) -> None:
    registration.name = ""
    registration.phone = ""
    registration.phone_hash = ""
    registration.question = ""
    registration.form_nonce = None
    registration.erased_at = utcnow()


def purge_event(db: Session, event: Event) -> int:
    """Retention: erases a session's personal data, keeps its counts. Returns rows blanked."""
    rows = list(db.exec(select(Registration).where(Registration.event_id == event.id,
                                                   col(Registration.erased_at).is_(None))))
    for registration in rows:
        _blank(registration)
        db.add(registration)
    event.personal_data_purged_at = utcnow()
    db.add(event)
    db.flush()
    return len(rows)


@dataclass(frozen=True)
class Door:
    """When check-in and walk-ins are possible: `state` is open, not_yet, over or closed (the
    session's status allows none)."""

    state: str
    opens_at: datetime
    closes_at: datetime


def door(event: Event, opens_before: timedelta = CHECKIN_OPENS_BEFORE,
         now: datetime | None = None) -> Door:
    now = now or utcnow()
    opens_at, closes_at = event.starts_at - opens_before, event.ends_at
    if event.status.value not in CHECKIN_STATUSES:
        state = "closed"
    elif now < opens_at:
        state = "not_yet"
    elif now >= closes_at:
        state = "over"
    else:
        state = "open"
    return Door(state, opens_at, closes_at)


def require_door_open(event: Event, opens_before: timedelta = CHECKIN_OPENS_BEFORE) -> None:
    """Check-in and walk-ins happen at the door, from shortly before the start to the end."""
    found = door(event, opens_before)
    when: dict[str, Any] = {"opens_at": iso_local(found.opens_at),
                            "closes_at": iso_local(found.closes_at)}
    if found.state == "closed":
        raise Conflict("not_open_for_checkin", "this session is not open for check-in")
    if found.state == "not_yet":
        minutes = int(opens_before.total_seconds() // 60)
        raise Conflict("checkin_not_open", f"check-in opens at {when['opens_at']}, {minutes} "
                       "minutes before the session starts", **when)
    if found.state == "over":
        raise Conflict("checkin_closed", f"check-in closed when the session ended at "
                       f"{when['closes_at']}", **when)


def normal_code(raw: str) -> str:
    """A ticket code as typed at the door (spaces, lower case) as it is stored."""
    return re.sub(r"\s", "", raw).upper()


def check_in(db: Session, actor: StaffUser, event_id: int, code: str, *,
             opens_before: timedelta = CHECKIN_OPENS_BEFORE) -> Registration:
    event = get_visible_event(db, event_id, actor)  # another unit's draft: 404, not 403
    permissions.require_runner(db, actor, event)
    require_door_open(event, opens_before)
    code = normal_code(code)
    event = lock_event(db, event_id)
    registration = db.exec(select(Registration).where(Registration.event_id == event_id,
                                                      Registration.code == code)).first()
    if registration is None:
        raise NotFound("ticket_not_found", f"no ticket with code {code} for this session")
    if registration.status == R.cancelled:
        raise Conflict("ticket_cancelled", "this ticket was cancelled")
    if registration.status == R.waitlisted:
        raise Conflict("not_confirmed", "this ticket is on the waitlist, not confirmed")
    if registration.checked_in_at is not None:
        raise Conflict("already_checked_in", "this ticket was already checked in",
                       checked_in_at=iso_local(registration.checked_in_at),
                       name=mask_name(registration.name))
    registration.checked_in_at = utcnow()
    registration.checked_in_by = actor.id
    db.add(registration)
    db.flush()
    return registration


def checked_in_count(db: Session, event_id: int) -> int:
    return int(db.exec(select(func.count()).select_from(Registration).where(
        Registration.event_id == event_id, col(Registration.checked_in_at).is_not(None))).one())


def walk_in(db: Session, signer: Signer, actor: StaffUser, event_id: int, name: str,
            phone: str = "", *, opens_before: timedelta = CHECKIN_OPENS_BEFORE) -> Registration:
    """Someone registered at the door while seats remain: confirmed and checked in at once."""
    event = get_visible_event(db, event_id, actor)  # another unit's draft: 404, not 403
    permissions.require_runner(db, actor, event)
    require_door_open(event, opens_before)
    name = " ".join(clean_text(name, "name").split())
    if not name or len(name) > 50:
        raise Invalid("invalid_name", "a name of 1-50 characters is required", field="name")
    phone = normalise_phone(phone) if phone else ""
    if phone and not PHONE_PATTERN.match(phone):
        raise Invalid("invalid_phone", "a mainland mobile number has 11 digits", field="phone")
    phone_hash = signer.keyed_hash("phone", phone) if phone else ""
    event = lock_event(db, event_id)
    assert event.id is not None
    if phone_hash and seats.active_phone_hashes(db, event.id, {phone_hash}):
        raise Conflict("already_registered", "this mobile number already holds a ticket for "
                       "this session: check it in by its code", field="phone")
    if event.capacity > 0 and seats.confirmed_count(db, event.id) >= event.capacity:
        raise Conflict("full", "no seats remain")
    now = utcnow()
    registration = Registration(
        event_id=event.id, status=R.confirmed, code=_new_code(db, event.id), name=name,
        phone=phone, phone_hash=phone_hash,
        source="walk_in", checked_in_at=now, checked_in_by=actor.id,
    )
    db.add(registration)
    db.flush()
    audit.record(db, actor, "registration.walk_in", "event", event.id, unit_id=event.unit_id,
                 changes={"registration_id": registration.id})
    return registration
