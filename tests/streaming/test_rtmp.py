"""The RTMP gate with real ffmpeg publishers: a publisher with the session's key is handed on
as a valid FLV stream; a wrong, rotated or expired key, and a second publisher on a key that
publishes, are refused before any byte is handed on, while the first goes on."""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from server.config import Settings
from streaming import ingest, rtmp
from streaming.models import LiveStream
from tests.streaming.rtmp_helpers import (
    Gate,
    SinkHub,
    ffprobe,
    finish,
    new_key,
    publisher,
    webcast_session,
)


@pytest.fixture
def hub(tmp_path: Path) -> SinkHub:
    return SinkHub(tmp_path)


@pytest.fixture
def gate(settings: Settings, hub: SinkHub) -> Iterator[Gate]:
    opened = Gate(settings, hub)
    yield opened
    opened.close()


def last_error(db: Session, event_id: int) -> str:
    db.expire_all()
    return db.exec(select(LiveStream).where(LiveStream.event_id == event_id)).one().last_error


def wait_for(condition: Any, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_publisher_with_the_key_is_handed_on_as_flv(
        staff: Any, db: Session, gate: Gate, hub: SinkHub,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    admin, event_id = webcast_session(staff, db)
    key = new_key(admin, event_id)
    code, errors = finish(publisher(gate.url(key), 3))
    assert code == 0, errors
    assert f"key {key[:4]}…" in caplog.text and key[:5] not in caplog.text
    assert len(hub.feeds) == 1
    feed = hub.feeds[0]
    assert feed.closed.wait(10) and feed.error == "" and feed.event_id == event_id
    data = feed.path.read_bytes()
    assert data.startswith(b"FLV\x01\x05")
    assert b"onMetaData" in data[:200] and b"@setDataFrame" not in data
    probed = ffprobe(feed.path)
    kinds = {s["codec_type"]: s for s in probed["streams"]}
    assert kinds["video"]["codec_name"] == "h264"
    assert (kinds["video"]["width"], kinds["video"]["height"]) == (320, 180)
    assert kinds["audio"]["codec_name"] == "aac"
    assert probed["format"]["format_name"] == "flv"
    assert 2.5 <= float(probed["format"]["duration"]) <= 3.5


def test_a_wrong_key_is_refused_before_any_byte_is_handed_on(
        staff: Any, db: Session, gate: Gate, hub: SinkHub,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    admin, event_id = webcast_session(staff, db)
    key = new_key(admin, event_id)
    wrong = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    started = time.monotonic()
    code, errors = finish(publisher(gate.url(wrong), 10))
    assert code != 0 and time.monotonic() - started < 8
    assert "BadName" in errors or "error" in errors.lower()
    assert hub.feeds == []
    assert "wrong_key" in caplog.text and wrong[:4] in caplog.text
    assert wrong[:8] not in caplog.text and key[:8] not in caplog.text


def test_a_rotated_key_is_refused_and_the_new_one_publishes(staff: Any, db: Session,
                                                            gate: Gate, hub: SinkHub) -> None:
    admin, event_id = webcast_session(staff, db)
    old = new_key(admin, event_id)
    new = new_key(admin, event_id)
    code, _ = finish(publisher(gate.url(old), 10))
    assert code != 0 and hub.feeds == []
    code, errors = finish(publisher(gate.url(new), 2))
    assert code == 0, errors
    assert len(hub.feeds) == 1 and hub.feeds[0].written > 10_000


def test_an_expired_key_is_refused_with_a_message_for_the_console(
        staff: Any, db: Session, gate: Gate, hub: SinkHub, clock: Any) -> None:
    admin, event_id = webcast_session(staff, db)
    key = new_key(admin, event_id)
    clock.advance(timedelta(hours=49))
    code, _ = finish(publisher(gate.url(key), 10))
    assert code != 0 and hub.feeds == []
    assert last_error(db, event_id) == ingest.EXPIRED_KEY


def test_a_second_publisher_is_refused_while_the_first_goes_on(
        staff: Any, db: Session, gate: Gate, hub: SinkHub) -> None:
    admin, event_id = webcast_session(staff, db)
    key = new_key(admin, event_id)
    first = publisher(gate.url(key), 6)
    wait_for(lambda: len(hub.feeds) == 1 and hub.feeds[0].written > 0)
    code, _ = finish(publisher(gate.url(key), 10))
    assert code != 0
    assert len(hub.feeds) == 1 and not hub.feeds[0].closed.is_set()
    assert last_error(db, event_id) == rtmp.BUSY
    code, errors = finish(first)
    assert code == 0, errors
    assert hub.feeds[0].closed.wait(10) and hub.feeds[0].error == ""
    assert 5.5 <= float(ffprobe(hub.feeds[0].path)["format"]["duration"]) <= 6.5


def test_playing_is_refused(staff: Any, db: Session, gate: Gate, hub: SinkHub) -> None:
    admin, event_id = webcast_session(staff, db)
    key = new_key(admin, event_id)
    player = subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", "-i",
                               gate.url(key), "-t", "1", "-f", "null", "-"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    code, _ = finish(player, timeout=20)
    assert code != 0 and hub.feeds == []


def test_an_audio_only_publisher_is_handed_on_as_audio_only_flv(
        staff: Any, db: Session, gate: Gate, hub: SinkHub) -> None:
    admin, event_id = webcast_session(staff, db)
    key = new_key(admin, event_id)
    sender = subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-f",
                               "lavfi", "-i", "sine=frequency=440:duration=2", "-c:a", "aac",
                               "-f", "flv", gate.url(key)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    code, errors = finish(sender)
    assert code == 0, errors
    data = hub.feeds[0].path.read_bytes()
    assert data.startswith(b"FLV\x01\x04")  # the header announces audio alone
    assert [s["codec_type"] for s in ffprobe(hub.feeds[0].path)["streams"]] == ["audio"]


# The gate and the socket are protocol code: their database part runs on PostgreSQL in
# test_ingest_api.py and the hub's tests (tests/conftest.py).
pytestmark = pytest.mark.sqlite_pass_only
