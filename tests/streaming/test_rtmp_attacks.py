"""The RTMP gate against a hostile or careless client: a session called off while it
publishes, a slowloris that keeps within the deadlines, and what a reconnect must find."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from server.config import Settings
from streaming import amf0, ingest, ingest_limits, rtmp
from streaming.live_hub import IngestRefused
from streaming.rtmp_chunks import AMF0_COMMAND, Message, chunked
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


@pytest.fixture
def hub(tmp_path: Path) -> SinkHub:
    return SinkHub(tmp_path)


@pytest.fixture
def gate(settings: Settings, hub: SinkHub) -> Iterator[Gate]:
    opened = Gate(settings, hub)
    yield opened
    opened.close()



def test_connections_through_a_trusted_proxy_count_only_toward_the_whole_cap(
        staff: Any, db: Session, gate: Gate, hub: SinkHub, settings: Settings) -> None:
    """Behind a TCP proxy (KAIFANG_TRUSTED_PROXIES) every encoder has the proxy's address:
    the per-address cap would let only a few of them connect at once."""
    assert "127.0.0.1" in settings.trusted_proxies
    admin, event_id = webcast_session(staff, db)
    key = new_key(admin, event_id)
    idle = [socket.create_connection(("127.0.0.1", gate.port), timeout=5)
            for _ in range(rtmp.MAX_PENDING_PER_ADDRESS + 2)]
    try:
        time.sleep(0.3)
        code, errors = finish(publisher(gate.url(key), 1))
        assert code == 0, errors
    finally:
        for sock in idle:
            sock.close()

@pytest.mark.parametrize(("peer", "group"), [
    ("203.0.113.7", "203.0.113.7"),
    ("::ffff:203.0.113.7", "203.0.113.7"),
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
    ("", ""),
])
def test_the_per_address_cap_counts_an_ipv6_client_by_its_64(peer: str, group: str) -> None:
    """An IPv6 client holds a /64: counted by address, it could open the whole cap alone."""
    assert rtmp.address_group(peer) == group


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


class _OneAtATimeHub(SinkHub):
    """As the encoder's hub: one feed per session at a time (busy while one is open), and a
    close that takes a while (the encoder drains what it was handed)."""

    async def open_feed(self, event_id: int, source: str, container: str) -> Any:
        if any(feed.event_id == event_id and not feed.closed.is_set() for feed in self.feeds):
            raise IngestRefused("busy", rtmp.BUSY)
        feed = await super().open_feed(event_id, source, container)
        close = feed.close

        async def slow_close(error: str = "") -> None:
            await asyncio.sleep(1.5)
            await close(error)
        feed.close = slow_close  # type: ignore[method-assign]
        return feed


def test_a_publisher_that_stops_and_comes_back_at_once_is_taken_again(
        staff: Any, db: Session, settings: Settings, tmp_path: Path) -> None:
    """ffmpeg ends with FCUnpublish and deleteStream; the same key publishes again at once."""
    admin, event_id = webcast_session(staff, db)
    key = new_key(admin, event_id)
    hub = _OneAtATimeHub(tmp_path)
    gate = Gate(settings, hub)
    try:
        for _ in range(2):
            code, errors = finish(publisher(gate.url(key), 1))
            assert code == 0, errors
        assert len(hub.feeds) == 2 and all(feed.closed.wait(5) for feed in hub.feeds)
        assert [feed.error for feed in hub.feeds] == ["", ""]
    finally:
        gate.close()


async def _tasks_left() -> int:
    return len(asyncio.all_tasks()) - 1  # this one


def test_the_server_stopping_with_publishers_on_closes_their_feeds_quietly(
        staff: Any, db: Session, settings: Settings, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """The app's lifespan ending while encoders publish: each feed is closed (its close not
    cut short), no connection task is left behind, and nothing is logged as a crash."""
    admin, event_id = webcast_session(staff, db)
    key = new_key(admin, event_id)
    hub = _OneAtATimeHub(tmp_path)
    gate = Gate(settings, hub)
    process = publisher(gate.url(key), 20)
    try:
        wait_for(lambda: len(hub.feeds) == 1 and hub.feeds[0].written > 0)
        gate._run(gate.server.stop())
        assert hub.feeds[0].closed.is_set() and hub.feeds[0].error == ""
        assert gate._run(_tasks_left()) == 0
    finally:
        gate.close()
        process.kill()
        process.wait()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.parametrize("how", ["rtmp_live", "no_duration_filesize", "other_app", "playpath",
                                 "query"])
def test_ffmpeg_publishes_however_it_names_the_stream(
        staff: Any, db: Session, gate: Gate, hub: SinkHub, how: str) -> None:
    admin, event_id = webcast_session(staff, db)
    key = new_key(admin, event_id)
    base = f"rtmp://127.0.0.1:{gate.port}"
    url, options = {
        "rtmp_live": (gate.url(key), ("-rtmp_live", "live")),
        "no_duration_filesize": (gate.url(key), ("-flvflags", "no_duration_filesize")),
        "other_app": (f"{base}/kaifang/{key}", ()),
        "playpath": (f"{base}/live", ("-rtmp_playpath", key)),
        "query": (f"{base}/live/{key}?vhost=kaifang", ()),
    }[how]
    code, errors = finish(publisher(url, 1, "320x180", *options))
    assert code == 0, errors
    assert len(hub.feeds) == 1 and hub.feeds[0].closed.wait(5) and hub.feeds[0].error == ""
    assert {s["codec_type"] for s in ffprobe(hub.feeds[0].path)["streams"]} == {"audio", "video"}


def _handshake_and_publish(port: int, name: str) -> socket.socket:
    """A hand-made client's handshake, connect, createStream and publish (what it hears
    next is left to read)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"\x03" + bytes(1536))
    heard = b""
    while len(heard) < 1 + 2 * 1536:
        heard += sock.recv(65536)
    sock.sendall(heard[1:1 + 1536])
    for stream_id, values in ((0, ("connect", 1.0, {"app": "live"})),
                              (0, ("createStream", 2.0, None)),
                              (1, ("publish", 3.0, None, name, "live"))):
        sock.sendall(chunked(3, Message(AMF0_COMMAND, stream_id, 0, amf0.encode(*values)), 128))
    return sock


@pytest.mark.parametrize("flood", ["noise", "wrong_key"])
def test_a_flood_of_bad_connections_is_a_few_log_lines(
        staff: Any, db: Session, gate: Gate, hub: SinkHub, flood: str,
        caplog: pytest.LogCaptureFixture) -> None:
    """Each refused connection was a line: a client looping on the port could fill the disk."""
    caplog.set_level(logging.INFO, logger="kaifang.rtmp")
    for _ in range(60):
        if flood == "noise":
            sock = socket.create_connection(("127.0.0.1", gate.port), timeout=5)
            sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
        else:
            sock = _handshake_and_publish(gate.port, "x" * 43)
        with sock:
            sock.settimeout(5)
            while sock.recv(65536):  # until the gate closes it
                pass
    lines = [r.getMessage() for r in caplog.records if r.name == "kaifang.rtmp"]
    assert 1 <= len(lines) <= 10, lines
    admin, event_id = webcast_session(staff, db)
    code, errors = finish(publisher(gate.url(new_key(admin, event_id)), 1))
    assert code == 0, errors


def _hears(sock: socket.socket, *codes: bytes) -> bytes:
    """What the client hears until one of `codes` or the end."""
    heard = b""
    sock.settimeout(10)
    while not any(code in heard for code in codes):
        more = sock.recv(65536)
        if not more:
            break
        heard += more
    return heard


def test_two_publishers_racing_on_one_key_one_is_taken(
        staff: Any, db: Session, gate: Gate, hub: SinkHub) -> None:
    admin, event_id = webcast_session(staff, db)
    key = new_key(admin, event_id)
    results: list[bytes] = []
    with ThreadPoolExecutor(2) as pool:
        def race(_: int) -> tuple[socket.socket, bytes]:
            sock = _handshake_and_publish(gate.port, key)
            return sock, _hears(sock, b"Publish.Start", b"Publish.BadName")
        for sock, heard in pool.map(race, range(2)):
            results.append(heard)
            if b"Publish.Start" in heard:
                winner = sock
            else:
                sock.close()
    assert sorted(b"Publish.Start" in heard for heard in results) == [False, True]
    assert any(b"Publish.BadName" in heard for heard in results)
    assert len(hub.feeds) == 1 and not hub.feeds[0].closed.is_set()
    winner.close()
    assert hub.feeds[0].closed.wait(5) and hub.feeds[0].error == ""


def test_a_publisher_gone_mid_message_hands_on_whole_tags_only(
        staff: Any, db: Session, gate: Gate, hub: SinkHub) -> None:
    admin, event_id = webcast_session(staff, db)
    key = new_key(admin, event_id)
    sock = _handshake_and_publish(gate.port, key)
    assert b"Publish.Start" in _hears(sock, b"Publish.Start")
    whole = chunked(4, Message(8, 1, 0, b"\xaf\x01" + bytes(50)), 128)
    half = chunked(6, Message(9, 1, 0, b"\x27\x01" + bytes(1000)), 128)[:500]
    sock.sendall(whole + half)
    sock.close()
    assert hub.feeds[0].closed.wait(5) and hub.feeds[0].error == ""
    data = hub.feeds[0].path.read_bytes()
    assert data[13] == 8 and len(data) == 13 + 11 + 52 + 4  # the header, the audio tag
    assert last_error(db, event_id) == ""


def test_a_key_running_out_while_it_publishes_does_not_cut_the_webcast(
        staff: Any, db: Session, gate: Gate, hub: SinkHub, clock: Any) -> None:
    """A key issued the day before runs out in the middle of the session: the publisher it
    let in goes on (a rotation or a revoke still cuts it; a new connection is refused)."""
    admin, event_id = webcast_session(staff, db)
    key = new_key(admin, event_id)
    process = publisher(gate.url(key), 9)
    try:
        wait_for(lambda: len(hub.feeds) == 1 and hub.feeds[0].written > 0)
        clock.advance(timedelta(hours=49))
        code, errors = finish(process)
        assert code == 0, errors
        assert hub.feeds[0].closed.wait(5) and hub.feeds[0].error == ""
        code, _ = finish(publisher(gate.url(key), 5))
        assert code != 0 and len(hub.feeds) == 1
        assert last_error(db, event_id) == ingest.EXPIRED_KEY
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("type_id", [20, 30])  # commands, a type the gate does not read
def test_what_a_publisher_sends_besides_media_counts_toward_its_bitrate(
        staff: Any, db: Session, settings: Settings, hub: SinkHub, type_id: int) -> None:
    admin, event_id = webcast_session(staff, db)
    key = new_key(admin, event_id)
    gate = Gate(settings.model_copy(update={"max_ingest_kbps": 100}), hub)
    try:
        sock = _handshake_and_publish(gate.port, key)
        assert b"Publish.Start" in _hears(sock, b"Publish.Start")
        payload = amf0.encode("noise", 0.0, None, "x" * 4000)
        with contextlib.suppress(ConnectionError):
            for _ in range(100):  # 400 kB at once: 32 s of the cap
                sock.sendall(chunked(5, Message(type_id, 1, 0, payload), 128))
        assert hub.feeds[0].closed.wait(5)
        assert hub.feeds[0].error == ingest_limits.TOO_FAST.format(kbps=100)
        sock.close()
    finally:
        gate.close()


# The gate and the socket are protocol code: their database part runs on PostgreSQL in
# test_ingest_api.py and the hub's tests (tests/conftest.py).
pytestmark = pytest.mark.sqlite_pass_only
