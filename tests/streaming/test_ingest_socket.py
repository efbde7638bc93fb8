"""The browser ingest socket over real websockets: who may open it (staff who run the session,
from our own pages), what it tells the page (accepted, refused, bytes, chunks late or dropped),
its own frame limit, and the room's sockets keeping theirs (16 KiB) under the server's larger
one. The hub here records what it is fed: the encoder behind it has its own tests."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from server.cli import WS_MAX_BYTES
from streaming import ingest_socket
from tests.conftest import _free_port, assign_hosts
from tests.streaming.live import TIMEOUT, _join, _live_session, _socket
from tests.streaming.recording_hub import RecordingHub


def _ingest(live_server: str, event_id: Any, staff_client: Any = None,
            origin: str | None = "") -> Any:
    url = live_server.replace("http://", "ws://") + f"/ws/events/{event_id}/ingest"
    headers = {}
    if staff_client is not None:
        headers["Cookie"] = f"kaifang_session={staff_client.cookies.get('kaifang_session', '')}"
    return connect(url, open_timeout=TIMEOUT, origin=live_server if origin == "" else origin,
                   additional_headers=headers, max_size=None)


def _json(ws: Any, kind: str | None = None) -> dict[str, Any]:
    while True:
        frame = ws.recv(timeout=TIMEOUT)
        assert isinstance(frame, str), frame
        found = dict(json.loads(frame))
        if kind is None or found["type"] == kind:
            return found


def _closed(ws: Any) -> Any:
    with pytest.raises(ConnectionClosed) as cut:
        while True:
            ws.recv(timeout=TIMEOUT)
    assert cut.value.rcvd is not None
    return cut.value.rcvd


def _until(check: Any, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_host_of_the_session_sends_chunks_that_reach_the_hub_in_order(
        app, staff, db, live_server):
    event_id = _live_session(staff, db, live=False)
    host = staff("host")
    assign_hosts(db, event_id)
    app.state.live_hub = hub = RecordingHub()
    chunks = [b"\x1a\x45\xdf\xa3" + bytes(1000), bytes(range(256)) * 400, b"\x1f\x43\xb6\x75"]
    with _ingest(live_server, event_id, host) as ws:
        assert _json(ws)["type"] == "accepted"
        for chunk in chunks:
            ws.send(chunk)
        stats = _json(ws, "stats")
        while stats["chunks"] < 3:
            stats = _json(ws, "stats")
        assert (stats["bytes"], stats["late"], stats["dropped"]) == \
            (sum(map(len, chunks)), 0, 0)
        assert stats["state"] == "idle"  # no LiveStream row yet: the recording hub writes none
        ws.send(json.dumps({"type": "stop"}))
        assert _closed(ws).code == 1000
    (opened, source, container, feed), = hub.feeds
    assert (opened, source, container) == (event_id, "browser", "webm")
    _until(lambda: feed.closed is not None)
    assert feed.chunks == chunks and feed.closed == ""  # a stop, not a drop


def test_the_socket_is_for_staff_who_run_the_session_from_our_own_pages(
        app, client, staff, db, live_server, caplog):
    caplog.set_level(logging.INFO, "kaifang.ingest")
    event_id = _live_session(staff, db, live=False)
    other_id = _live_session(staff, db, live=False)
    host = staff("host")
    assign_hosts(db, other_id)  # a host of another session
    outsider = staff("editor", "health")
    app.state.live_hub = hub = RecordingHub()
    for who, code in ((client, 4401), (outsider, 4403), (host, 4403)):
        with _ingest(live_server, event_id, who) as ws:
            assert _closed(ws).code == code
    with _ingest(live_server, 999999, host) as ws:
        assert _closed(ws).code == 4404
    editor = staff("editor", "education")  # the session's own unit may
    with _ingest(live_server, event_id, editor, origin="https://evil.example") as ws:
        cut = _closed(ws)
        assert (cut.code, cut.reason) == (4403, "origin")
    assert hub.feeds == []  # none of them came near the hub
    refusals = [r.getMessage() for r in caplog.records if "ingest refused" in r.getMessage()]
    assert len(refusals) == 5
    assert any("origin" in line for line in refusals)
    assert sum("forbidden" in line for line in refusals) == 2
    with _ingest(live_server, event_id, editor) as ws:
        assert _json(ws)["type"] == "accepted"


def test_the_hubs_refusal_reaches_the_page_in_chinese(app, staff, db, live_server, caplog):
    event_id = _live_session(staff, db, live=False)
    editor = staff("editor", "education")
    app.state.live_hub = RecordingHub(busy=True)
    with _ingest(live_server, event_id, editor) as ws:
        refused = _json(ws)
        assert (refused["type"], refused["code"]) == ("refused", "busy")
        assert refused["message"] == "已有推流端在推流，请先停止它。"
        assert _closed(ws).code == 4409
    app.state.live_hub = None  # no hub runs at all: refused, not a crash
    with _ingest(live_server, event_id, editor) as ws:
        refused = _json(ws)
        assert (refused["type"], refused["code"]) == ("refused", "unavailable")
        assert _closed(ws).code == 1013
    app.state.live_hub = RecordingHub()  # the lifespan stops the hub it finds
    assert any("busy" in r.getMessage() for r in caplog.records)


def test_a_frame_over_the_ingest_limit_cuts_the_publisher_off(app, staff, db, live_server):
    event_id = _live_session(staff, db, live=False)
    editor = staff("editor", "education")
    app.state.live_hub = hub = RecordingHub()
    with _ingest(live_server, event_id, editor) as ws:
        assert _json(ws)["type"] == "accepted"
        ws.send(bytes(1000))
        ws.send(bytes(ingest_socket.MAX_FRAME_BYTES + 1))
        assert _json(ws, "error")["code"] == "too_big"
        assert _closed(ws).code == 1009
    feed = hub.feeds[0][3]
    _until(lambda: feed.closed is not None)
    assert feed.chunks == [bytes(1000)] and feed.closed  # cut off, with why


def test_an_encoder_far_behind_drops_chunks_but_never_the_first(app, staff, db, live_server,
                                                                monkeypatch):
    monkeypatch.setattr(ingest_socket, "QUEUE_CHUNKS", 2)
    monkeypatch.setattr(ingest_socket, "LATE_S", 0.1)
    event_id = _live_session(staff, db, live=False)
    editor = staff("editor", "education")
    app.state.live_hub = hub = RecordingHub(delay_s=0.3)
    with _ingest(live_server, event_id, editor) as ws:
        assert _json(ws)["type"] == "accepted"
        for n in range(12):
            ws.send(bytes([n]) * 100)
        stats = _json(ws, "stats")
        while stats["chunks"] < 12 or stats["late"] == 0:
            stats = _json(ws, "stats")
        assert stats["dropped"] > 0 and stats["bytes"] == 1200
    feed = hub.feeds[0][3]
    _until(lambda: feed.closed is not None)
    assert feed.chunks[0] == bytes([0]) * 100  # the header chunk is never the one dropped
    assert len(feed.chunks) == 12 - stats["dropped"]


@contextlib.contextmanager
def _served_as_in_production(app: Any) -> Iterator[str]:
    """The app under uvicorn with the server's own frame limit (server.cli WS_MAX_BYTES)."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", ws_max_size=WS_MAX_BYTES))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    _until(lambda: server.started, timeout=10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_the_room_keeps_its_own_16_kib_limit_under_the_servers_larger_one(app, client, staff,
                                                                          db):
    assert WS_MAX_BYTES >= ingest_socket.MAX_FRAME_BYTES
    event_id = _live_session(staff, db)
    viewer = _join(client, event_id, "居民")
    with _served_as_in_production(app) as base, \
            _socket(base, event_id, viewer["viewer_token"]) as ws:
        assert json.loads(ws.recv(timeout=TIMEOUT))["type"] == "hello"
        # 15 KiB: read, and answered (the room's own rules refuse it), not cut off.
        ws.send(json.dumps({"type": "comment", "text": "长" * 5000, "client_id": "a"},
                           ensure_ascii=False))
        answer = json.loads(ws.recv(timeout=TIMEOUT))
        while answer["type"] != "error":
            answer = json.loads(ws.recv(timeout=TIMEOUT))
        assert answer["code"] in ("too_long", "bad_message")
        ws.send(json.dumps({"type": "comment", "text": "x" * 17 * 1024, "client_id": "b"}))
        assert _closed(ws).code == 1009


# The gate and the socket are protocol code: their database part runs on PostgreSQL in
# test_ingest_api.py and the hub's tests (tests/conftest.py).
pytestmark = pytest.mark.sqlite_pass_only
