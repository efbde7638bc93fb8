"""A webcast's live viewers as evidence (streaming.audience): the most watching at once and the
distinct viewers while the session is live, kept in its LiveStream row and shown with its
close-out and in the compliance drill-down."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from sqlmodel import Session, select
from websockets.sync.client import connect

from streaming.models import LiveStream
from tests.streaming.live import TIMEOUT, _frame, _live_session


def _watch(live_server: str, event_id: int, watch: str) -> Any:
    """A page that only watches (no token), with its browser's random id, as live.js opens it."""
    ws = connect(live_server.replace("http://", "ws://") + f"/ws/events/{event_id}?watch={watch}",
                 open_timeout=TIMEOUT)
    assert _frame(ws)["type"] == "hello"  # in the room (counted before `hello` is sent)
    return ws


def _watching(app: FastAPI, event_id: int, count: int) -> None:
    deadline = time.monotonic() + TIMEOUT
    while app.state.broker.viewers(event_id) != count:
        assert time.monotonic() < deadline, "the room did not see the socket leave"
        time.sleep(0.02)


def _evidence(db: Session, event_id: int) -> tuple[int, int] | None:
    db.expire_all()
    row = db.exec(select(LiveStream).where(LiveStream.event_id == event_id)).first()
    return None if row is None else (row.peak_viewers, row.total_viewers)


def test_peak_and_distinct_viewers_while_live(app: FastAPI, live_server: str, staff: Any,
                                              db: Session, ticking: Any) -> None:
    admin = staff("admin")
    event_id = _live_session(staff, db, live=False)
    early = _watch(live_server, event_id, "early-page-0001")  # before it goes live: not yet
    app.state.audience.flush()
    assert _evidence(db, event_id) is None
    early.close()
    _watching(app, event_id, 0)
    assert admin.post(f"/api/events/{event_id}/status", json={"status": "live"}).status_code \
        == 200

    first, second = (_watch(live_server, event_id, f"page-{n}-0123456789") for n in (1, 2))
    app.state.audience.flush()
    assert _evidence(db, event_id) == (2, 2)

    first.close()
    _watching(app, event_id, 1)
    third = _watch(live_server, event_id, "page-3-0123456789")
    again = _watch(live_server, event_id, "page-2-0123456789")  # the same browser, a 2nd tab
    again.close()
    app.state.audience.flush()
    assert _evidence(db, event_id) == (2, 3)

    ticking.set(datetime.now(UTC) + timedelta(minutes=15))  # past its start: it may end
    answer = admin.post(f"/api/events/{event_id}/status", json={"status": "ended"})
    assert answer.status_code == 200, answer.text
    late = _watch(live_server, event_id, "page-4-0123456789")  # after it ended: not counted
    app.state.audience.flush()
    assert _evidence(db, event_id) == (2, 3)
    for ws in (second, third, late):
        ws.close()

    page = admin.get(f"/console/events/{event_id}").text  # the close-out form
    assert '<dt>直播观看峰值</dt><dd>2</dd>' in page and '<dt>累计观看人数</dt><dd>3</dd>' in page
    closed = admin.post(f"/api/events/{event_id}/close", json={"minutes": "会议纪要：招生政策。"})
    assert closed.status_code == 200, closed.text
    year = (datetime.now(UTC) + timedelta(hours=8)).year  # Beijing's year of the session
    drill = admin.get(f"/console/compliance/units/education?year={year}").text
    assert "直播观看峰值 2 · 累计观看人数 3" in drill


def test_off_air_writes_the_count_at_once_and_one_address_cannot_invent_viewers(
        app: FastAPI, live_server: str, staff: Any, db: Session, ticking: Any) -> None:
    admin = staff("admin")
    event_id = _live_session(staff, db)
    pages = [_watch(live_server, event_id, f"made-up-{n:04d}") for n in range(3)]
    bare = connect(live_server.replace("http://", "ws://") + f"/ws/events/{event_id}",
                   open_timeout=TIMEOUT)  # no page id: counted by its address
    assert _frame(bare)["type"] == "hello"
    ticking.set(datetime.now(UTC) + timedelta(minutes=15))
    assert admin.post(f"/api/events/{event_id}/status", json={"status": "ended"}).status_code \
        == 200  # no flush: the status change wrote it
    assert _evidence(db, event_id) == (4, 4)
    for ws in [*pages, bare]:
        ws.close()
