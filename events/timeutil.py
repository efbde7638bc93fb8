"""Times: stored UTC, shown in Asia/Shanghai; a time without offset means Beijing time."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Shanghai")


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=LOCAL_TZ)
    return value.astimezone(UTC)


def local(value: datetime) -> datetime:
    return value.astimezone(LOCAL_TZ)


def iso_local(value: datetime | None) -> str | None:
    return local(value).isoformat() if value else None
