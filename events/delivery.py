"""Delivering the outbox: claim what is due, send it through its channel's backend, record.

Several worker processes may run at once, so messages are claimed before they are sent: one
UPDATE marks them `sending` until a lease ends, `claimed_until` (PostgreSQL picks them FOR
UPDATE SKIP LOCKED), and commits at once. Sending holds no lock and no transaction, so a slow
mail server never holds up registrations; each result is then written in a short transaction
of its own. A worker killed mid-send leaves its claims to run out, and a later round takes
them again: a message goes out at least once, and twice only if a worker dies between sending
and recording. A recipient or a body is personal data: neither is ever logged nor written
into `error`.
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
import time
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import unquote, urlsplit

from sqlalchemy import ColumnElement, func, update
from sqlmodel import Session, col, select

from events import smscap
from events.locking import write_lock
from events.models import Event, EventStatus, OutboxMessage, Registration, RegistrationStatus
from events.notify import reminder_key
from events.recovery import CODE_LIFETIME
from events.timeutil import utcnow
from server.config import Settings

log = logging.getLogger("kaifang.delivery")

MAX_ATTEMPTS = 5
FIRST_RETRY = timedelta(minutes=1)  # then 2, 4, 8 minutes
# A claim lasts this long: far longer than a send (SMTP_TIMEOUT_S), so only a dead worker's
# claims run out; then the message is due again.
LEASE = timedelta(minutes=5)
RETRYABLE = ("pending", "failed")
OVER = (EventStatus.ended, EventStatus.archived)
# A round stops claiming after this long; what it claimed and did not reach is due again.
BATCH_SECONDS = 5.0
SMTP_TIMEOUT_S = 10.0
DEFAULT_SUBJECT = "西城政务开放通知"
MOBILE = re.compile(r"^1[3-9]\d{9}$")
SMTP_SCHEMES = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
# Texts whose parameters hold a secret (a one-time code): kept only until sent or given up.
SECRET_TOPICS = frozenset({"recovery_code"})


class DeliveryError(Exception):
    """A backend could not hand a message on. The text says why, never to whom or what."""


class Backend(Protocol):
    def send(self, message: OutboxMessage) -> None:
        """Hands the message on, or raises DeliveryError."""


class OutboxBackend:
    """The default: nothing leaves the machine. A message marked sent stays in the outbox
    table, where staff read it in the console; on a machine without a mail or SMS gateway
    that is the delivery."""

    leaves_machine = False

    def send(self, message: OutboxMessage) -> None:
        return None


class NoGateway(Exception):
    """No gateway for this channel is configured: the message stays `unsent`, not retried."""


class SmsGateway(Protocol):
    """A text-message provider (events.sms.AliyunSmsGateway)."""

    def send_text(self, phone: str, message: OutboxMessage) -> None:
        """Sends one text (the message's topic and template parameters), or raises
        DeliveryError."""


class UnsentEmailBackend:
    """Channel "email" without KAIFANG_SMTP_URL: nothing can send a mail, so none is marked
    sent (staff read it in the outbox, as `unsent`)."""

    leaves_machine = False

    def send(self, message: OutboxMessage) -> None:
        raise NoGateway("no mail server is configured")


class UnsentSmsBackend:
    """Channel "sms" without KAIFANG_SMS_*: nothing can send a text, so none is marked sent."""

    leaves_machine = False

    def send(self, message: OutboxMessage) -> None:
        raise NoGateway("no SMS gateway is configured")


class SmsBackend:
    """Channel "sms": checks the number, then hands the text to a gateway."""

    def __init__(self, gateway: SmsGateway) -> None:
        self.gateway = gateway

    def send(self, message: OutboxMessage) -> None:
        if not MOBILE.match(message.recipient):
            raise DeliveryError("the recipient is not a mainland mobile number")
        self.gateway.send_text(message.recipient, message)


class SmtpBackend:
    """Channel "email" when KAIFANG_SMTP_URL is set: smtp://, smtp+starttls:// or smtps://,
    with optional user:password@ (percent-encoded)."""

    def __init__(self, url: str, mail_from: str, timeout_s: float = SMTP_TIMEOUT_S) -> None:
        parts = urlsplit(url)
        if parts.scheme not in SMTP_SCHEMES or not parts.hostname:
            raise ValueError("KAIFANG_SMTP_URL must look like smtp+starttls://user:pass@host:587 "
                             f"(schemes: {', '.join(SMTP_SCHEMES)})")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or SMTP_SCHEMES[parts.scheme]
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else ""
        self.mail_from = mail_from
        self.timeout_s = timeout_s

    def _connect(self) -> smtplib.SMTP:
        if self.scheme == "smtps":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_s,
                                    context=ssl.create_default_context())
        return smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)

    def send(self, message: OutboxMessage) -> None:
        if "@" not in message.recipient:
            raise DeliveryError("the recipient is not an email address")
        mail = EmailMessage()
        mail["From"] = self.mail_from
        mail["To"] = message.recipient
        mail["Subject"] = message.subject or DEFAULT_SUBJECT
        mail.set_content(message.body)
        try:
            with self._connect() as smtp:
                if self.scheme == "smtp+starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self.password)
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused:
            raise DeliveryError("the mail server refused the recipient") from None
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(f"the mail server answered {exc.smtp_code}") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"the mail server could not be reached "
                                f"({type(exc).__name__})") from None


def backend_for(settings: Settings, channel: str) -> Backend:
    if channel == "email":
        if not settings.smtp_url:
            return UnsentEmailBackend()
        return SmtpBackend(settings.smtp_url, settings.mail_from)
    if channel == "sms":
        if not settings.sms_configured:
            return UnsentSmsBackend()
        from events.sms import AliyunSmsGateway

        return SmsBackend(AliyunSmsGateway(settings))
    if channel == "console":
        return OutboxBackend()  # delivered by being readable in the console's outbox
    return OutboxBackend()


def _is_due(now: datetime) -> list[ColumnElement[bool]]:
    waiting = col(OutboxMessage.state).in_(RETRYABLE)
    abandoned = (col(OutboxMessage.state) == "sending") & (col(OutboxMessage.claimed_until) <= now)
    return [waiting | abandoned, col(OutboxMessage.attempts) < MAX_ATTEMPTS,
            col(OutboxMessage.due_at) <= now]


def outbox_depth(db: Session, now: datetime) -> tuple[int, datetime | None]:
    """How many messages are due and not sent, and since when the oldest is due (/metrics)."""
    count, oldest = db.exec(select(func.count(), func.min(OutboxMessage.due_at))
                            .where(*_is_due(now))).one()
    return count, oldest


def _claim(db: Session, now: datetime, limit: int) -> list[int]:
    """Up to `limit` due messages, oldest first, marked this worker's until the lease ends.
    Committed at once: no lock is held while they are sent."""
    due = (select(OutboxMessage.id).where(*_is_due(now))
           .order_by(col(OutboxMessage.due_at), col(OutboxMessage.id)).limit(limit))
    if db.connection().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)  # rows another worker is claiming: skipped
    write_lock(db)
    claimed = db.execute(
        update(OutboxMessage).where(col(OutboxMessage.id).in_(due.scalar_subquery()))
        .values(state="sending", claimed_until=now + LEASE).returning(col(OutboxMessage.id)))
    ids = sorted(claimed.scalars())
    db.commit()
    return ids


def stale_reason(db: Session, message: OutboxMessage, now: datetime) -> str | None:
    """Why a message must not go out any more, or None. A reminder for an old time is void."""
    if not message.recipient:
        return "no recipient: the personal data was erased"
    if message.topic in SECRET_TOPICS and now >= message.created_at + CODE_LIFETIME:
        return "the code has expired"
    if message.event_id is not None and message.topic != "event_cancelled":
        # A message about a session that no longer holds tells nobody anything true.
        event = db.get(Event, message.event_id, populate_existing=True)
        if event is not None and event.status == EventStatus.cancelled:
            return "the session was cancelled"
        if event is not None and (event.status in OVER or now >= event.ends_at):
            return "the session is over"
    if message.topic != "reminder":
        return None
    registration = (db.get(Registration, message.registration_id, populate_existing=True)
                    if message.registration_id else None)
    event = db.get(Event, message.event_id, populate_existing=True) if message.event_id else None
    if registration is None or event is None:
        return "the registration or the session no longer exists"
    if registration.status != RegistrationStatus.confirmed or registration.erased_at:
        return "the registration is no longer confirmed"
    if event.status == EventStatus.cancelled:
        return "the session was cancelled"
    if message.dedupe_key != reminder_key(registration.id, event.starts_at):
        return "the session moved: this reminder is for an old time"
    if now >= event.starts_at:
        return "the session has already started"
    return None


def _record_failure(message: OutboxMessage, error: str, now: datetime) -> None:
    message.state = "failed"
    message.error = error[:500]
    if message.attempts < MAX_ATTEMPTS:
        message.due_at = now + FIRST_RETRY * 2 ** (message.attempts - 1)
        log.warning("message %s (%s, %s) failed, attempt %s; retry at %s: %s", message.id,
                    message.topic, message.channel, message.attempts,
                    message.due_at.isoformat(), message.error)
    else:
        log.error("message %s (%s, %s) failed %s times; given up: %s", message.id,
                  message.topic, message.channel, message.attempts, message.error)


def _leaves_machine(backend: Backend) -> bool:
    """Whether sending hands the message to someone outside (a gateway, a mail server): such a
    result is recorded at once, so a dead worker sends it twice at most. A backend that does
    not say so is taken to."""
    return bool(getattr(backend, "leaves_machine", True))


def deliver_due(db: Session, settings: Settings, now: datetime | None = None, limit: int = 100,
                *, backend: Backend | None = None) -> int:
    """Sends the messages due by `now` (failed ones again after their backoff); returns how
    many went out. `backend` replaces the channel's own (tests). Commits as it goes.

    A message handed outside is recorded in a transaction of its own right after its sending.
    Results that leave nothing outside (void, unsent for want of a gateway, the console's
    outbox) are recorded together, before the next outside sending and at the end: a round of
    a hundred of them takes the write lock twice, not a hundred times, beside a registration
    burst."""
    now = now or utcnow()
    backends: dict[str, Backend] = {}
    started = time.monotonic()
    sent = 0
    claimed = _claim(db, now, limit)
    pending: list[OutboxMessage] = []  # results held back, all of them local
    # Changes wait for the commit: a read must never flush them before the write lock.
    with db.no_autoflush:
        for position, message_id in enumerate(claimed):
            if time.monotonic() - started > BATCH_SECONDS:
                _record(db, pending)
                _release(db, claimed[position:], now)
                break
            message = db.get(OutboxMessage, message_id, populate_existing=True)
            if message is None:
                continue
            reason = stale_reason(db, message, now)
            if reason is None and smscap.over_daily_cap(db, message, settings.sms_daily_cap, now):
                reason = "this number has had its texts for today"
            chosen = backend
            if reason is None and chosen is None:
                if message.channel not in backends:
                    backends[message.channel] = backend_for(settings, message.channel)
                chosen = backends[message.channel]
            outside = reason is None and chosen is not None and _leaves_machine(chosen)
            if outside:
                _record(db, pending)
            if not pending:
                db.commit()  # nothing is held while sending
            if reason is not None or chosen is None:
                message.state, message.error = "void", reason or ""
                log.info("message %s (%s) void: %s", message.id, message.topic, reason)
            else:
                message.attempts += 1
                try:
                    chosen.send(message)
                except NoGateway as exc:
                    message.state, message.error = "unsent", str(exc)
                except DeliveryError as exc:
                    _record_failure(message, str(exc), now)
                except Exception as exc:  # a backend's bug must not stop the batch, nor leak data
                    _record_failure(message, f"backend error ({type(exc).__name__})", now)
                else:
                    message.state, message.sent_at, message.error = "sent", now, ""
                    sent += 1
                    log.info("message %s (%s, %s) sent", message.id, message.topic, message.channel)
            message.claimed_until = None
            if message.topic in SECRET_TOPICS and message.state != "failed":
                message.sms_params = "{}"  # a one-time code lives no longer than its sending
            pending.append(message)
            if outside:
                _record(db, pending)
        _record(db, pending)
    return sent


def _record(db: Session, results: list[OutboxMessage]) -> None:
    """Writes the held-back results in one transaction under the write lock; empties the list."""
    if not results:
        return
    write_lock(db)
    for message in results:
        db.add(message)
    db.commit()
    results.clear()


def _release(db: Session, message_ids: list[int], now: datetime) -> None:
    """Claims this round did not reach: due again at once, for the next round."""
    write_lock(db)
    db.execute(update(OutboxMessage).where(col(OutboxMessage.id).in_(message_ids),
                                           col(OutboxMessage.state) == "sending")
               .values(claimed_until=now))
    db.commit()
