"""RTMP's chunk layer and the FLV it becomes: headers of every format, extended timestamps
(a publisher past 4 h 39 min, shown with a real ffmpeg), the peer's chunk size and Abort."""

from __future__ import annotations

import asyncio
import concurrent.futures
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from server.config import Settings
from streaming import amf0, flv
from streaming.rtmp_chunks import (
    ABORT,
    AUDIO,
    SET_CHUNK_SIZE,
    VIDEO,
    ChunkReader,
    Message,
    ProtocolError,
    chunked,
)
from tests.streaming.rtmp_helpers import (
    Gate,
    SinkHub,
    ffprobe,
    finish,
    new_key,
    publisher,
    webcast_session,
)


def _read_all(data: bytes, count: int, max_message: int = 1 << 20) -> list[Message]:
    async def run() -> list[Message]:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        chunks = ChunkReader(reader, max_message=max_message)
        return [await chunks.next_message() for _ in range(count)]
    # A thread of its own: a browser test earlier in this worker leaves Playwright's loop
    # running in this one (asyncio.run would refuse).
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


def test_headers_of_every_format_and_extended_timestamps() -> None:
    big = 0x01000000 + 5  # past 0xFFFFFF: carried in the extended field
    first = chunked(6, Message(VIDEO, 1, big, b"v" * 300), 128)  # fmt 0, then fmt 3 chunks
    assert first.count(big.to_bytes(4, "big")) == 3  # each chunk repeats the extended field
    # fmt 1 (delta 40, new length), fmt 2 (delta 40), fmt 3 starting a message (delta again).
    fmt1 = bytes([0x40 | 6]) + (40).to_bytes(3, "big") + (3).to_bytes(3, "big") + bytes([VIDEO])
    fmt2 = bytes([0x80 | 6]) + (40).to_bytes(3, "big")
    fmt3 = bytes([0xC0 | 6])
    data = first + fmt1 + b"abc" + fmt2 + b"def" + fmt3 + b"ghi"
    messages = _read_all(data, 4)
    assert [m.timestamp for m in messages] == [big, big + 40, big + 80, big + 120]
    assert messages[0].payload == b"v" * 300 and messages[0].stream_id == 1
    assert [m.payload for m in messages[1:]] == [b"abc", b"def", b"ghi"]


def test_the_peers_chunk_size_and_abort() -> None:
    size = chunked(2, Message(SET_CHUNK_SIZE, 0, 0, struct.pack(">I", 4096)), 128)
    big = chunked(4, Message(AUDIO, 1, 10, b"a" * 3000), 4096)  # one chunk at the new size
    # A message cut off by Abort: its first chunk, then the Abort, then a whole new one.
    half = chunked(5, Message(AUDIO, 1, 20, b"x" * 5000), 4096)[:12 + 4096]
    abort = chunked(2, Message(ABORT, 0, 0, struct.pack(">I", 5)), 4096)
    fresh = chunked(5, Message(AUDIO, 1, 30, b"y" * 10), 4096)
    messages = _read_all(size + big + half + abort + fresh, 4)
    assert messages[1].payload == b"a" * 3000
    assert messages[2].type_id == ABORT
    assert messages[3].payload == b"y" * 10 and messages[3].timestamp == 30


@pytest.mark.parametrize("data", [
    bytes([0x40 | 7]) + bytes(7),  # a chunk stream that begins without a full header
    chunked(3, Message(VIDEO, 1, 0, b"z" * 100), 128)[:12] + b"",  # over max_message below
])
def test_what_breaks_the_protocol_is_refused(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        _read_all(data, 1, max_message=50)


def test_amf0_round_trip_and_bounds() -> None:
    values = ["connect", 1.0, {"app": "live", "nested": {"ok": True}}, None, [1.0, "two"]]
    assert amf0.decode(amf0.encode(*values)) == values
    with pytest.raises(amf0.AMFError):
        amf0.decode(bytes([amf0.OBJECT]) * 50)  # nested past the limit
    with pytest.raises(amf0.AMFError):
        amf0.decode(bytes([amf0.STRICT_ARRAY]) + struct.pack(">I", 10**9))
    with pytest.raises(amf0.AMFError):
        amf0.decode(bytes([amf0.STRING, 0xFF, 0xFF]) + b"short")


def test_metadata_is_handed_on_as_onmetadata() -> None:
    sent = amf0.encode("@setDataFrame", "onMetaData", {"width": 1280.0, "height": 720.0})
    body = flv.script_body(sent)
    assert body is not None and body.startswith(amf0.encode("onMetaData"))
    assert flv.metadata_size(flv.metadata(body)) == (1280, 720)
    assert flv.script_body(amf0.encode("onCuePoint", {})) is None
    assert flv.metadata_size({"width": "wide", "height": float("nan")}) == (0, 0)


@pytest.fixture
def gate(settings: Settings, tmp_path: Path) -> Iterator[tuple[Gate, SinkHub]]:
    hub = SinkHub(tmp_path)
    opened = Gate(settings, hub)
    yield opened, hub
    opened.close()


def test_a_publisher_past_the_24_bit_clock_keeps_its_timestamps(
        staff: Any, db: Session, gate: tuple[Gate, SinkHub]) -> None:
    """17000 s in: every chunk header carries an extended timestamp (FFmpeg's writer)."""
    server, hub = gate
    admin, event_id = webcast_session(staff, db)
    key = new_key(admin, event_id)
    code, errors = finish(publisher(server.url(key), 2, "320x180",
                                    "-output_ts_offset", "17000"))
    assert code == 0, errors
    probed = ffprobe(hub.feeds[0].path)
    assert {s["codec_type"] for s in probed["streams"]} == {"video", "audio"}
    # FLV's duration counts from 0: 17000 s of offset, then the 2 s sent, none lost or wrapped.
    assert 17001.5 <= float(probed["format"]["duration"]) <= 17002.5


def test_partial_messages_on_many_chunk_streams_are_bounded_together() -> None:
    """Each of 15 chunk streams starts a message just under the bound and never ends it: what
    the reader holds for them all together stays within one message's bound."""
    bound = 64 * 1024
    data = b"".join(chunked(csid, Message(VIDEO, 1, 0, bytes(bound - 10)), 60_000)[:12 + 60_000]
                    for csid in range(3, 18))
    size = chunked(2, Message(SET_CHUNK_SIZE, 0, 0, struct.pack(">I", 60_000)), 128)
    with pytest.raises(ProtocolError, match="partial"):
        _read_all(size + data, 2, max_message=bound)


def test_set_chunk_size_of_0_or_2_to_the_31_is_refused_and_a_huge_one_allocates_nothing() -> None:
    for size in (0, 1 << 31):
        with pytest.raises(ProtocolError, match="chunk size of 0"):
            _read_all(chunked(2, Message(SET_CHUNK_SIZE, 0, 0, struct.pack(">I", size)), 128), 1)
    huge = chunked(2, Message(SET_CHUNK_SIZE, 0, 0, struct.pack(">I", 0x7FFFFFFF)), 128)
    header = bytes([4]) + bytes(3) + (0xFFFFFF).to_bytes(3, "big") + bytes([AUDIO]) + bytes(4)
    with pytest.raises(ProtocolError, match="at most"):
        _read_all(huge + header, 2, max_message=1024)



# The gate and the socket are protocol code: their database part runs on PostgreSQL in
# test_ingest_api.py and the hub's tests (tests/conftest.py).
pytestmark = pytest.mark.sqlite_pass_only
