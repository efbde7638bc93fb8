"""Retention: personal data is erased a set time after a session ends; the counts remain."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from events.models import AuditEntry, Event, OutboxMessage, Registration
from events.retention import purge_due
from server import cli
from server.config import Settings, get_settings
from server.db import get_engine
from server.worker import JOBS, Job, run_worker
from tests.conftest import assign_hosts, event_body, publish
from tests.helpers import deliver

DAY = timedelta(days=1)


def _session(admin: TestClient, db: Session, starts: datetime, capacity: int = 1) -> int:
    """A published session at `starts`; registration is open now if it lies ahead."""
    now = datetime.now(UTC)
    window = ({"registration_opens_at": (now - DAY).isoformat(),
               "registration_closes_at": (starts - DAY).isoformat()} if starts > now + DAY
              else {"registration_opens_at": None, "registration_closes_at": None})
    created = admin.post("/api/events", json=event_body(
        db, capacity=capacity, starts_at=starts.isoformat(),
        ends_at=(starts + timedelta(hours=2)).isoformat(), **window))
    assert created.status_code == 201, created.text
    publish(admin, created.json()["id"])
    return int(created.json()["id"])


def _move(db: Session, event_id: int, starts: datetime) -> None:
    """Time travel for the test: the session (two hours long) starts at `starts`."""
    event = db.get(Event, event_id, populate_existing=True)
    assert event is not None
    event.starts_at, event.ends_at = starts, starts + timedelta(hours=2)
    db.add(event)
    db.commit()


def _register(client: TestClient, event_id: int, phone: str, name: str) -> dict[str, Any]:
    response = client.post(f"/api/events/{event_id}/registrations", json={
        "name": name, "phone": phone, "consent": True, "question": "课后服务如何收费？"})
    assert response.status_code == 201, response.text
    return dict(response.json())


def _registrations(db: Session, event_id: int) -> list[Registration]:
    db.expire_all()
    return list(db.exec(select(Registration).where(Registration.event_id == event_id)
                        .order_by(col(Registration.id))))


def _messages(db: Session, event_id: int) -> list[OutboxMessage]:
    db.expire_all()
    return list(db.exec(select(OutboxMessage).where(OutboxMessage.event_id == event_id)))


def _purge(settings: Settings, now: datetime | None = None) -> tuple[int, int]:
    with Session(get_engine(settings.sqlalchemy_url)) as db:
        result = purge_due(db, settings, now=now)
        db.commit()
    return result


def _counts(client: TestClient, event_id: int) -> tuple[int, int, int]:
    event = client.get(f"/api/events/{event_id}").json()
    door = client.get(f"/api/events/{event_id}/checkins").json()
    return event["registered_count"], event["waitlist_count"], door["checked_in_count"]


def test_purge_erases_a_session_ended_91_days_ago_not_89_and_keeps_counts(
        client, staff, db, settings):
    admin, host = staff("admin"), staff("host")
    start = datetime.now(UTC).replace(microsecond=0) + 10 * DAY
    old_id, recent_id = _session(admin, db, start), _session(admin, db, start + 2 * DAY)
    assign_hosts(db, old_id)
    assign_hosts(db, recent_id)
    seated = _register(client, old_id, "13800000001", "欧阳娜娜")
    waiting = _register(client, old_id, "13800000002", "李雷")
    kept = _register(client, recent_id, "13800000003", "韩梅梅")
    _move(db, old_id, datetime.now(UTC) + timedelta(minutes=30))  # the door opens
    assert host.post(f"/api/events/{old_id}/checkins",
                     json={"code": seated["code"]}).status_code == 200
    _move(db, old_id, start)
    deliver(settings)  # confirmations sent; the reminder still waits
    before = _counts(host, old_id)
    assert before == (1, 1, 1)

    now = start + timedelta(hours=2) + 91 * DAY  # the first ended 91 days ago, the other 89
    assert _purge(settings, now) == (1, 2)

    erased = _registrations(db, old_id)
    assert [(r.name, r.phone, r.phone_hash, r.question) for r in erased] == [("", "", "", "")] * 2
    assert all(r.erased_at for r in erased)
    assert [r.status.value for r in erased] == ["confirmed", "waitlisted"]
    assert _counts(host, old_id) == before
    messages = _messages(db, old_id)
    assert messages and {m.recipient for m in messages} == {""}
    assert {m.recipient_masked for m in messages} == {"138****0001", "138****0002"}
    assert {m.state for m in messages if m.topic == "reminder"} == {"void"}
    assert "13800000001" not in host.get(f"/api/events/{old_id}/registrations.csv").text
    assert client.get(f"/api/registrations/{waiting['manage_token']}").status_code == 404

    [untouched] = _registrations(db, recent_id)
    assert (untouched.name, untouched.phone) == ("韩梅梅", "13800000003")
    assert {m.recipient for m in _messages(db, recent_id)} == {"13800000003"}
    assert client.get(f"/api/registrations/{kept['manage_token']}").json()["name"] == "韩*梅"

    audit = db.exec(select(AuditEntry).where(AuditEntry.action == "registration.purge")).all()
    assert [(a.username, a.entity_id) for a in audit] == [("system", old_id)]
    assert json.loads(audit[0].changes)["registrations"] == 2
    purged_at = db.get(Event, old_id, populate_existing=True)
    assert purged_at is not None and purged_at.personal_data_purged_at is not None

    assert _purge(settings, now) == (0, 0)  # idempotent
    assert _purge(settings, now + 2 * DAY) == (1, 1)
    assert _registrations(db, recent_id)[0].phone == ""


def _held_in_the_past(staff: Any, db: Session) -> tuple[int, int, TestClient]:
    """Two sessions that ended 91 and 89 days ago, each with a walk-in (let in at the door,
    then the clock moved on)."""
    admin, host = staff("admin"), staff("host")
    now = datetime.now(UTC)
    ids = []
    for days, name, phone in ((91, "张伟", "13900000091"), (89, "王芳", "13900000089")):
        event_id = _session(admin, db, now + timedelta(minutes=30))
        assign_hosts(db, event_id)
        walked = host.post(f"/api/events/{event_id}/walk-ins", json={"name": name,
                                                                     "phone": phone})
        assert walked.status_code == 201, walked.text
        _move(db, event_id, now - days * DAY - timedelta(hours=2))
        ids.append(event_id)
    return ids[0], ids[1], host


@pytest.fixture
def command_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("KAIFANG_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("KAIFANG_SECRET_KEY", "test-secret-key-of-at-least-32-bytes")
    monkeypatch.delenv("KAIFANG_RETENTION_DAYS", raising=False)
    if settings.database_url:
        monkeypatch.setenv("KAIFANG_DATABASE_URL", settings.database_url)
    else:
        monkeypatch.delenv("KAIFANG_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_kaifang_purge_prints_what_it_erased(staff, db, settings, command_env, capsys):
    old_id, recent_id, host = _held_in_the_past(staff, db)
    assert cli.main(["purge"]) == 0
    assert "erased the personal data of 1 sessions (1 registrations)" in capsys.readouterr().out
    assert [r.phone for r in _registrations(db, old_id)] == [""]
    assert [r.phone for r in _registrations(db, recent_id)] == ["13900000089"]
    assert _counts(host, old_id) == (1, 0, 1)

    assert cli.main(["purge"]) == 0
    assert "of 0 sessions (0 registrations)" in capsys.readouterr().out
    soon = (datetime.now(UTC) + 2 * DAY).isoformat()
    assert cli.main(["purge", "--now", soon]) == 0
    assert "of 1 sessions (1 registrations)" in capsys.readouterr().out
    assert [r.phone for r in _registrations(db, recent_id)] == [""]
    with pytest.raises(SystemExit) as refused:
        cli.main(["purge", "--now", "next tuesday"])
    assert refused.value.code == 2 and "ISO 8601" in capsys.readouterr().err


def test_retention_days_is_configurable(staff, db, settings, command_env, capsys):
    _, recent_id, _ = _held_in_the_past(staff, db)
    command_env.setenv("KAIFANG_RETENTION_DAYS", "30")
    get_settings.cache_clear()
    assert cli.main(["purge"]) == 0
    assert "of 2 sessions (2 registrations) that ended more than 30 days ago" in \
        capsys.readouterr().out
    assert [r.name for r in _registrations(db, recent_id)] == [""]


def test_the_worker_purges_by_itself_even_when_another_job_fails(staff, db, settings):
    old_id, recent_id, _ = _held_in_the_past(staff, db)

    def broken(_db: Session, _settings: Settings) -> None:
        raise RuntimeError("a job that always fails")

    stop = threading.Event()
    worker = threading.Thread(target=run_worker, args=(settings, stop, 0.05,
                                                       (Job("broken", 0, broken), *JOBS)))
    worker.start()
    try:
        deadline = time.monotonic() + 15
        while _registrations(db, old_id)[0].phone and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(10)
    assert not worker.is_alive()
    assert _registrations(db, old_id)[0].phone == ""
    assert _registrations(db, recent_id)[0].phone == "13900000089"
