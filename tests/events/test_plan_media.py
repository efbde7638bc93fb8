"""What the plan learns of a session's video (streaming.plan_media through events.plan_media):
when its recording was uploaded, when the archive first showed it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from events.models import Event
from events.plan_media import media_of
from streaming.models import Recording
from tests.conftest import event_body, publish

T0 = datetime(2027, 5, 1, 2, 0, tzinfo=UTC)


def session(admin: Any, db: Session, **more: Any) -> int:
    times = {"starts_at": "2027-05-20T10:00:00+08:00", "ends_at": "2027-05-20T11:00:00+08:00"}
    body = event_body(db, "education", mode="online", venue="", address="", capacity=0,
                      registration_opens_at=None, registration_closes_at=None,
                      **{**times, **more})
    created = admin.post("/api/events", json=body)
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def add(db: Session, event_id: int, state: str, created: datetime,
        published: datetime | None = None, duration_s: float = 600) -> None:
    db.add(Recording(event_id=event_id, state=state, created_at=created, published_at=published,
                     media_key="k" if published else "", duration_s=duration_s))
    db.commit()


def test_a_premieres_video_is_on_the_portal_once_the_premiere_played(staff: Any,
                                                                    db: Session) -> None:
    admin = staff("admin")
    event_id = session(admin, db, kind="broadcast", premiere_at="2027-05-20T10:00:00+08:00")
    assert media_of(db, [event_id])[event_id].uploaded_at is None
    add(db, event_id, "failed", T0)
    add(db, event_id, "succeeded", T0 + timedelta(days=1), T0 + timedelta(days=1, hours=1))
    facts = media_of(db, [event_id])[event_id]
    assert facts.uploaded_at == T0 + timedelta(days=1)
    assert facts.on_portal_at is None  # not published yet
    publish(admin, event_id)
    facts = media_of(db, [event_id])[event_id]
    assert facts.on_portal_at == datetime(2027, 5, 20, 2, 10, tzinfo=UTC)


def test_a_held_sessions_video_is_on_the_portal_after_its_end(staff: Any, db: Session) -> None:
    admin = staff("admin")
    event_id = session(admin, db, kind="open_meeting",
                       starts_at="2020-05-20T10:00:00+08:00",
                       ends_at="2020-05-20T11:00:00+08:00")
    publish(admin, event_id)
    late = datetime(2020, 6, 1, tzinfo=UTC)
    add(db, event_id, "succeeded", late, late)
    assert media_of(db, [event_id])[event_id].on_portal_at is None  # not held yet
    assert admin.post(f"/api/events/{event_id}/close",
                      json={"minutes": "会议纪要"}).status_code == 200
    db.expire_all()
    event = db.get(Event, event_id)
    assert event is not None and event.status == "ended"
    # Entered after the fact: the archive showed it from its publication, the latest of all.
    assert event.published_at is not None and event.published_at > late
    assert media_of(db, [event_id])[event_id].on_portal_at == event.published_at
