"""A session's ingest key over HTTP: shown once, only its hash kept, rotated, revoked, given only
to those who run the session, and never written to the audit log or a log line."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, select

from events.models import AuditEntry
from server.config import Settings
from streaming import ingest
from streaming.models import LiveStream
from streaming.room import VIEWER_PURPOSE
from tests.conftest import assign_hosts
from tests.streaming.rtmp_helpers import new_key, webcast_session


def _works(db: Session, key: str) -> bool:
    try:
        ingest.publisher_of(db, key)
    except ingest.KeyRefused:
        return False
    return True


def _stream(db: Session, event_id: int) -> LiveStream:
    db.expire_all()
    return db.exec(select(LiveStream).where(LiveStream.event_id == event_id)).one()


def test_the_key_is_shown_once_and_only_its_hash_is_kept(staff: Any, db: Session,
                                                         settings: Settings) -> None:
    admin, event_id = webcast_session(staff, db)
    answer = admin.post(f"/api/events/{event_id}/ingest")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert {"rtmp_url", "stream_key", "expires_at"} <= set(body)
    assert "no-store" in answer.headers["cache-control"]
    key = body["stream_key"]
    assert len(key) >= 22 and key.replace("-", "").replace("_", "").isalnum()  # ≥ 128 bits
    expires = datetime.fromisoformat(body["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(hours=48))) < timedelta(minutes=1)
    assert body["rtmp_url"] == ingest.rtmp_url(settings)

    stream = _stream(db, event_id)
    assert stream.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in repr(stream.model_dump())

    # Staff read whether a key is set, never the key.
    state = admin.get(f"/api/events/{event_id}/ingest")
    assert state.status_code == 200
    assert state.json()["active"] is True and key not in state.text
    assert datetime.fromisoformat(state.json()["expires_at"]) == expires


def test_the_rtmp_address_comes_from_the_settings() -> None:
    public = Settings(public_url="https://kaifang.xicheng.gov.cn", rtmp_port=1935)
    assert ingest.rtmp_url(public) == "rtmp://kaifang.xicheng.gov.cn:1935/live"
    named = Settings(public_url="https://kaifang.xicheng.gov.cn", rtmp_port=1935,
                     rtmp_public_url="rtmp://ingest.xicheng.gov.cn/live/")
    assert ingest.rtmp_url(named) == "rtmp://ingest.xicheng.gov.cn/live"


def test_a_second_call_rotates_the_key_and_the_old_one_stops_at_once(staff: Any,
                                                                     db: Session) -> None:
    admin, event_id = webcast_session(staff, db)
    old = new_key(admin, event_id)
    assert ingest.publisher_of(db, old).event_id == event_id
    new = new_key(admin, event_id)
    assert new != old
    db.expire_all()
    with pytest.raises(ingest.KeyRefused) as refused:
        ingest.publisher_of(db, old)
    assert refused.value.code == "wrong_key"
    assert ingest.publisher_of(db, new).event_id == event_id
    # An encoder's "?query" after the key is no part of it.
    assert ingest.publisher_of(db, new + "?vhost=x").event_id == event_id


def test_delete_revokes_the_key(staff: Any, db: Session) -> None:
    admin, event_id = webcast_session(staff, db)
    assert admin.delete(f"/api/events/{event_id}/ingest").status_code == 404
    key = new_key(admin, event_id)
    assert admin.delete(f"/api/events/{event_id}/ingest").status_code == 204
    db.expire_all()
    with pytest.raises(ingest.KeyRefused):
        ingest.publisher_of(db, key)
    again = admin.delete(f"/api/events/{event_id}/ingest")
    assert again.status_code == 404 and again.json()["error"] == "no_ingest_key"
    state = admin.get(f"/api/events/{event_id}/ingest").json()
    assert state["active"] is False and state["expires_at"] is None


def test_an_expired_key_opens_nothing(staff: Any, db: Session, clock: Any) -> None:
    admin, event_id = webcast_session(staff, db)
    key = new_key(admin, event_id)
    clock.advance(timedelta(hours=48, seconds=1))
    with pytest.raises(ingest.KeyRefused) as refused:
        ingest.publisher_of(db, key)
    assert refused.value.code == "expired_key" and refused.value.event_id == event_id
    assert admin.get(f"/api/events/{event_id}/ingest").json()["active"] is False


def test_only_those_who_run_the_session_get_a_key(staff: Any, db: Session,
                                                   client: Any) -> None:
    _, event_id = webcast_session(staff, db)
    own_editor = staff("editor", "education")
    other_editor = staff("editor", "civil-affairs")
    host = staff("host")
    assert client.post(f"/api/events/{event_id}/ingest").status_code == 401
    assert client.get(f"/api/events/{event_id}/ingest").status_code == 401
    assert other_editor.post(f"/api/events/{event_id}/ingest").status_code == 403
    assert other_editor.get(f"/api/events/{event_id}/ingest").status_code == 403
    assert host.post(f"/api/events/{event_id}/ingest").status_code == 403  # not assigned
    assert own_editor.post(f"/api/events/{event_id}/ingest").status_code == 201
    assign_hosts(db, event_id)
    assert host.post(f"/api/events/{event_id}/ingest").status_code == 201
    assert host.delete(f"/api/events/{event_id}/ingest").status_code == 204
    assert own_editor.post("/api/events/999999/ingest").status_code == 404


def test_a_session_over_or_called_off_gets_no_key(staff: Any, db: Session) -> None:
    admin, event_id = webcast_session(staff, db)
    key = new_key(admin, event_id)
    cancelled = admin.post(f"/api/events/{event_id}/status",
                           json={"status": "cancelled", "reason": "场地维修"})
    assert cancelled.status_code == 200, cancelled.text
    answer = admin.post(f"/api/events/{event_id}/ingest")
    assert answer.status_code == 409 and answer.json()["error"] == "event_closed"
    db.expire_all()
    with pytest.raises(ingest.KeyRefused) as refused:  # the key it had opens nothing now
        ingest.publisher_of(db, key)
    assert refused.value.code == "event_closed"


def test_no_key_in_the_audit_log_or_a_log_line(staff: Any, db: Session,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    admin, event_id = webcast_session(staff, db)
    keys = [new_key(admin, event_id), new_key(admin, event_id)]
    assert admin.delete(f"/api/events/{event_id}/ingest").status_code == 204
    entries = db.exec(select(AuditEntry).where(AuditEntry.entity_id == event_id,
                                               AuditEntry.action.startswith("ingest."))
                     .order_by(AuditEntry.id)).all()  # PostgreSQL keeps no order unasked
    assert [entry.action for entry in entries] == ["ingest.issue", "ingest.rotate",
                                                   "ingest.revoke"]
    written = " ".join(entry.changes for entry in entries) + caplog.text
    for key in keys:
        assert key not in written and key[:8] not in written
        assert hashlib.sha256(key.encode()).hexdigest() not in written


def test_with_rtmp_off_the_key_is_issued_and_the_answer_says_ingest_is_off(
        staff: Any, db: Session, app: Any) -> None:
    """rtmp_port 0: no gate listens, so `rtmp_url` names no server an encoder could reach;
    `rtmp_enabled` says so (the contract's fields stay as they are)."""
    admin, event_id = webcast_session(staff, db)
    assert app.state.settings.rtmp_port == 0
    issued = admin.post(f"/api/events/{event_id}/ingest").json()
    assert issued["rtmp_enabled"] is False and issued["stream_key"]
    assert admin.get(f"/api/events/{event_id}/ingest").json()["rtmp_enabled"] is False
    app.state.settings = app.state.settings.model_copy(update={"rtmp_port": 1935})
    issued = admin.post(f"/api/events/{event_id}/ingest").json()
    assert issued["rtmp_enabled"] is True and issued["rtmp_url"].endswith(":1935/live")
    assert admin.get(f"/api/events/{event_id}/ingest").json()["rtmp_enabled"] is True


def test_no_key_for_a_viewer_a_forged_session_or_a_request_without_csrf(
        staff: Any, db: Session, client: Any, app: Any) -> None:
    admin, event_id = webcast_session(staff, db)
    url = f"/api/events/{event_id}/ingest"
    viewer = app.state.signer.dumps(VIEWER_PURPOSE, {"v": 1, "e": event_id})
    for cookies in ({"kaifang_viewer": viewer}, {"kaifang_session": viewer},
                    {"kaifang_session": "eyJ1aWQiOjF9.forged.signature"}):
        client.cookies.clear()
        for name, value in cookies.items():
            client.cookies.set(name, value)
        assert client.post(url).status_code == 401
        assert client.get(url).status_code == 401
    csrf = admin.headers.pop("X-CSRF-Token")
    assert admin.post(url).status_code == 403 and admin.delete(url).status_code == 403
    admin.headers["X-CSRF-Token"] = csrf
    assert admin.post(url).status_code == 201


def test_two_issues_at_once_both_answer_and_the_last_key_works(
        staff: Any, db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """A double click on "create": both requests read "no key yet" at the same moment."""
    admin, event_id = webcast_session(staff, db)
    both_read = threading.Barrier(2)
    stream_of = ingest._stream_of

    def slow_stream_of(session: Session, event: int) -> LiveStream | None:
        with contextlib.suppress(threading.BrokenBarrierError):
            both_read.wait(timeout=1)  # (only when both got this far at once)
        return stream_of(session, event)
    monkeypatch.setattr(ingest, "_stream_of", slow_stream_of)
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: admin.post(f"/api/events/{event_id}/ingest"),
                                range(2)))
    assert [answer.status_code for answer in answers] == [201, 201], answers[0].text
    monkeypatch.setattr(ingest, "_stream_of", stream_of)
    keys = [answer.json()["stream_key"] for answer in answers]
    db.expire_all()
    working = [key for key in keys if _works(db, key)]
    assert len(working) == 1
