"""The RTMP gate against a hostile or careless client: a session called off while it
publishes, a slowloris that keeps within the deadlines, and what a reconnect must find."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from server.config import Settings
from streaming import ingest, rtmp
from tests.streaming.rtmp_helpers import (
    Gate,
    SinkHub,
    finish,
    new_key,
    publisher,
    webcast_session,
)
from tests.streaming.test_rtmp import last_error, wait_for


@pytest.fixture
def hub(tmp_path: Path) -> SinkHub:
    return SinkHub(tmp_path)


@pytest.fixture
def gate(settings: Settings, hub: SinkHub) -> Iterator[Gate]:
    opened = Gate(settings, hub)
    yield opened
    opened.close()


@pytest.mark.parametrize("status", ["cancelled", "ended"])
def test_a_session_called_off_or_ended_cuts_its_publisher_off(
        staff: Any, db: Session, gate: Gate, hub: SinkHub, clock: Any, status: str) -> None:
    admin, event_id = webcast_session(staff, db)
    key = new_key(admin, event_id)
    process = publisher(gate.url(key), 20)
    try:
        wait_for(lambda: len(hub.feeds) == 1 and hub.feeds[0].written > 0)
        if status == "cancelled":
            body = {"status": "cancelled", "reason": "场地维修"}
        else:
            assert admin.post(f"/api/events/{event_id}/status",
                              json={"status": "live"}).status_code == 200
            clock.advance(timedelta(minutes=11))  # past its start: it may end
            body = {"status": "ended"}
        changed = admin.post(f"/api/events/{event_id}/status", json=body)
        assert changed.status_code == 200, changed.text
        assert hub.feeds[0].closed.wait(rtmp.KEY_RECHECK_S + 3)
        assert hub.feeds[0].error == ingest.SESSION_CLOSED
        code, _ = finish(process)
        assert code != 0
        assert last_error(db, event_id) == ingest.SESSION_CLOSED
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_slowloris_from_one_address_does_not_lock_publishers_out(
        staff: Any, db: Session, gate: Gate, hub: SinkHub) -> None:
    """Connections that never publish, from one address, as many as the gate's whole cap
    and renewed within its deadline: an encoder elsewhere still publishes."""
    admin, event_id = webcast_session(staff, db)
    key = new_key(admin, event_id)
    idle: list[socket.socket] = []
    try:
        for _ in range(rtmp.MAX_PENDING + 4):
            sock = socket.create_connection(("127.0.0.1", gate.port), timeout=5,
                                            source_address=("127.0.0.2", 0))
            sock.sendall(b"\x03")  # the first byte, and nothing more
            idle.append(sock)
        time.sleep(0.3)
        code, errors = finish(publisher(gate.url(key), 1))
        assert code == 0, errors
        assert len(hub.feeds) == 1 and hub.feeds[0].written > 1000
    finally:
        for sock in idle:
            sock.close()
