"""What the database itself guarantees about registrations: a commit answered 201 survives a
power cut (SQLite synchronous=FULL), one active registration per phone and session, and a
waitlist order that the wall clock cannot reverse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from events import registration
from events.models import Registration
from server.db import get_engine
from tests.conftest import assign_hosts, door_open
from tests.helpers import open_session, post_registration


def test_sqlite_commits_are_durable_synchronous_full(settings):
    engine = get_engine(settings.sqlalchemy_url)
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's commits are durable by default (synchronous_commit=on)")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL


def _row(event_id: int, code: str, phone_hash: str, status: str = "confirmed") -> dict:
    now = datetime.now(UTC)
    return {"event_id": event_id, "status": status, "code": code, "name": "甲",
            "phone": "13900000001" if phone_hash else "", "phone_hash": phone_hash,
            "question": "", "source": "online", "consent_at": now, "created_at": now,
            "queued_at": now}


def test_the_database_refuses_a_second_active_registration_of_one_phone(staff, db, settings):
    event_id = open_session(staff, db, capacity=5)
    table = Registration.__table__  # type: ignore[attr-defined]
    with Session(get_engine(settings.sqlalchemy_url)) as session:
        session.execute(insert(table), [
            _row(event_id, "AAAA2222", "h1"),
            _row(event_id, "AAAA3333", "h1", status="cancelled"),  # history may repeat
            _row(event_id, "AAAA4444", "h1", status="cancelled"),
            _row(event_id, "AAAA5555", ""),  # walk-ins without a phone
            _row(event_id, "AAAA6666", ""),
        ])
        session.commit()
    for status in ("confirmed", "waitlisted"):
        with Session(get_engine(settings.sqlalchemy_url)) as session, \
                pytest.raises(IntegrityError):
            session.execute(insert(table), [_row(event_id, "AAAA7777", "h1", status=status)])
            session.commit()


def test_a_walk_in_with_a_number_that_holds_a_ticket_is_409(client, staff, db):
    event_id = open_session(staff, db, capacity=5, **door_open())
    assert post_registration(client, event_id, "13900000009").status_code == 201
    host = staff("host")
    assign_hosts(db, event_id)
    refused = host.post(f"/api/events/{event_id}/walk-ins",
                        json={"name": "赵六", "phone": "139 0000 0009"})
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == "already_registered"
    assert host.post(f"/api/events/{event_id}/walk-ins",
                     json={"name": "孙七", "phone": "13900000008"}).status_code == 201


def test_a_clock_stepped_back_does_not_reorder_the_waitlist(client, staff, db, monkeypatch):
    event_id = open_session(staff, db, capacity=1)
    holder = post_registration(client, event_id, "13900000001").json()
    now = datetime.now(UTC)
    monkeypatch.setattr(registration, "utcnow", lambda: now)
    first = post_registration(client, event_id, "13900000002").json()
    # NTP steps the clock an hour back between two registrations.
    monkeypatch.setattr(registration, "utcnow", lambda: now - timedelta(hours=1))
    second = post_registration(client, event_id, "13900000003").json()
    assert (first["waitlist_position"], second["waitlist_position"]) == (1, 2)

    def place(ticket: dict) -> tuple[str, int | None]:
        shown = client.get(f"/api/registrations/{ticket['manage_token']}").json()
        return shown["status"], shown["waitlist_position"]

    assert (place(first), place(second)) == (("waitlisted", 1), ("waitlisted", 2))
    assert client.delete(f"/api/registrations/{holder['manage_token']}").status_code == 200
    assert (place(first), place(second)) == (("confirmed", None), ("waitlisted", 1))
    db.expire_all()
    assert [r.phone for r in db.exec(select(Registration).where(
        Registration.event_id == event_id, Registration.promoted_at.is_not(None)))] == \
        ["13900000002"]  # type: ignore[union-attr]
