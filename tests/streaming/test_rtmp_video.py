"""The picture cap against a publisher that sends its size where the gate did not look: an
SPS in a frame after a small sequence header, Sorenson H.263 (ffmpeg's FLV default), and a
codec the gate cannot read the size of (refused with a message, not handed on unchecked)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from server.config import Settings
from streaming import flv, ingest_limits
from streaming.rtmp_chunks import VIDEO, Message, chunked
from tests.streaming.rtmp_helpers import (
    Gate,
    SinkHub,
    finish,
    new_key,
    publisher,
    webcast_session,
)
from tests.streaming.test_flv_sps import _first_video_body
from tests.streaming.test_rtmp import last_error
from tests.streaming.test_rtmp_refusals import _closed_by_server, _published

CAP = 640 * 360


def _video_bodies(tmp_path: Path, size: str) -> list[bytes]:
    """The first video bodies ffmpeg's FLV muxer writes for an H.264 picture of `size`."""
    path = tmp_path / f"{size}.flv"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=5",
                    "-frames:v", "2", "-c:v", "libx264", "-preset", "ultrafast", "-y", str(path)],
                   check=True, timeout=60)
    data, bodies, offset = path.read_bytes(), [], 13
    while offset + 11 <= len(data):
        kind, length = data[offset], int.from_bytes(data[offset + 1:offset + 4], "big")
        if kind == flv.VIDEO_TAG:
            bodies.append(data[offset + 11:offset + 11 + length])
        offset += 11 + length + 4
    assert _first_video_body(path) == bodies[0]
    return bodies


def _sps(sequence_header: bytes) -> bytes:
    record = sequence_header[5:]
    return record[8:8 + int.from_bytes(record[6:8], "big")]


def _send_video(settings: Settings, hub: SinkHub, key: str, bodies: list[bytes]) -> None:
    gate = Gate(settings.model_copy(update={"max_ingest_pixels": CAP}), hub)
    try:
        with _published(gate.port, key) as sock:
            for stamp, body in enumerate(bodies):
                sock.sendall(chunked(6, Message(VIDEO, 1, stamp * 200, body), 128))
            assert _closed_by_server(sock, 5)
    finally:
        gate.close()


@pytest.fixture
def hub(tmp_path: Path) -> SinkHub:
    return SinkHub(tmp_path / "feeds")


def test_an_sps_in_a_frame_larger_than_the_sequence_header_is_cut_off(
        staff: Any, db: Session, settings: Settings, hub: SinkHub, tmp_path: Path) -> None:
    (tmp_path / "feeds").mkdir()
    admin, event_id = webcast_session(staff, db)
    key = new_key(admin, event_id)
    small = _video_bodies(tmp_path, "320x180")
    large = _video_bodies(tmp_path, "1280x720")
    sps = _sps(large[0])
    frame = b"\x17\x01\x00\x00\x00" + len(sps).to_bytes(4, "big") + sps + large[1][5:]
    _send_video(settings, hub, key, [small[0], small[1], frame])
    assert hub.feeds[0].closed.wait(5)
    assert hub.feeds[0].error == ingest_limits.TOO_LARGE.format(pixels=CAP)
    assert large[1][5:] not in hub.feeds[0].path.read_bytes()


def test_a_video_codec_whose_size_the_gate_cannot_read_is_refused(
        staff: Any, db: Session, settings: Settings, hub: SinkHub, tmp_path: Path) -> None:
    """Enhanced RTMP's HEVC (OBS 30 can send it): the hub would decode a picture of any size."""
    (tmp_path / "feeds").mkdir()
    admin, event_id = webcast_session(staff, db)
    key = new_key(admin, event_id)
    hevc = bytes([0x90]) + b"hvc1" + bytes(200)  # key frame, sequence start, FourCC
    _send_video(settings, hub, key, [hevc])
    assert hub.feeds[0].closed.wait(5)
    assert hub.feeds[0].error == flv.UNSUPPORTED_VIDEO != ""
    assert last_error(db, event_id) == flv.UNSUPPORTED_VIDEO
    assert b"hvc1" not in hub.feeds[0].path.read_bytes()


@pytest.mark.parametrize(("size", "cut"), [("640x360", True), ("320x180", False)])
def test_sorenson_h263_is_held_to_the_picture_cap(
        staff: Any, db: Session, settings: Settings, hub: SinkHub, tmp_path: Path,
        size: str, cut: bool) -> None:
    """ffmpeg's FLV default codec (-c:v flv1), without onMetaData: its picture header says."""
    (tmp_path / "feeds").mkdir()
    admin, event_id = webcast_session(staff, db)
    key = new_key(admin, event_id)
    gate = Gate(settings.model_copy(update={"max_ingest_pixels": CAP - 1}), hub)
    try:
        code, errors = finish(publisher(gate.url(key), 2, size, "-c:v", "flv1",
                                        "-flvflags", "no_metadata"))
    finally:
        gate.close()
    assert hub.feeds[0].closed.wait(5)
    if cut:
        assert code != 0
        assert hub.feeds[0].error == ingest_limits.TOO_LARGE.format(pixels=CAP - 1)
    else:
        assert code == 0, errors
        assert hub.feeds[0].error == ""


# The gate and the socket are protocol code: their database part runs on PostgreSQL in
# test_ingest_api.py and the hub's tests (tests/conftest.py).
pytestmark = pytest.mark.sqlite_pass_only
