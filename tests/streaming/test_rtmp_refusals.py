"""Bad input on the RTMP port: noise, an HTTP request, a silent client, too many at once, a
stream far above the bitrate cap or the picture size, a key revoked mid-stream. Each is closed
or cut off with a log line (and the console's message), and the gate goes on taking publishers."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from server.app import create_app
from server.config import Settings
from streaming import amf0, ingest_limits, rtmp
from streaming.live_hub import IngestRefused
from streaming.rtmp_chunks import AMF0_COMMAND, Message, chunked
from tests.conftest import _free_port
from tests.streaming.rtmp_helpers import (
    Gate,
    SinkHub,
    ffprobe,
    finish,
    new_key,
    publisher,
    webcast_session,
)
from tests.streaming.test_rtmp import last_error, wait_for

DEADLINE_S = 2.0


@pytest.fixture
def hub(tmp_path: Path) -> SinkHub:
    return SinkHub(tmp_path)


def _gate(settings: Settings, hub: SinkHub, **changes: Any) -> Gate:
    return Gate(settings.model_copy(update=changes), hub, publish_deadline_s=DEADLINE_S,
                max_pending=4)


@pytest.fixture
def gate(settings: Settings, hub: SinkHub) -> Iterator[Gate]:
    opened = _gate(settings, hub)
    yield opened
    opened.close()


def _closed_by_server(sock: socket.socket, timeout: float = DEADLINE_S + 3) -> bool:
    """Reads until the server closes the connection (True) or the timeout (False)."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return False


def _still_takes_a_publisher(gate: Gate, hub: SinkHub, key: str) -> None:
    before = len(hub.feeds)
    code, errors = finish(publisher(gate.url(key), 1))
    assert code == 0, errors
    assert len(hub.feeds) == before + 1 and hub.feeds[-1].written > 1000


@pytest.mark.parametrize("noise", [
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    os.urandom(5000),
    b"\x03" + os.urandom(1536 * 2 + 4096),  # a handshake of the right version, then noise
    b"\x03" + bytes(1536 * 2) + b"\x03\x00\x00\x00\xff\xff\xff\x14\x00\x00\x00\x00",  # 16 MiB
    b"\x03",  # and nothing more: the deadline closes it
])
def test_noise_on_the_port_is_closed_and_the_gate_goes_on(
        staff: Any, db: Session, gate: Gate, hub: SinkHub, noise: bytes,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    admin, event_id = webcast_session(staff, db)
    key = new_key(admin, event_id)
    with socket.create_connection(("127.0.0.1", gate.port), timeout=5) as sock:
        with contextlib.suppress(ConnectionError):  # closed while we still send: as good
            sock.sendall(noise)
        assert _closed_by_server(sock)
    assert hub.feeds == []
    assert "RTMP connection closed" in caplog.text
    _still_takes_a_publisher(gate, hub, key)


def test_too_many_connections_not_publishing_are_turned_away(
        staff: Any, db: Session, gate: Gate, hub: SinkHub,
        caplog: pytest.LogCaptureFixture) -> None:
    admin, event_id = webcast_session(staff, db)
    key = new_key(admin, event_id)
    idle = [socket.create_connection(("127.0.0.1", gate.port), timeout=5) for _ in range(4)]
    time.sleep(0.3)
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", gate.port), timeout=5) as extra:
            extra.settimeout(1)
            assert extra.recv(10) == b""  # closed at once, long before the deadline
    assert caplog.text.count("RTMP connections refused") == 1  # a flood is one line
    for sock in idle:
        sock.close()
    time.sleep(0.3)
    _still_takes_a_publisher(gate, hub, key)


def test_a_stream_above_the_bitrate_cap_is_cut_off(staff: Any, db: Session, settings: Settings,
                                                   hub: SinkHub) -> None:
    admin, event_id = webcast_session(staff, db)
    key = new_key(admin, event_id)
    gate = _gate(settings, hub, max_ingest_kbps=100)
    try:
        started = time.monotonic()
        code, _ = finish(publisher(gate.url(key), 12, "640x360", "-b:v", "1500k",
                                   "-maxrate", "1500k", "-bufsize", "1500k"))
        assert code != 0 and time.monotonic() - started < 10
    finally:
        gate.close()
    assert len(hub.feeds) == 1 and hub.feeds[0].closed.wait(5)
    assert hub.feeds[0].error == ingest_limits.TOO_FAST.format(kbps=100)
    assert last_error(db, event_id) == ingest_limits.TOO_FAST.format(kbps=100)
    # What was handed on before the cut is a stream that ends, not noise.
    assert ffprobe(hub.feeds[0].path)["streams"]


@pytest.mark.parametrize("metadata", [True, False])
def test_a_picture_above_the_size_cap_is_cut_off(staff: Any, db: Session, settings: Settings,
                                                 hub: SinkHub, metadata: bool) -> None:
    """Read from onMetaData, and without it (-flvflags no_metadata) from the H.264 SPS."""
    admin, event_id = webcast_session(staff, db)
    key = new_key(admin, event_id)
    gate = _gate(settings, hub, max_ingest_pixels=640 * 360 - 1)
    try:
        options = () if metadata else ("-flvflags", "no_metadata")
        code, _ = finish(publisher(gate.url(key), 8, "640x360", *options))
        assert code != 0
        assert len(hub.feeds) == 1 and hub.feeds[0].closed.wait(5)
        assert hub.feeds[0].error == ingest_limits.TOO_LARGE.format(pixels=640 * 360 - 1)
        assert hub.feeds[0].written < 2000  # no frame got through
        # A picture within the cap goes through with the same limits.
        code, errors = finish(publisher(gate.url(key), 1, "320x180", *options))
        assert code == 0, errors
        assert len(hub.feeds) == 2 and hub.feeds[1].error == ""
    finally:
        gate.close()


def test_a_key_revoked_while_it_publishes_cuts_the_publisher_off(
        staff: Any, db: Session, gate: Gate, hub: SinkHub) -> None:
    admin, event_id = webcast_session(staff, db)
    key = new_key(admin, event_id)
    process = publisher(gate.url(key), 20)
    wait_for(lambda: len(hub.feeds) == 1 and hub.feeds[0].written > 0)
    assert admin.delete(f"/api/events/{event_id}/ingest").status_code == 204
    assert hub.feeds[0].closed.wait(rtmp.KEY_RECHECK_S + 3)
    code, _ = finish(process)
    assert code != 0
    assert last_error(db, event_id) == hub.feeds[0].error != ""


def test_the_app_listens_for_publishers_only_when_its_port_is_set(settings: Settings) -> None:
    port = _free_port()
    app = create_app(settings.model_copy(update={"rtmp_port": port, "rtmp_host": "127.0.0.1"}))
    with TestClient(app), socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert _closed_by_server(sock)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)


def test_a_taken_port_leaves_the_app_running_without_ingest(
        settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    """As with `kaifang serve --workers 2`: the second process finds the port taken."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        app = create_app(settings.model_copy(update={"rtmp_port": port,
                                                     "rtmp_host": "127.0.0.1"}))
        with TestClient(app) as client:
            assert client.get("/healthz").status_code == 200
    assert "RTMP ingest not listening" in caplog.text


def test_without_a_hub_a_publisher_is_refused_with_a_message(
        staff: Any, db: Session, settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    admin, event_id = webcast_session(staff, db)
    key = new_key(admin, event_id)
    gate = Gate(settings, None)
    try:
        code, _ = finish(publisher(gate.url(key), 10))
    finally:
        gate.close()
    assert code != 0
    assert "no_hub" in caplog.text
    assert last_error(db, event_id) == rtmp.NO_HUB


class _RefusingHub(SinkHub):
    """Refuses the first publisher as the encoder would (or fails outright), then takes them."""

    def __init__(self, folder: Path, first: Exception) -> None:
        super().__init__(folder)
        self.first: Exception | None = first

    async def open_feed(self, event_id: int, source: str, container: str) -> Any:
        if self.first is not None:
            first, self.first = self.first, None
            raise first
        return await super().open_feed(event_id, source, container)


@pytest.mark.parametrize("first", [IngestRefused("ended", "场次已结束"), RuntimeError("bug")])
def test_a_publisher_the_hub_refuses_leaves_the_key_free(
        staff: Any, db: Session, settings: Settings, tmp_path: Path, first: Exception) -> None:
    admin, event_id = webcast_session(staff, db)
    key = new_key(admin, event_id)
    hub = _RefusingHub(tmp_path, first)
    gate = Gate(settings, hub)
    try:
        code, _ = finish(publisher(gate.url(key), 10))
        assert code != 0 and hub.feeds == []
        if isinstance(first, IngestRefused):
            assert last_error(db, event_id) == "场次已结束"
        _still_takes_a_publisher(gate, hub, key)
    finally:
        gate.close()


def _published(port: int, key: str) -> socket.socket:
    """A hand-made RTMP client through handshake, connect, createStream and publish."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"\x03" + bytes(1536))
    answer = b""
    while len(answer) < 1 + 2 * 1536:
        answer += sock.recv(65536)
    sock.sendall(answer[1:1 + 1536])  # C2: S1 echoed
    for stream_id, values in ((0, ("connect", 1.0, {"app": "live"})),
                              (0, ("createStream", 2.0, None)),
                              (1, ("publish", 3.0, None, key, "live"))):
        sock.sendall(chunked(3, Message(AMF0_COMMAND, stream_id, 0, amf0.encode(*values)), 128))
    heard = answer[1 + 2 * 1536:]
    while b"NetStream.Publish.Start" not in heard:
        more = sock.recv(65536)
        assert more, heard
        heard += more
    return sock


def test_a_publisher_that_breaks_the_protocol_mid_stream_is_cut_off(
        staff: Any, db: Session, gate: Gate, hub: SinkHub) -> None:
    admin, event_id = webcast_session(staff, db)
    key = new_key(admin, event_id)
    with _published(gate.port, key) as sock:
        wait_for(lambda: len(hub.feeds) == 1)
        sock.sendall(bytes([0x40 | 9]) + bytes(7))  # a chunk stream begun without its header
        assert _closed_by_server(sock)
    assert hub.feeds[0].closed.wait(5) and hub.feeds[0].error == rtmp.BAD_STREAM
    assert last_error(db, event_id) == rtmp.BAD_STREAM
    _still_takes_a_publisher(gate, hub, key)


def test_a_publisher_gone_silent_is_closed(staff: Any, db: Session, settings: Settings,
                                           hub: SinkHub) -> None:
    """A dead network holds no feed open: the hub hears the publisher is gone (no error: it
    may come back within the grace time)."""
    admin, event_id = webcast_session(staff, db)
    key = new_key(admin, event_id)
    gate = Gate(settings, hub, idle_s=1.0)
    try:
        with _published(gate.port, key) as sock:
            wait_for(lambda: len(hub.feeds) == 1)
            assert hub.feeds[0].closed.wait(4) and hub.feeds[0].error == ""
            assert _closed_by_server(sock)
        _still_takes_a_publisher(gate, hub, key)
    finally:
        gate.close()


# The gate and the socket are protocol code: their database part runs on PostgreSQL in
# test_ingest_api.py and the hub's tests (tests/conftest.py).
pytestmark = pytest.mark.sqlite_pass_only
