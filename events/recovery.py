"""找回我的报名: a phone's registrations found again with a one-time code sent to that phone.

A citizen who lost the ticket link types their number; a 6-digit code, valid CODE_LIFETIME,
is texted to it, and the code opens the list of the number's active registrations with their
ticket links. What an answer says never depends on whether the number is registered: a
challenge is made either way (the text only goes to a registered number), so a wrong code, an
expired code and too many tries read the same for any number. Codes per number and per client
address are limited in a window (Throttled, with Retry-After). The stored challenge holds keyed
hashes only; the outbox row's body shows the code masked, and its parameters (which the SMS
gateway needs) are blanked once it is sent (events.delivery.SECRET_TOPICS).
"""

from __future__ import annotations

import hmac
import math
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, func, text, update
from sqlmodel import Session, col, select

from events import notify, smscap
from events.clients import address_bucket
from events.errors import Invalid, Throttled
from events.locking import write_lock
from events.models import (
    Event,
    OutboxMessage,
    RecoveryChallenge,
    Registration,
    RegistrationStatus,
)
from events.registration import PHONE_PATTERN, normalise_phone
from events.timeutil import utcnow
from server.security import Signer

CODE_LIFETIME = timedelta(minutes=10)
MAX_TRIES = 5
WINDOW = timedelta(hours=1)
CODES_PER_PHONE = 3
CODES_PER_ADDRESS = 10
CODE = re.compile(r"^\d{6}$")
TOPIC = "recovery_code"
MASKED_CODE = "******"


@dataclass
class Outcome:
    """What entering a code led to: ok (with the registrations), wrong (or expired: the same
    answer) or locked (too many tries: ask for a new code)."""

    status: str
    found: list[tuple[Registration, Event]] = field(default_factory=list)


def normal_phone(raw: str) -> str:
    # One number however it is typed (full-width digits from a Chinese keyboard too), as at
    # registration: the same key, and the same phone the registration was hashed from.
    phone = normalise_phone(raw or "")
    if not PHONE_PATTERN.match(phone):
        raise Invalid("invalid_phone", "an 11-digit mainland mobile number is expected")
    return phone


def _phone_key(signer: Signer, phone: str) -> str:
    return signer.keyed_hash("recovery", f"phone:{phone}")


def _code_hash(signer: Signer, phone_key: str, code: str) -> str:
    return signer.keyed_hash("recovery-code", f"{phone_key}:{code}")


def active_registrations(db: Session, phone: str) -> list[tuple[Registration, Event]]:
    """The number's confirmed and waitlisted registrations, soonest session first."""
    return [(registration, event) for registration, event in db.exec(
        select(Registration, Event).join(Event, col(Registration.event_id) == col(Event.id))
        .where(Registration.phone == phone, col(Registration.erased_at).is_(None),
               col(Registration.status).in_([RegistrationStatus.confirmed,
                                             RegistrationStatus.waitlisted]))
        .order_by(col(Event.starts_at), col(Registration.id)))]


def _lock(db: Session, keys: list[str]) -> None:
    """Counting and adding a challenge is one step: SQLite's write lock, PostgreSQL's advisory
    locks on the keys (in one order)."""
    if db.connection().dialect.name == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) "
                        "FROM unnest(CAST(:keys AS text[])) AS k ORDER BY k"),
                   {"keys": sorted(keys)})
    else:
        write_lock(db)


def request_code(db: Session, signer: Signer, phone: str, client_address: str, *,
                 sms_daily_cap: int = 0, now: datetime | None = None) -> None:
    """Makes a challenge for `phone` and queues its code as a text when the number holds an
    active registration. Raises Invalid (not a mobile number) or Throttled. Flushes."""
    now = now or utcnow()
    phone = normal_phone(phone)
    phone_key = _phone_key(signer, phone)
    address_key = signer.keyed_hash("recovery", f"address:{address_bucket(client_address)}")
    _lock(db, [phone_key, address_key])
    waits = []
    for column, key, limit in ((RecoveryChallenge.phone_key, phone_key, CODES_PER_PHONE),
                               (RecoveryChallenge.address_key, address_key, CODES_PER_ADDRESS)):
        count, oldest = db.execute(
            select(func.count(), func.min(RecoveryChallenge.created_at))
            .where(column == key, col(RecoveryChallenge.created_at) > now - WINDOW)).one()
        if int(count) >= limit and oldest is not None:
            waits.append((oldest + WINDOW - now).total_seconds())
    if waits:
        raise Throttled("too_many_requests", "too many codes for this number or from this "
                        "address; try again later", retry_after_s=max(1, math.ceil(max(waits))))
    code = f"{secrets.randbelow(10**6):06d}"
    db.add(RecoveryChallenge(phone_key=phone_key, address_key=address_key,
                             code_hash=_code_hash(signer, phone_key, code),
                             expires_at=now + CODE_LIFETIME, created_at=now))
    if active_registrations(db, phone):
        minutes = int(CODE_LIFETIME.total_seconds() // 60)
        row = notify.message_row(
            topic=TOPIC, recipient=phone, params={"code": code},
            body=f"{notify.SIGNATURE}您正在找回报名，验证码 {MASKED_CODE}，{minutes}分钟内有效。"
                 f"如非本人操作，请忽略本短信。")
        row["created_at"] = row["due_at"] = now
        for kept in smscap.within_daily_cap(db, [row], sms_daily_cap, now):
            db.add(OutboxMessage(**kept))
    db.flush()


def enter_code(db: Session, signer: Signer, phone: str, code: str, *,
               now: datetime | None = None) -> Outcome:
    """Checks a code against the number's newest open challenge. A wrong try counts (at most
    MAX_TRIES); the right one closes the challenge and returns the registrations. Flushes."""
    now = now or utcnow()
    phone = normal_phone(phone)
    phone_key = _phone_key(signer, phone)
    _lock(db, [phone_key])
    challenge = db.exec(select(RecoveryChallenge).where(
        RecoveryChallenge.phone_key == phone_key, col(RecoveryChallenge.used_at).is_(None))
        .order_by(col(RecoveryChallenge.created_at).desc(), col(RecoveryChallenge.id).desc())
    ).first()
    if challenge is None or challenge.expires_at <= now:
        return Outcome("wrong")
    if challenge.tries >= MAX_TRIES:
        return Outcome("locked")
    challenge.tries += 1
    code = (code or "").strip()
    right = bool(CODE.match(code)) and hmac.compare_digest(
        challenge.code_hash, _code_hash(signer, phone_key, code))
    if right:
        challenge.used_at = now
    db.add(challenge)
    db.flush()
    if not right:
        return Outcome("locked" if challenge.tries >= MAX_TRIES else "wrong")
    return Outcome("ok", active_registrations(db, phone))


def forget_expired(db: Session, now: datetime | None = None) -> int:
    """The worker's round: challenges the window has left behind are deleted, and the numbers
    of code texts a day old (counted by the daily cap until then) blanked. Flushes."""
    now = now or utcnow()
    write_lock(db)
    result = db.execute(delete(RecoveryChallenge)
                        .where(col(RecoveryChallenge.created_at) <= now - WINDOW - CODE_LIFETIME))
    db.execute(update(OutboxMessage).where(
        col(OutboxMessage.topic) == TOPIC, col(OutboxMessage.recipient) != "",
        col(OutboxMessage.created_at) <= now - smscap.DAY).values(recipient=""))
    db.flush()
    return int(getattr(result, "rowcount", 0) or 0)
