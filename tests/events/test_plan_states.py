"""A plan item's state as time goes by (the `clock`): planned, at risk without a session, on
track once linked, each step due, late, done, missed; the reminders the units get."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from events import plan
from events.models import OutboxMessage, Unit
from server.config import Settings
from streaming.models import Recording
from tests.conftest import Clock, event_body, publish

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def beijing(day: str, hour: int = 10) -> datetime:
    """A Beijing time as UTC (Beijing is UTC+8)."""
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00+08:00").astimezone(UTC)


def state_of(client: TestClient, item_id: int) -> tuple[str, str]:
    items = client.get("/api/plan?year=2027").json()["items"]
    found = next(i for i in items if i["id"] == item_id)
    return found["state"], found["reason"]


def new_item(admin: TestClient, month: int = 5, unit: str = "education",
             topic: str = "义务教育入学政策解读") -> int:
    created = admin.post("/api/plan/items", json={"year": 2027, "topic": topic,
                                                  "unit_code": unit, "month": month,
                                                  "theme": "education"})
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def new_broadcast(admin: TestClient, db: Session, premiere: str, unit: str = "education") -> int:
    at = datetime.fromisoformat(premiere)
    body = event_body(db, unit, kind="broadcast", mode="online", venue="", address="",
                      capacity=0, registration_opens_at=None, registration_closes_at=None,
                      starts_at=at.isoformat(), ends_at=(at + timedelta(hours=1)).isoformat(),
                      premiere_at=at.isoformat())
    created = admin.post("/api/events", json=body)
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def upload(client: TestClient, item_id: int, step: str, name: str = "材料.pdf",
           data: bytes = PDF) -> Any:
    return client.post(f"/api/plan/items/{item_id}/files?step={step}",
                       files={"file": (name, data, "application/pdf")})


def recorded(db: Session, event_id: int, at: datetime, duration_s: float = 600) -> None:
    db.add(Recording(event_id=event_id, state="succeeded", media_key="k1", duration_s=duration_s,
                     created_at=at, published_at=at))
    db.commit()


def test_an_item_from_planned_to_done(staff: Any, clock: Clock, client: TestClient,
                                      db: Session, settings: Settings) -> None:
    clock.now = beijing("2027-03-01")
    admin = staff("admin")
    item = new_item(admin)  # May
    assert state_of(client, item) == ("planned", "")
    clock.now = beijing("2027-04-05")  # May begins within 30 days: a session is wanted
    assert state_of(client, item) == ("at_risk", "no_session")
    event = new_broadcast(admin, db, "2027-05-20T10:00:00+08:00")
    editor = staff("editor", "education")
    assert editor.put(f"/api/plan/items/{item}", json={"event_id": event}).status_code == 200
    assert state_of(client, item) == ("on_track", "")
    detail = editor.get(f"/api/plan/items/{item}").json()
    assert [(s["step"], s["due"]) for s in detail["steps"]] == [
        ("material", "2027-05-06"), ("script", "2027-05-13"), ("recording", "2027-05-17"),
        ("announced", "2027-05-17"), ("archived", "2027-05-27")]
    assert [s["owner"] for s in detail["steps"]][:2] == ["lead_unit", "press_office"]

    clock.now = beijing("2027-04-30")
    assert state_of(client, item) == ("at_risk", "material_due_soon")
    assert upload(editor, item, "material").status_code == 201
    assert state_of(client, item) == ("on_track", "")

    clock.now = beijing("2027-05-08")
    assert state_of(client, item) == ("at_risk", "script_due_soon")
    press = staff("editor", "publicity")
    assert upload(press, item, "script", "脚本.docx.pdf").status_code == 201
    assert state_of(client, item) == ("on_track", "")

    clock.now = beijing("2027-05-12")
    assert state_of(client, item) == ("at_risk", "recording_due_soon")
    recorded(db, event, clock.now)
    assert state_of(client, item) == ("at_risk", "announced_due_soon")
    publish(admin, event)  # 8 days before the premiere
    assert state_of(client, item) == ("on_track", "")
    detail = editor.get(f"/api/plan/items/{item}").json()
    assert [s["done_at"] is not None for s in detail["steps"]] == [True] * 4 + [False]

    clock.now = beijing("2027-05-20", 11)  # the premiere played (ten minutes long)
    assert state_of(client, item) == ("done", "")
    assert not any(s["late"] for s in editor.get(f"/api/plan/items/{item}").json()["steps"])
    # Judged at an earlier time, what was done later does not count.
    earlier = plan.item_view(db, item, settings, now=beijing("2027-05-11"))
    assert (earlier.state, earlier.reason) == ("at_risk", "recording_due_soon")


def test_an_announcement_too_late_makes_the_item_late(staff: Any, clock: Clock,
                                                      client: TestClient, db: Session) -> None:
    clock.now = beijing("2027-04-01")
    admin = staff("admin")
    item = new_item(admin)
    event = new_broadcast(admin, db, "2027-05-20T10:00:00+08:00")
    assert admin.put(f"/api/plan/items/{item}", json={"event_id": event}).status_code == 200
    assert upload(admin, item, "material").status_code == 201
    assert upload(admin, item, "script").status_code == 201
    clock.now = beijing("2027-05-16")
    recorded(db, event, clock.now)
    assert state_of(client, item) == ("at_risk", "announced_due_soon")
    clock.now = beijing("2027-05-18")  # two days before: less than the three required
    assert state_of(client, item) == ("late", "announced_missing")
    publish(admin, event)
    assert state_of(client, item) == ("late", "announced_late")
    clock.now = beijing("2027-05-21")
    assert state_of(client, item) == ("late", "announced_late")  # all done, one late


def test_an_overdue_step_and_a_premiere_after_the_month(staff: Any, clock: Clock,
                                                        client: TestClient,
                                                        db: Session) -> None:
    clock.now = beijing("2027-04-01")
    admin = staff("admin")
    item = new_item(admin)
    late_one = new_item(admin, topic="推迟播出的议题")
    admin.put(f"/api/plan/items/{item}",
              json={"event_id": new_broadcast(admin, db, "2027-05-20T10:00:00+08:00")})
    admin.put(f"/api/plan/items/{late_one}",
              json={"event_id": new_broadcast(admin, db, "2027-06-25T10:00:00+08:00")})
    assert state_of(client, late_one) == ("late", "premiere_after_month")
    clock.now = beijing("2027-05-07")  # the material was due on 6 May
    assert state_of(client, item) == ("late", "material_missing")
    assert upload(admin, item, "material").status_code == 201
    assert state_of(client, item) == ("late", "material_late")


def test_an_item_is_missed_when_its_month_passes(staff: Any, clock: Clock, client: TestClient,
                                                 db: Session) -> None:
    clock.now = beijing("2027-01-20")
    admin = staff("admin")
    nothing = new_item(admin, month=2, topic="无人安排的议题")
    cancelled = new_item(admin, month=2, topic="活动取消的议题")
    event = new_broadcast(admin, db, "2027-02-20T10:00:00+08:00")
    admin.put(f"/api/plan/items/{cancelled}", json={"event_id": event})
    publish(admin, event)
    assert admin.post(f"/api/events/{event}/status",
                      json={"status": "cancelled", "reason": "改期"}).status_code == 200
    assert state_of(client, cancelled) == ("at_risk", "session_cancelled")
    clock.now = beijing("2027-03-07")  # February and its seven days of archiving: not yet
    assert state_of(client, nothing) == ("at_risk", "no_session")
    clock.now = beijing("2027-03-08")
    assert state_of(client, nothing) == ("missed", "no_session")
    assert state_of(client, cancelled) == ("missed", "session_cancelled")


def test_adherence_counts_each_units_items_by_state(staff: Any, clock: Clock, db: Session,
                                                    settings: Settings) -> None:
    clock.now = beijing("2027-03-01")
    admin = staff("admin")
    new_item(admin, month=2, topic="一")
    new_item(admin, month=9, topic="二")
    new_item(admin, month=9, unit="culture", topic="三")
    counts = plan.adherence(db, 2027, settings)
    education = next(c for c in counts.values() if c.total == 2)
    assert (education.at_risk, education.planned) == (1, 1)
    assert sorted(c.total for c in counts.values()) == [1, 2]


def reminders(db: Session) -> list[tuple[str, str]]:
    db.expire_all()
    return [(m.recipient, m.subject) for m in db.exec(
        select(OutboxMessage).where(OutboxMessage.topic == "plan_reminder")
        .order_by(col(OutboxMessage.id)))]


def test_reminders_reach_the_lead_unit_and_the_press_office_once(
        staff: Any, clock: Clock, db: Session, settings: Settings) -> None:
    clock.now = beijing("2027-03-01")
    admin = staff("admin")
    item = new_item(admin)
    assert plan.remind_due(db, settings) == 0
    clock.now = beijing("2027-04-05")
    assert plan.remind_due(db, settings) == 1
    db.commit()
    assert plan.remind_due(db, settings) == 0
    assert reminders(db) == [("unit:education", "直播计划待关联活动：义务教育入学政策解读")]
    admin.put(f"/api/plan/items/{item}",
              json={"event_id": new_broadcast(admin, db, "2027-05-20T10:00:00+08:00")})
    clock.now = beijing("2027-05-08")  # the material overdue, the script due in five days
    assert plan.remind_due(db, settings) == 3
    db.commit()
    sent = reminders(db)[1:]
    assert ("unit:education", "直播计划环节已逾期：牵头单位材料（义务教育入学政策解读）") in sent
    assert ("unit:publicity", "直播计划环节将到期：新闻办脚本（义务教育入学政策解读）") in sent
    assert ("unit:education", "直播计划环节将到期：新闻办脚本（义务教育入学政策解读）") in sent
    clock.advance(timedelta(hours=1))
    assert plan.remind_due(db, settings) == 0
    body = db.exec(select(OutboxMessage.body).where(
        OutboxMessage.recipient == "unit:publicity")).one()
    assert "5月13日" in body and "区委宣传部" in body


def test_a_unit_with_a_contact_address_gets_its_reminder_by_email(
        staff: Any, clock: Clock, db: Session, settings: Settings) -> None:
    unit = db.exec(select(Unit).where(Unit.code == "education")).one()
    unit.contact_email = "jiaowei@xicheng.gov.cn"
    db.add(unit)
    db.commit()
    clock.now = beijing("2027-04-05")
    new_item(staff("admin"))
    assert plan.remind_due(db, settings) == 1
    db.commit()
    message = db.exec(select(OutboxMessage).where(OutboxMessage.topic == "plan_reminder")).one()
    assert (message.channel, message.recipient) == ("email", "jiaowei@xicheng.gov.cn")
    assert message.recipient_masked == "j***@xicheng.gov.cn"
    assert "尚未关联直播活动" in message.body
