"""GET /metrics: what the person on call reads in Prometheus (docs/observe.md)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update
from sqlmodel import select

from events.locking import SqliteWriteLock
from events.models import OutboxMessage
from events.timeutil import utcnow
from server.app import create_app
from server.config import Settings
from server.db import get_engine
from streaming.fanout import QUEUE_LIMIT_BYTES, LocalBroker
from streaming.models import LiveMessage, TranscodeJob
from tests.events.test_registration_desk import _burst, _run
from tests.helpers import open_session, run_async
from tests.streaming.jobs_helpers import queue, unit_session
from tests.streaming.live import _join, _live_session

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The test client's peer is named "testclient"; httpx's ASGI transport's is 127.0.0.1.
    return settings.model_copy(update={"metrics_allow": "testclient,127.0.0.1"})


def scrape(client: TestClient | httpx.Client) -> Samples:
    """Every sample of /metrics, by name and labels, after checking the text parses."""
    answer = client.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(answer.text)
            for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def until(condition: Any, timeout_s: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (found := condition()):
        assert time.monotonic() < deadline, "the condition did not come true in time"
        time.sleep(0.02)
    return found


def test_a_registration_burst_counts_under_its_route_template(app, staff, db) -> None:
    event_id = open_session(staff, db, capacity=10)
    answers = _run(_burst(app, event_id, 30))
    assert sorted({a.status_code for a in answers}) == [201]
    with TestClient(app) as client:
        client.get(f"/api/events/{event_id}/no-such-thing")
        text = client.get("/metrics").text
        samples = scrape(client)
    route = "/api/events/{event_id}/registrations"
    count = value(samples, "kaifang_http_request_duration_seconds_count", route=route,
                  method="POST", status="2xx")
    assert count == 30
    slowest = value(samples, "kaifang_http_request_duration_seconds_bucket", route=route,
                    method="POST", status="2xx", le="+Inf")
    assert slowest == 30
    assert value(samples, "kaifang_http_request_duration_seconds_sum", route=route,
                 method="POST", status="2xx") > 0
    # A path no route matched is one label, whatever it held; no raw path is ever a label.
    assert value(samples, "kaifang_http_request_duration_seconds_count", route="unmatched",
                 method="GET", status="4xx") >= 1
    assert f"/api/events/{event_id}" not in text


def test_an_address_not_allowed_gets_the_404_of_a_path_that_does_not_exist(
        settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"metrics_allow": "10.0.0.0/8"}))
    with TestClient(app) as client:
        refused = client.get("/metrics")
        unknown = client.get("/no-such-page")
    assert refused.status_code == 404
    assert refused.json() == unknown.json()
    assert refused.json()["error"] == "not_found"
    assert "kaifang_" not in refused.text


def test_behind_a_proxy_the_loopback_peer_is_refused_when_the_request_was_forwarded(
        app) -> None:
    # nginx on 127.0.0.1 forwards everyone: its peer is allowed, the forwarded request is not.
    with TestClient(app, client=("127.0.0.1", 50000)) as client:
        assert client.get("/metrics").status_code == 200
        for header in ("X-Forwarded-For", "X-Real-IP", "Forwarded"):
            forwarded = client.get("/metrics", headers={header: "127.0.0.1"})
            assert forwarded.status_code == 404, header
            assert forwarded.json()["error"] == "not_found"
    assert "/metrics" not in app.openapi()["paths"]


def test_a_viewer_socket_shows_while_open_and_goes_when_closed(client, staff, db) -> None:
    event_id = _live_session(staff, db, moderation="post")
    opened = lambda: value(scrape(client), "kaifang_websockets_open",  # noqa: E731
                           kind="viewer")
    assert opened() == 0
    with client.websocket_connect(f"/ws/events/{event_id}") as ws:
        assert ws.receive_json()["type"] == "hello"
        assert opened() == 1
        assert value(scrape(client), "kaifang_websockets_open", kind="host") == 0
    until(lambda: opened() == 0)


def test_a_held_comment_shows_with_its_age_until_a_host_decides(client, staff, db) -> None:
    event_id = _live_session(staff, db, moderation="pre")
    token = _join(client, event_id, "市民甲")["viewer_token"]
    with client.websocket_connect(f"/ws/events/{event_id}?token={token}") as ws:
        assert ws.receive_json()["type"] == "hello"
        ws.send_text(json.dumps({"type": "comment", "text": "请问停车位什么时候增加？",
                                 "client_id": "c-1"}))
        until(lambda: ws.receive_json()["type"] == "held")
    samples = scrape(client)
    assert value(samples, "kaifang_messages_held", kind="comment") == 1
    assert value(samples, "kaifang_messages_held", kind="question") == 0
    # Three minutes without a host's decision: what the alert (> 2 min) fires on.
    db.execute(update(LiveMessage).where(LiveMessage.event_id == event_id)  # type: ignore[arg-type]
               .values(created_at=utcnow() - timedelta(minutes=3)))
    db.commit()
    age = value(scrape(client), "kaifang_messages_held_oldest_age_seconds", kind="comment")
    assert 180 <= age < 240
    message = db.exec(select(LiveMessage).where(LiveMessage.event_id == event_id)).one()
    host = staff("admin")
    decided = host.post(f"/api/comments/{message.id}/moderation", json={"action": "approve"})
    assert decided.status_code == 200, decided.text
    samples = scrape(client)
    assert value(samples, "kaifang_messages_held", kind="comment") == 0
    assert value(samples, "kaifang_messages_held_oldest_age_seconds", kind="comment") == 0


def test_queued_and_running_jobs_show_with_their_speed_against_real_time(
        client, staff, db, settings) -> None:
    waiting = queue(db, settings, unit_session(staff, db, "education"))
    samples = scrape(client)
    assert value(samples, "kaifang_jobs", state="queued") == 1
    assert value(samples, "kaifang_jobs", state="running") == 0
    # A job of a 3 s recording, half done after 3 s: half real time, the alert's < 1.
    running = queue(db, settings, unit_session(staff, db, "health"))
    recording_s = 3.0  # jobs_helpers' source
    db.execute(update(TranscodeJob).where(TranscodeJob.id == running.id)  # type: ignore[arg-type]
               .values(state="running", progress=0.5, lease="x",
                       started_at=utcnow() - timedelta(seconds=recording_s)))
    db.execute(update(TranscodeJob).where(TranscodeJob.id == waiting.id)  # type: ignore[arg-type]
               .values(created_at=utcnow() - timedelta(minutes=10)))
    db.commit()
    samples = scrape(client)
    assert value(samples, "kaifang_jobs", state="queued") == 1
    assert value(samples, "kaifang_jobs", state="running") == 1
    assert value(samples, "kaifang_jobs_oldest_queued_age_seconds") >= 600
    assert value(samples, "kaifang_transcode_speed", of="running") == pytest.approx(0.5, rel=0.2)
    # It finishes: 3 s of recording made in 12 s, a quarter of real time.
    db.execute(update(TranscodeJob).where(TranscodeJob.id == running.id)  # type: ignore[arg-type]
               .values(state="succeeded", progress=1.0,
                       started_at=utcnow() - timedelta(seconds=14),
                       finished_at=utcnow() - timedelta(seconds=2)))
    db.commit()
    samples = scrape(client)
    assert value(samples, "kaifang_jobs", state="running") == 0
    assert value(samples, "kaifang_transcode_speed", of="last") == pytest.approx(0.25, rel=0.05)
    assert ("kaifang_transcode_speed", (("of", "running"),)) not in samples


def test_notifications_due_and_unsent_are_the_outbox_depth(client, staff, db) -> None:
    event_id = open_session(staff, db, capacity=10)
    for i in range(3):
        answer = client.post(f"/api/events/{event_id}/registrations",
                             json={"name": f"市民{i}", "phone": f"1390000000{i}", "consent": True})
        assert answer.status_code == 201
    due = db.exec(select(OutboxMessage).where(OutboxMessage.state == "pending")).all()
    assert due, "a registration queues its confirmation"
    db.execute(update(OutboxMessage).values(due_at=utcnow() - timedelta(minutes=5)))
    db.commit()
    samples = scrape(client)
    assert value(samples, "kaifang_outbox_due") == len(due)
    assert value(samples, "kaifang_outbox_oldest_due_age_seconds") >= 300


def test_a_write_that_waits_past_its_deadline_counts_as_a_lock_timeout_and_a_busy_answer(
        settings, staff, db) -> None:
    if settings.database_url:
        pytest.skip("SQLite's write lock (PostgreSQL waits on rows: kaifang_database_lock_waiting)")
    event_id = open_session(staff, db, capacity=10)
    app = create_app(settings.model_copy(update={"lock_timeout_s": 0.2}))
    lock = SqliteWriteLock.for_database(get_engine(settings.sqlalchemy_url).url.database or "")
    with TestClient(app) as client:
        before = scrape(client)
        lock.acquire(5)  # another writer holds the database
        try:
            answer = client.post(f"/api/events/{event_id}/registrations",
                                 json={"name": "市民", "phone": "13900000009", "consent": True})
        finally:
            lock.release()
        after = scrape(client)
    assert answer.status_code == 503 and answer.json()["error"] == "busy"
    for name in ("kaifang_busy_answers_total", "kaifang_lock_timeouts_total"):
        assert value(after, name) == value(before, name) + 1, name
    assert value(after, "kaifang_lock_wait_seconds_total") >= 0.2


def test_a_socket_too_slow_for_the_room_counts_its_frames_dropped() -> None:
    async def scenario() -> LocalBroker:
        broker = LocalBroker()
        never = asyncio.Event()

        async def stuck(frame: str) -> None:  # a viewer whose connection stopped reading
            await never.wait()

        async def quick(frame: str) -> None:
            return None

        slow = broker.subscribe(7, stuck)
        await slow.go_live(0)
        await broker.subscribe(7, quick).go_live(0)
        for _ in range(PUBLISHED):
            broker.publish(7, [FRAME])
        assert slow.ended.done()
        slow.close()
        return broker

    FRAME = '{"type":"comment","text":"' + "长" * 1000 + '"}'
    PUBLISHED = QUEUE_LIMIT_BYTES // len(FRAME) + 5
    broker = run_async(scenario())
    assert broker.sockets_cut_slow == 1
    assert broker.frames_sent == 2 * PUBLISHED  # each frame to both sockets
    assert broker.frames_dropped == PUBLISHED - 1  # all but the one its send waits on


def test_health_of_the_database_redis_and_the_media_store(client, settings) -> None:
    samples = scrape(client)
    assert value(samples, "kaifang_database_up") == 1
    assert 0 < value(samples, "kaifang_database_ping_seconds") < 1
    assert value(samples, "kaifang_database_pool_checked_out") >= 0
    assert value(samples, "kaifang_media_store_up") == 1
    assert all(v == 0 for (name, _), v in samples.items() if name == "kaifang_scrape_errors_total")
    if settings.redis_url:
        assert value(samples, "kaifang_redis_up") == 1
        until(lambda: value(scrape(client), "kaifang_broker_listening") == 1)
    else:
        assert not any(name.startswith("kaifang_redis") for name, _ in samples)


def test_a_redis_that_does_not_answer_shows_down_and_the_scrape_still_answers_at_once(
        settings) -> None:
    broken = settings.model_copy(update={"redis_url": "redis://127.0.0.1:9/0"})
    app = create_app(broken.model_copy(update={"redis_url": None}))
    app.state.settings = broken
    with TestClient(app) as client:
        started = time.monotonic()
        samples = scrape(client)
        took = time.monotonic() - started
    assert value(samples, "kaifang_redis_up") == 0
    assert value(samples, "kaifang_database_up") == 1
    assert took < 3


def test_each_app_counts_its_own_requests(settings) -> None:
    first, second = create_app(settings), create_app(settings)
    with TestClient(first) as one, TestClient(second) as other:
        for _ in range(3):
            one.get("/healthz")
        assert value(scrape(one), "kaifang_http_request_duration_seconds_count",
                     route="/healthz", method="GET", status="2xx") == 3
        assert ("kaifang_http_request_duration_seconds_count",
                (("method", "GET"), ("route", "/healthz"), ("status", "2xx"))) \
            not in scrape(other)


def test_scrapes_run_concurrently_with_requests_and_lock_nothing(client) -> None:
    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            for _ in range(50):
                client.get("/healthz")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=hammer)
    thread.start()
    for _ in range(5):
        scrape(client)
    thread.join()
    assert not errors
