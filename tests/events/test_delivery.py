"""Delivering notifications: the outbox, reminders that follow the session, retries, workers."""

from __future__ import annotations

import email
import email.policy
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from events import notify
from events.delivery import (
    MAX_ATTEMPTS,
    DeliveryError,
    OutboxBackend,
    SmsBackend,
    SmtpBackend,
    UnsentEmailBackend,
    UnsentSmsBackend,
    backend_for,
)
from events.models import OutboxMessage
from events.timeutil import local
from server.app import create_app, serve_app
from server.config import Settings, get_settings
from server.db import get_engine
from server.worker import Job, run_job, run_worker
from tests.helpers import PHONE, deliver, open_session, registered
from tests.sms_gateway import FakeSmsApi, sms_env, with_sms

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings(settings: Settings, sms_api: FakeSmsApi) -> Settings:
    """Texts go to a gateway here: the local SMS API (tests.sms_gateway)."""
    return with_sms(settings, sms_api)


def _starts_at(client: TestClient, event_id: int) -> datetime:
    return datetime.fromisoformat(client.get(f"/api/events/{event_id}").json()["starts_at"])


def outbox(db: Session, **where: Any) -> list[OutboxMessage]:
    db.expire_all()
    query = select(OutboxMessage).order_by(col(OutboxMessage.id))
    for field, value in where.items():
        query = query.where(getattr(OutboxMessage, field) == value)
    return list(db.exec(query))


class Recording:
    """A backend that remembers what it was given (slowly, to widen any race)."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.sent: list[int] = []
        self.delay_s = delay_s
        self.lock = threading.Lock()

    def send(self, message: OutboxMessage) -> None:
        time.sleep(self.delay_s)
        with self.lock:
            assert message.id is not None
            self.sent.append(message.id)


class Failing:
    def send(self, message: OutboxMessage) -> None:
        raise DeliveryError("the gateway is down")


def test_confirmation_is_delivered_into_the_outbox(client, staff, db, settings):
    event_id = open_session(staff, db, capacity=10)
    ticket = registered(client, event_id)
    assert deliver(settings) == 1
    confirmation, reminder = outbox(db, registration_id=ticket["id"])
    assert confirmation.topic == "registration_confirmed"
    assert (confirmation.state, confirmation.attempts, confirmation.error) == ("sent", 1, "")
    assert confirmation.sent_at is not None and ticket["code"] in confirmation.body
    assert confirmation.recipient_masked == "139****5678"
    assert (reminder.topic, reminder.state) == ("reminder", "pending")
    assert deliver(settings) == 0  # nothing goes out twice


def test_a_reminder_goes_out_the_day_before_not_earlier(client, staff, db, settings):
    event_id = open_session(staff, db, capacity=10)
    ticket = registered(client, event_id)
    due = _starts_at(client, event_id) - timedelta(days=1)
    deliver(settings)
    assert deliver(settings, now=due - timedelta(hours=20)) == 0
    [reminder] = outbox(db, registration_id=ticket["id"], topic="reminder")
    assert reminder.state == "pending" and reminder.due_at == due
    assert deliver(settings, now=due + timedelta(minutes=1)) == 1
    [reminder] = outbox(db, registration_id=ticket["id"], topic="reminder")
    assert reminder.state == "sent" and "提醒" in reminder.body


def test_after_a_postponement_only_the_reminder_for_the_new_time_is_sent(
        client, staff, db, settings):
    event_id = open_session(staff, db, capacity=10)
    ticket = registered(client, event_id)
    old_start = _starts_at(client, event_id)
    new_start = old_start + timedelta(days=2)
    editor = staff("admin")
    moved = editor.post(f"/api/events/{event_id}/postpone", json={
        "starts_at": new_start.isoformat(), "ends_at": (new_start + timedelta(hours=2)).isoformat(),
        "reason": "会议室检修"})
    assert moved.status_code == 200, moved.text

    old, new = outbox(db, registration_id=ticket["id"], topic="reminder")
    assert old.state == "void" and new.state == "pending"
    assert new.due_at == new_start - timedelta(days=1)
    deliver(settings)  # the confirmation and the news of the change
    [changed] = outbox(db, registration_id=ticket["id"], topic="event_changed")
    assert changed.state == "sent" and "延期" in changed.body

    assert deliver(settings, now=old_start - timedelta(hours=23)) == 0
    assert deliver(settings, now=new_start - timedelta(hours=23)) == 1
    reminders = outbox(db, registration_id=ticket["id"], topic="reminder")
    assert [m.state for m in reminders] == ["void", "sent"]
    shown = local(new_start)
    assert f"{shown.month}月{shown.day}日 {shown:%H:%M}" in reminders[1].body


def test_moving_back_to_the_first_time_revives_its_reminder_once(client, staff, db, settings):
    event_id = open_session(staff, db, capacity=10)
    ticket = registered(client, event_id)
    start = _starts_at(client, event_id)
    admin = staff("admin")
    for when in (start + timedelta(days=3), start):
        assert admin.post(f"/api/events/{event_id}/postpone", json={
            "starts_at": when.isoformat(), "ends_at": (when + timedelta(hours=2)).isoformat(),
            "reason": "场地调整"}).status_code == 200
    states = {m.due_at: m.state for m in outbox(db, registration_id=ticket["id"],
                                                topic="reminder")}
    assert states == {start - timedelta(days=1): "pending",
                      start + timedelta(days=2): "void"}
    deliver(settings, now=start - timedelta(hours=1))
    sent = [m for m in outbox(db, topic="reminder") if m.state == "sent"]
    assert len(sent) == 1 and sent[0].due_at == start - timedelta(days=1)


def test_a_reminder_that_failed_before_a_move_is_not_retried_for_the_old_time(
        client, staff, db, settings):
    event_id = open_session(staff, db, capacity=10)
    ticket = registered(client, event_id)
    start = _starts_at(client, event_id)
    deliver(settings)
    assert deliver(settings, now=start - timedelta(hours=23), backend=Failing()) == 0
    [failed] = outbox(db, registration_id=ticket["id"], topic="reminder")
    assert failed.state == "failed"
    # Moved by a little: the failed reminder still waits for its retry, keyed to the old time.
    later = start + timedelta(hours=3)
    assert staff("admin").post(f"/api/events/{event_id}/postpone", json={
        "starts_at": later.isoformat(), "ends_at": (later + timedelta(hours=2)).isoformat(),
        "reason": "时间调整"}).status_code == 200
    assert deliver(settings, now=start - timedelta(hours=20)) == 2  # the change, the new one
    reminders = outbox(db, registration_id=ticket["id"], topic="reminder")
    assert [m.state for m in reminders] == ["void", "sent"]
    assert "old time" in reminders[0].error


def test_a_cancelled_registration_gets_no_reminder(client, staff, db, settings):
    event_id = open_session(staff, db, capacity=10)
    ticket = registered(client, event_id)
    assert client.delete(f"/api/registrations/{ticket['manage_token']}").status_code == 200
    start = _starts_at(client, event_id)
    deliver(settings, now=start - timedelta(hours=23))
    [reminder] = outbox(db, registration_id=ticket["id"], topic="reminder")
    assert reminder.state == "void" and reminder.sent_at is None


def test_a_failing_backend_marks_failed_and_retries_later(client, staff, db, settings):
    event_id = open_session(staff, db, capacity=10)
    ticket = registered(client, event_id)
    now = datetime.now(UTC)
    assert deliver(settings, now=now, backend=Failing()) == 0
    [message] = outbox(db, registration_id=ticket["id"], topic="registration_confirmed")
    assert (message.state, message.attempts, message.error) == ("failed", 1, "the gateway is down")
    retry = Recording()
    assert deliver(settings, now=now + timedelta(seconds=30), backend=retry) == 0  # backing off
    assert deliver(settings, now=now + timedelta(seconds=61), backend=retry) == 1
    [message] = outbox(db, registration_id=ticket["id"], topic="registration_confirmed")
    assert (message.state, message.attempts, message.error) == ("sent", 2, "")
    assert retry.sent == [message.id]


def test_after_five_failures_a_message_is_given_up(client, staff, db, settings):
    event_id = open_session(staff, db, capacity=10)
    ticket = registered(client, event_id)
    now = datetime.now(UTC)
    for attempt in range(MAX_ATTEMPTS + 2):
        deliver(settings, now=now + timedelta(hours=attempt), backend=Failing())
    [message] = outbox(db, registration_id=ticket["id"], topic="registration_confirmed")
    assert (message.state, message.attempts) == ("failed", MAX_ATTEMPTS)
    assert deliver(settings, now=now + timedelta(days=2), backend=Recording()) == 0


def test_two_workers_in_parallel_never_send_a_message_twice(client, staff, db, settings):
    event_id = open_session(staff, db, capacity=100)
    for i in range(24):
        registered(client, event_id, phone=f"137{i:08d}")
    backend = Recording(delay_s=0.005)
    start = threading.Barrier(2)
    rounds: list[int] = []

    def worker(_: int) -> int:
        start.wait()
        total = 0
        while sent := deliver(settings, limit=5, backend=backend):
            total += sent
            rounds.append(sent)
        return total

    with ThreadPoolExecutor(max_workers=2) as pool:
        totals = list(pool.map(worker, range(2)))
    assert sorted(backend.sent) == sorted(set(backend.sent))
    assert len(backend.sent) == sum(totals) == 24
    confirmations = outbox(db, topic="registration_confirmed")
    assert {m.state for m in confirmations} == {"sent"}
    assert {m.attempts for m in confirmations} == {1}


class Hanging:
    """A mail server that takes its time: answers only when released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def send(self, message: OutboxMessage) -> None:
        self.entered.set()
        assert self.release.wait(30)


def test_a_hanging_mail_server_does_not_hold_up_registrations(client, staff, db, settings):
    event_id = open_session(staff, db, capacity=100)
    registered(client, event_id, phone="13700000001")
    hanging = Hanging()
    with ThreadPoolExecutor(max_workers=1) as pool:
        round_ = pool.submit(deliver, settings, backend=hanging)
        assert hanging.entered.wait(10)
        started = time.monotonic()
        for i in range(2, 6):  # the send is still in progress all this while
            registered(client, event_id, phone=f"137{i:08d}")
        took = time.monotonic() - started
        hanging.release.set()
        assert round_.result(30) >= 1
    assert took < 2.0, f"registrations waited {took:.1f} s for a mail server"


def test_a_dead_workers_claims_are_sent_after_their_lease(client, staff, db, settings):
    from events.delivery import LEASE, _claim

    event_id = open_session(staff, db, capacity=10)
    registered(client, event_id)
    now = datetime.now(UTC)
    with Session(get_engine(settings.sqlalchemy_url)) as dying:
        assert len(_claim(dying, now, 100)) == 1  # claimed, then the worker is killed
    backend = Recording()
    assert deliver(settings, now=now + timedelta(minutes=1), backend=backend) == 0
    assert deliver(settings, now=now + LEASE + timedelta(seconds=1), backend=backend) == 1
    confirmation, = outbox(db, topic="registration_confirmed")
    assert (confirmation.state, confirmation.attempts, confirmation.claimed_until) == \
        ("sent", 1, None)


def test_the_log_never_holds_the_phone_number(client, staff, db, settings, caplog):
    caplog.set_level(logging.DEBUG)
    event_id = open_session(staff, db, capacity=10)
    registered(client, event_id)
    now = datetime.now(UTC)
    deliver(settings, now=now, backend=Failing())
    deliver(settings, now=now + timedelta(minutes=5))

    def duplicate(session: Session, _: Settings) -> None:
        # A database error quotes its parameters, the number among them.
        for _copy in range(2):
            session.add(OutboxMessage(channel="sms", recipient=PHONE, body=f"致 {PHONE}",
                                      topic="test", dedupe_key="same-key"))

    assert run_job(Job("duplicate", 0, duplicate), settings) == "conflict"
    assert run_job(Job("boom", 0, lambda *_: int(f"号码 {PHONE}")), settings) == "failed"
    assert "failed, attempt 1" in caplog.text and "sent" in caplog.text
    assert "IntegrityError" in caplog.text and "ValueError" in caplog.text
    assert PHONE not in caplog.text and PHONE[-4:] not in caplog.text


def _queue_mail(db: Session) -> OutboxMessage:
    message = notify.enqueue(db, topic="unit_notice", recipient="office@xicheng.example",
                             channel="email", subject="报名名单已更新",
                             body="您好：区教委招生政策会议开放的报名名单已更新。")
    db.commit()
    assert message is not None
    return message


def test_email_goes_out_through_smtp_when_configured(db, settings, smtp_sink):
    sink = smtp_sink()
    configured = settings.model_copy(update={"smtp_url": sink.url, "mail_from": "kf@xicheng.gov"})
    message = _queue_mail(db)
    assert deliver(configured) == 1
    [raw] = sink.received
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    assert mail["Subject"] == "报名名单已更新" and mail["From"] == "kf@xicheng.gov"
    assert "报名名单已更新" in mail.get_content()
    assert outbox(db, id=message.id)[0].state == "sent"


def test_a_refused_or_unreachable_mail_server_fails_without_naming_the_recipient(
        db, settings, smtp_sink):
    refusing = settings.model_copy(update={"smtp_url": smtp_sink(refuse_recipients=True).url})
    message = _queue_mail(db)
    assert deliver(refusing) == 0
    [failed] = outbox(db, id=message.id)
    assert failed.state == "failed" and "refused the recipient" in failed.error
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    unreachable = settings.model_copy(update={"smtp_url": f"smtp://127.0.0.1:{closed_port}"})
    assert deliver(unreachable, now=datetime.now(UTC) + timedelta(minutes=2)) == 0
    [failed] = outbox(db, id=message.id)
    assert failed.attempts == 2 and "could not be reached" in failed.error
    assert "xicheng" not in failed.error


def test_backends_by_channel_and_configuration(settings):
    assert isinstance(backend_for(settings, "sms"), SmsBackend)
    assert isinstance(backend_for(settings, "email"), UnsentEmailBackend)
    assert isinstance(backend_for(settings, "console"), OutboxBackend)
    smtp = settings.model_copy(update={"smtp_url": "smtp+starttls://u%40x:p@mail.example:2525"})
    backend = backend_for(smtp, "email")
    assert isinstance(backend, SmtpBackend)
    assert (backend.host, backend.port, backend.username) == ("mail.example", 2525, "u@x")
    with pytest.raises(ValueError):
        Settings(smtp_url="http://mail.example")


def _worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "kaifang-worker" and t.is_alive()]


def _wait_for(condition: Any, timeout_s: float = 15) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_the_embedded_worker_runs_only_when_asked(app, staff, db, settings):
    event_id = open_session(staff, db, capacity=10)
    assert _worker_threads() == []  # the tests' app (whose lifespan has run) has none
    quick = settings.model_copy(update={"worker_interval_s": 0.05})
    with TestClient(create_app(quick, start_worker=True)) as served:
        assert len(_worker_threads()) == 1
        ticket = registered(served, event_id)
        assert _wait_for(lambda: outbox(db, registration_id=ticket["id"])[0].state == "sent")
    assert _wait_for(lambda: _worker_threads() == [], 5)


def test_serve_app_follows_the_embedded_worker_setting(settings, monkeypatch):
    monkeypatch.setenv("KAIFANG_DATA_DIR", str(settings.data_dir))
    if settings.database_url:
        monkeypatch.setenv("KAIFANG_DATABASE_URL", settings.database_url)
    try:
        for value, threads in (("false", 0), ("true", 1)):
            monkeypatch.setenv("KAIFANG_EMBEDDED_WORKER", value)
            get_settings.cache_clear()
            with TestClient(serve_app()):
                assert len(_worker_threads()) == threads
    finally:
        get_settings.cache_clear()


def test_kaifang_worker_delivers_until_sigterm(client, staff, db, settings):
    event_id = open_session(staff, db, capacity=10)
    ticket = registered(client, event_id)
    env = {**os.environ, "KAIFANG_DATA_DIR": str(settings.data_dir),
           "KAIFANG_SECRET_KEY": "test-secret-key-of-at-least-32-bytes",
           "KAIFANG_WORKER_INTERVAL_S": "0.1", **sms_env(settings)}
    env.pop("KAIFANG_DATABASE_URL", None)
    if settings.database_url:
        env["KAIFANG_DATABASE_URL"] = settings.database_url
    worker = subprocess.Popen([sys.executable, "-m", "server.cli", "worker"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        sent = _wait_for(lambda: outbox(db, registration_id=ticket["id"])[0].state == "sent", 30)
    finally:
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=30)
    assert sent, err
    assert worker.returncode == 0, err
    assert "worker stopped" in out
    assert PHONE not in out + err


class DiesOnThird(Recording):
    """Hands two messages outside, then the worker is killed in the middle of the third."""

    def send(self, message: OutboxMessage) -> None:
        if len(self.sent) == 2:
            raise KeyboardInterrupt  # not an Exception: nothing in the round catches it
        super().send(message)


def test_each_message_handed_outside_is_recorded_before_the_next_goes(
        client, staff, db, settings):
    event_id = open_session(staff, db, capacity=10)
    for n in range(4):
        registered(client, event_id, phone=f"1391234560{n}")
    backend = DiesOnThird()
    with pytest.raises(KeyboardInterrupt):
        deliver(settings, backend=backend)
    states = {m.id: m.state for m in outbox(db, topic="registration_confirmed")}
    assert [states[message_id] for message_id in backend.sent] == ["sent", "sent"]
    assert sorted(states.values()) == ["sending", "sending", "sent", "sent"]


def test_results_that_leave_nothing_outside_take_the_write_lock_once_per_round(
        client, staff, db, settings, monkeypatch):
    """Beside a registration burst, a round of unsent texts (no gateway) does not queue for
    the database's one writer once per message."""
    import events.delivery as delivery

    event_id = open_session(staff, db, capacity=10)
    for n in range(6):
        registered(client, event_id, phone=f"1391234561{n}")
    taken: list[int] = []
    real = delivery.write_lock
    monkeypatch.setattr(delivery, "write_lock", lambda session: (taken.append(1), real(session)))
    assert deliver(settings, backend=UnsentSmsBackend()) == 0
    assert [m.state for m in outbox(db, topic="registration_confirmed")] == ["unsent"] * 6
    assert len(taken) == 2  # the claim, then the six results together


def test_mail_without_a_mail_server_is_unsent_and_the_outbox_says_why(db, settings, staff):
    """Nothing left the machine: the office must not read 已发送 for a unit's reminder."""
    message = _queue_mail(db)
    assert deliver(settings) == 0
    assert outbox(db, id=message.id)[0].state == "unsent"
    page = staff("admin").get("/console/outbox").text
    assert "未发送（未配置邮件服务器）" in page


def test_an_hourly_job_that_met_another_workers_same_row_runs_again_next_round(settings):
    """Two workers reminding the same unit at once: the one that lost the race does not wait
    an hour (its other reminders were rolled back with the duplicate), it runs next round."""
    runs: list[int] = []
    stop = threading.Event()

    def remind(session: Session, _: Settings) -> None:
        runs.append(len(runs))
        if len(runs) == 1:  # the other worker's row is already there
            for _copy in range(2):
                session.add(OutboxMessage(channel="console", recipient="unit:x", body="提醒",
                                          topic="test", dedupe_key="quota:x"))
        elif len(runs) == 2:
            stop.set()

    worker = threading.Thread(target=run_worker, args=(settings, stop, 0.05),
                              kwargs={"jobs": [Job("reminders", 3600, remind)]})
    worker.start()
    worker.join(10)
    assert not worker.is_alive() and runs == [0, 1]
