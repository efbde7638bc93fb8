"""A session cancelled or over: a cancelled ticket promotes nobody, and what the outbox still
holds about it does not go out (issue 8, item 13)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from events.delivery import deliver_due
from events.models import Event, EventStatus, OutboxMessage
from server.config import Settings
from server.db import get_engine
from tests.conftest import event_body, publish
from tests.sms_gateway import with_sms


def _full_session(staff: Any, db: Session, client: TestClient) -> tuple[TestClient, int,
                                                                        list[dict[str, Any]]]:
    """Capacity 1: one confirmed ticket, one on the waitlist."""
    now = datetime.now(UTC)
    admin = staff("admin")
    body = event_body(db, capacity=1, starts_at=(now + timedelta(days=10)).isoformat(),
                      ends_at=(now + timedelta(days=10, hours=2)).isoformat(),
                      registration_opens_at=(now - timedelta(days=1)).isoformat(),
                      registration_closes_at=(now + timedelta(days=9)).isoformat())
    created = admin.post("/api/events", json=body)
    assert created.status_code == 201, created.text
    event_id = int(created.json()["id"])
    publish(admin, event_id)
    tickets = []
    for phone in ("13800000001", "13800000002"):
        made = client.post(f"/api/events/{event_id}/registrations",
                           json={"name": "王小明", "phone": phone, "consent": True})
        assert made.status_code == 201, made.text
        tickets.append(made.json())
    assert [t["status"] for t in tickets] == ["confirmed", "waitlisted"]
    return admin, event_id, tickets


def _topics(db: Session, registration_id: int) -> list[str]:
    db.expire_all()
    return [m.topic for m in db.exec(select(OutboxMessage).where(
        OutboxMessage.registration_id == registration_id).order_by(col(OutboxMessage.id)))]


def _deliver(settings: Settings, now: datetime | None = None) -> None:
    with Session(get_engine(settings.sqlalchemy_url), expire_on_commit=False) as session:
        deliver_due(session, settings, now=now)


def test_cancelling_after_the_session_was_cancelled_promotes_nobody(client, staff, db):
    admin, event_id, (first, second) = _full_session(staff, db, client)
    cancelled = admin.post(f"/api/events/{event_id}/status",
                           json={"status": "cancelled", "reason": "场地检修"})
    assert cancelled.status_code == 200, cancelled.text

    assert client.delete(f"/api/registrations/{first['manage_token']}").status_code == 200
    waiting = client.get(f"/api/registrations/{second['manage_token']}").json()
    assert waiting["status"] == "waitlisted"
    assert "promoted" not in _topics(db, second["id"])


def test_cancelling_after_the_session_ended_promotes_nobody(client, staff, db):
    _, event_id, (first, second) = _full_session(staff, db, client)
    event = db.get(Event, event_id)
    assert event is not None
    event.status = EventStatus.ended
    db.add(event)
    db.commit()

    assert client.delete(f"/api/registrations/{first['manage_token']}").status_code == 200
    assert client.get(f"/api/registrations/{second['manage_token']}").json()["status"] == \
        "waitlisted"
    assert "promoted" not in _topics(db, second["id"])


def _messages(db: Session, registration_id: int) -> dict[str, str]:
    db.expire_all()
    return {m.topic: m.state for m in db.exec(select(OutboxMessage).where(
        OutboxMessage.registration_id == registration_id))}


def test_a_promotion_queued_before_the_session_was_cancelled_is_void(
        client, staff, db, settings, sms_api):
    admin, event_id, (first, second) = _full_session(staff, db, client)
    assert client.delete(f"/api/registrations/{first['manage_token']}").status_code == 200
    assert _messages(db, second["id"])["promoted"] == "pending"
    assert admin.post(f"/api/events/{event_id}/status",
                      json={"status": "cancelled", "reason": "场地检修"}).status_code == 200

    _deliver(with_sms(settings, sms_api))
    states = _messages(db, second["id"])
    assert states["promoted"] == "void"
    assert states["event_cancelled"] == "sent"  # the cancellation notice itself goes out


def test_a_promotion_still_pending_after_the_session_is_over_is_void(
        client, staff, db, settings):
    _, event_id, (first, second) = _full_session(staff, db, client)
    assert client.delete(f"/api/registrations/{first['manage_token']}").status_code == 200
    event = db.get(Event, event_id)
    assert event is not None

    _deliver(settings, now=event.ends_at + timedelta(hours=1))
    assert _messages(db, second["id"])["promoted"] == "void"
