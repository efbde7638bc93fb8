"""Public registration limits (issue 8, item 7): per client address and per phone in a sliding
window across processes (the database, or Redis when configured), 429 too_many_requests with
Retry-After, and a daily cap of texts to any one number."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from events.delivery import deliver_due
from events.models import OutboxMessage, RegistrationAttempt
from events.notify import message_row
from server.app import create_app
from server.config import Settings
from server.db import get_engine
from server.worker import JOBS, run_job
from tests.conftest import REDIS_URL, event_body, publish
from tests.frontend.portal_pages import HTML, post_form, visible
from tests.sms_gateway import with_sms

PHONE = "13912345678"


@pytest.fixture
def limited(settings: Settings) -> Iterator[Any]:
    """limited(per_address=…, per_phone=…, …): an app with those limits (a fresh Redis too)."""
    if REDIS_URL:
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
    clients: list[TestClient] = []

    def factory(**limits: Any) -> TestClient:
        values = {"registration_limit_per_address": 0, "registration_limit_per_phone": 0,
                  **{f"registration_limit_{k}" if k.startswith("per_") else k: v
                     for k, v in limits.items()}}
        app = create_app(settings.model_copy(update=values))
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.__exit__(None, None, None)


def _session(staff: Any, db: Session, capacity: int = 100) -> int:
    now = datetime.now(UTC)
    admin = staff("admin")
    body = event_body(db, capacity=capacity, starts_at=(now + timedelta(days=10)).isoformat(),
                      ends_at=(now + timedelta(days=10, hours=2)).isoformat(),
                      registration_opens_at=(now - timedelta(days=1)).isoformat(),
                      registration_closes_at=(now + timedelta(days=9)).isoformat())
    created = admin.post("/api/events", json=body)
    assert created.status_code == 201, created.text
    publish(admin, created.json()["id"])
    return int(created.json()["id"])


def _register(client: TestClient, event_id: int, phone: str, via: str | None = None) -> Any:
    headers = {"X-Forwarded-For": via} if via else {}
    return client.post(f"/api/events/{event_id}/registrations", headers=headers,
                       json={"name": "王小明", "phone": phone, "consent": True})


def test_one_address_past_its_limit_gets_429_with_retry_after(app: FastAPI, staff, db,
                                                              limited):
    event_id = _session(staff, db)
    client = limited(per_address=3)
    for n in range(3):
        assert _register(client, event_id, f"1380000000{n}").status_code == 201
    refused = _register(client, event_id, "13800000009")
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"] == "too_many_requests"
    assert 3000 < int(refused.headers["retry-after"]) <= 3600
    assert client.get(f"/api/events/{event_id}").json()["registered_count"] == 3


def test_already_registered_answers_count_against_the_address(app, staff, db, limited):
    event_id = _session(staff, db)
    client = limited(per_address=3)
    assert _register(client, event_id, PHONE).status_code == 201
    for _ in range(2):  # probing whether a number is registered
        assert _register(client, event_id, PHONE).json()["error"] == "already_registered"
    assert _register(client, event_id, "13800000001").status_code == 429


def test_x_forwarded_for_counts_only_from_a_trusted_proxy(app, staff, db, limited):
    event_id = _session(staff, db)
    # The test client's peer is "testclient": not a trusted proxy, so its header is ignored.
    direct = limited(per_address=2)
    answers = [_register(direct, event_id, f"1370000000{n}", via=f"203.0.113.{n}").status_code
               for n in range(3)]
    assert answers == [201, 201, 429]

    behind_nginx = limited(per_address=2, trusted_proxies="testclient")
    answers = [_register(behind_nginx, event_id, f"1360000000{n}",
                         via=f"203.0.113.{n}").status_code for n in range(4)]
    assert answers == [201, 201, 201, 201]  # four citizens behind one proxy
    assert _register(behind_nginx, event_id, "13600000008", via="203.0.113.1").status_code \
        == 201
    assert _register(behind_nginx, event_id, "13600000009", via="203.0.113.1").status_code \
        == 429


def test_limits_hold_across_processes(app, staff, db, limited):
    event_id = _session(staff, db)
    one, other = limited(per_address=2), limited(per_address=2)
    assert _register(one, event_id, "13800000001").status_code == 201
    assert _register(other, event_id, "13800000002").status_code == 201
    assert _register(one, event_id, "13800000003").status_code == 429
    assert _register(other, event_id, "13800000004").status_code == 429


def test_a_phone_registered_and_cancelled_in_a_loop_is_limited(app, staff, db, limited):
    event_id = _session(staff, db)
    client = limited(per_phone=3)
    answers = []
    for _ in range(5):
        made = _register(client, event_id, PHONE)
        answers.append(made.status_code)
        if made.status_code == 201:
            client.delete(f"/api/registrations/{made.json()['manage_token']}")
    assert answers == [201, 201, 201, 429, 429]


def _texts(db: Session, **where: Any) -> list[OutboxMessage]:
    db.expire_all()
    query = select(OutboxMessage).where(OutboxMessage.recipient == PHONE,
                                        OutboxMessage.channel == "sms")
    for field, value in where.items():
        query = query.where(getattr(OutboxMessage, field) == value)
    return list(db.exec(query))


def test_a_register_cancel_loop_queues_and_sends_no_more_than_the_daily_cap(
        app, staff, db, settings, limited, sms_api):
    event_id = _session(staff, db)
    client = limited(sms_daily_cap=4)  # no registration limits: only the cap holds
    for _ in range(20):
        made = _register(client, event_id, PHONE)
        assert made.status_code == 201
        assert client.delete(f"/api/registrations/{made.json()['manage_token']}"
                             ).status_code == 200
    queued = [m for m in _texts(db) if m.state != "void" and m.topic != "reminder"]
    assert len(queued) == 4
    with Session(get_engine(settings.sqlalchemy_url)) as worker_db:
        deliver_due(worker_db, with_sms(settings, sms_api).model_copy(
            update={"sms_daily_cap": 4}))
    assert len(_texts(db, state="sent")) <= 4


def test_delivery_voids_texts_beyond_the_daily_cap(db, settings, sms_api):
    for n in range(5):
        db.add(OutboxMessage(**message_row(topic="event_changed", recipient=PHONE,
                                           body=f"第{n}条")))
    db.commit()
    with Session(get_engine(settings.sqlalchemy_url)) as worker_db:
        deliver_due(worker_db, with_sms(settings, sms_api).model_copy(
            update={"sms_daily_cap": 3}))
    assert len(_texts(db, state="sent")) == 3
    assert [m.error for m in _texts(db, state="void")] == \
        ["this number has had its texts for today"] * 2


def test_the_form_says_so_in_chinese_with_retry_after(app, staff, db, limited):
    event_id = _session(staff, db)
    client = limited(per_address=1)
    assert post_form(client, event_id, phone="13800000001").status_code == 303
    refused = post_form(client, event_id, phone="13800000002")
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert "报名过于频繁，请稍后再试" in visible(refused.text)
    assert client.get(f"/events/{event_id}", headers=HTML).status_code == 200


@pytest.mark.skipif(bool(REDIS_URL), reason="Redis forgets expired attempts by itself")
def test_the_worker_forgets_attempts_the_window_left_behind(app, staff, db, settings, limited):
    event_id = _session(staff, db)
    client = limited(per_address=5)
    assert _register(client, event_id, PHONE).status_code == 201
    old = datetime.now(UTC) - timedelta(hours=2)
    db.add(RegistrationAttempt(key="0" * 64, at=old))
    db.commit()
    [job] = [job for job in JOBS if job.name == "registration_limits"]
    assert run_job(job, settings) == "done"
    db.expire_all()
    left = db.exec(select(col(RegistrationAttempt.at))).all()
    assert len(left) == 1 and left[0] > old  # the address's attempt of a moment ago


def test_an_ipv6_client_is_counted_by_its_64_network(app, staff, db, limited):
    """A phone or home gets a whole /64: spreading attempts over it does not escape the limit."""
    event_id = _session(staff, db)
    behind_nginx = limited(per_address=2, trusted_proxies="testclient")
    answers = [_register(behind_nginx, event_id, f"1350000000{n}",
                         via=f"2001:db8:1:2::{n + 1:x}").status_code for n in range(3)]
    assert answers == [201, 201, 429]
    other = _register(behind_nginx, event_id, "13500000008", via="2001:db8:1:3::1")
    assert other.status_code == 201  # the next /64 is someone else
    mapped = [_register(behind_nginx, event_id, f"1340000000{n}",
                        via=via).status_code
              for n, via in enumerate(["198.51.100.7", "::ffff:198.51.100.7", "198.51.100.7"])]
    assert mapped == [201, 201, 429]  # an IPv4 address however it is written


def test_address_buckets() -> None:
    from events.clients import address_bucket

    assert address_bucket("2001:db8:1:2:aaaa:bbbb:cccc:dddd") == "2001:db8:1:2::/64"
    assert address_bucket("203.0.113.9") == "203.0.113.9"
    assert address_bucket("::ffff:203.0.113.9") == "203.0.113.9"
    assert address_bucket("testclient") == "testclient"
