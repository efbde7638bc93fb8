"""The texts any one number may get in a day. A number registered and cancelled in a loop, or
typed into many sessions, queues no more than the cap (registration) and receives no more than
the cap (delivery voids the rest). Reminders are not counted when queued: there is at most one
per confirmed registration, and delivery voids those of cancelled ones."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, func, select

from events.models import OutboxMessage

DAY = timedelta(days=1)


def _counted(row: dict[str, Any]) -> bool:
    return bool(row["channel"] == "sms" and row["topic"] != "reminder" and row["recipient"])


def within_daily_cap(db: Session, rows: list[dict[str, Any]], cap: int, now: datetime
                     ) -> list[dict[str, Any]]:
    """Outbox rows of a batch without the texts beyond each number's cap (one grouped COUNT)."""
    phones = {row["recipient"] for row in rows if _counted(row)}
    if cap <= 0 or not phones:
        return rows
    queued: dict[str, int] = {
        recipient: int(count) for recipient, count in db.execute(
            select(OutboxMessage.recipient, func.count())
            .where(col(OutboxMessage.recipient).in_(phones),
                   col(OutboxMessage.created_at) > now - DAY, OutboxMessage.channel == "sms",
                   OutboxMessage.topic != "reminder", OutboxMessage.state != "void")
            .group_by(col(OutboxMessage.recipient)))}
    kept = []
    for row in rows:
        if _counted(row):
            if queued.get(row["recipient"], 0) >= cap:
                continue
            queued[row["recipient"]] = queued.get(row["recipient"], 0) + 1
        kept.append(row)
    return kept


def over_daily_cap(db: Session, message: OutboxMessage, cap: int, now: datetime) -> bool:
    """Delivery: this number already received `cap` texts in the last 24 hours."""
    if cap <= 0 or message.channel != "sms" or not message.recipient:
        return False
    sent = db.exec(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.recipient == message.recipient, OutboxMessage.channel == "sms",
        OutboxMessage.state == "sent", col(OutboxMessage.sent_at) > now - DAY)).one()
    return int(sent) >= cap
