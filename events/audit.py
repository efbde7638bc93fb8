"""The audit log: who changed what, when. Every change of a session or account lands here."""

from __future__ import annotations

import json
from datetime import date, datetime
from enum import Enum
from typing import Any

from sqlmodel import Session, col, select

from events.models import AuditEntry, StaffUser


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    return {
        key: [_plain(before.get(key)), _plain(after[key])]
        for key in after
        if _plain(before.get(key)) != _plain(after[key])
    }


def record(
    db: Session,
    actor: StaffUser | None,
    action: str,
    entity: str,
    entity_id: int | None,
    *,
    unit_id: int | None = None,
    changes: dict[str, Any] | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        user_id=actor.id if actor else None,
        username=actor.username if actor else "system",
        action=action,
        entity=entity,
        entity_id=entity_id,
        unit_id=unit_id,
        changes=json.dumps({k: _plain(v) for k, v in (changes or {}).items()}, ensure_ascii=False),
    )
    db.add(entry)
    db.flush()
    return entry


def entries(
    db: Session,
    *,
    entity: str | None = None,
    entity_id: int | None = None,
    unit_id: int | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[AuditEntry]:
    query = select(AuditEntry)
    if entity:
        query = query.where(AuditEntry.entity == entity)
    if entity_id is not None:
        query = query.where(AuditEntry.entity_id == entity_id)
    if unit_id is not None:
        query = query.where(AuditEntry.unit_id == unit_id)
    query = query.order_by(col(AuditEntry.id).desc()).offset(offset).limit(limit)
    return list(db.exec(query))


def entry_public(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "username": entry.username,
        "action": entry.action,
        "entity": entry.entity,
        "entity_id": entry.entity_id,
        "unit_id": entry.unit_id,
        "changes": json.loads(entry.changes or "{}"),
    }
