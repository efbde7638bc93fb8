"""RTMP's wire below the commands: the handshake, and messages cut into chunks both ways.

Enough of the protocol (Adobe's RTMP 1.0 specification, §5) for an encoder that publishes:
the simple handshake (no digest: FFmpeg's and OBS's clients take it when they publish), chunk
headers of formats 0–3 with extended timestamps, the peer's Set Chunk Size and Abort. Every
length read from the peer is bounded before anything is allocated for it.
"""

from __future__ import annotations

import asyncio
import os
import struct
import time
from dataclasses import dataclass, field

HANDSHAKE_SIZE = 1536
RTMP_VERSION = 3
DEFAULT_CHUNK_SIZE = 128
MAX_CHUNK_SIZE = 0x7FFFFFFF
EXTENDED = 0xFFFFFF

# Message types (§5.4, §7.1).
SET_CHUNK_SIZE, ABORT, ACKNOWLEDGEMENT, USER_CONTROL = 1, 2, 3, 4
WINDOW_ACK_SIZE, SET_PEER_BANDWIDTH = 5, 6
AUDIO, VIDEO = 8, 9
AMF3_DATA, AMF3_COMMAND, AMF0_DATA, AMF0_COMMAND = 15, 17, 18, 20

# The chunk streams the gate writes on: protocol control, and commands.
CONTROL_CSID, COMMAND_CSID = 2, 3


class ProtocolError(ValueError):
    """The peer broke the protocol (or a limit of ours): the connection is closed."""


@dataclass
class Message:
    type_id: int
    stream_id: int
    timestamp: int
    payload: bytes


@dataclass
class _ChunkStream:
    """What a chunk stream's later headers leave out (§5.3.1.2): the last one's values."""

    timestamp: int = 0
    # The last header's timestamp field (absolute in format 0, a delta after): a format 3
    # header that starts a message adds it again (as FFmpeg's and librtmp's writers expect).
    delta: int = 0
    length: int = 0
    type_id: int = 0
    stream_id: int = 0
    extended: bool = False
    started: bool = False
    buffer: bytearray = field(default_factory=bytearray)


async def handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """C0/C1 → S0/S1/S2 → C2. A first byte other than version 3 (an HTTP request, noise) is
    refused before we send anything."""
    c0 = await reader.readexactly(1)
    if c0[0] != RTMP_VERSION:
        raise ProtocolError(f"RTMP version {RTMP_VERSION} expected, got {c0[0]}")
    c1 = await reader.readexactly(HANDSHAKE_SIZE)
    # S1: our time, four zero bytes (no digest handshake: a client checks none), noise.
    uptime = int(time.monotonic() * 1000) & 0xFFFFFFFF
    s1 = struct.pack(">II", uptime, 0) + os.urandom(HANDSHAKE_SIZE - 8)
    writer.write(bytes([RTMP_VERSION]) + s1 + c1)  # S2 echoes C1
    await writer.drain()
    await reader.readexactly(HANDSHAKE_SIZE)  # C2: its echo of S1, which we do not rely on


class ChunkReader:
    """Messages out of the peer's chunks. `max_message` and `max_streams` bound what one
    connection may make us hold; the owner may raise `max_message` once a publisher is let in."""

    def __init__(self, reader: asyncio.StreamReader, *, max_message: int,
                 max_streams: int = 16) -> None:
        self._reader = reader
        self._streams: dict[int, _ChunkStream] = {}
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self.max_message = max_message
        self.max_streams = max_streams
        # Everything read from the socket after the handshake (for Acknowledgements).
        self.bytes_read = 0

    async def _read(self, count: int) -> bytes:
        data = await self._reader.readexactly(count)
        self.bytes_read += count
        return data

    async def next_message(self) -> Message:
        while True:
            message = await self._next_chunk()
            if message is None:
                continue
            if message.type_id == SET_CHUNK_SIZE:
                self._set_chunk_size(message.payload)
            elif message.type_id == ABORT and len(message.payload) >= 4:
                aborted = self._streams.get(struct.unpack(">I", message.payload[:4])[0])
                if aborted is not None:
                    aborted.buffer = bytearray()
            return message

    def _set_chunk_size(self, payload: bytes) -> None:
        if len(payload) < 4:
            raise ProtocolError("a Set Chunk Size message shorter than 4 bytes")
        size: int = struct.unpack(">I", payload[:4])[0] & MAX_CHUNK_SIZE
        if size < 1:
            raise ProtocolError("a chunk size of 0")
        self.chunk_size = size

    async def _basic_header(self) -> tuple[int, int]:
        first = (await self._read(1))[0]
        fmt, csid = first >> 6, first & 0x3F
        if csid == 0:
            csid = 64 + (await self._read(1))[0]
        elif csid == 1:
            extra = await self._read(2)
            csid = 64 + extra[0] + extra[1] * 256
        return fmt, csid

    async def _next_chunk(self) -> Message | None:
        fmt, csid = await self._basic_header()
        stream = self._streams.get(csid)
        if stream is None:
            if fmt != 0:
                raise ProtocolError(f"chunk stream {csid} begins with a format {fmt} header")
            if len(self._streams) >= self.max_streams:
                raise ProtocolError(f"more than {self.max_streams} chunk streams")
            stream = self._streams[csid] = _ChunkStream()
        starts = not stream.buffer
        if fmt < 3:
            header = await self._read((11, 7, 3)[fmt])
            stamp = int.from_bytes(header[0:3], "big")
            if fmt < 2:
                stream.length = int.from_bytes(header[3:6], "big")
                stream.type_id = header[6]
            if fmt == 0:
                stream.stream_id = int.from_bytes(header[7:11], "little")
            stream.extended = stamp == EXTENDED
            if stream.extended:
                stamp = int.from_bytes(await self._read(4), "big")
            if not starts:
                raise ProtocolError(f"a new message header on chunk stream {csid} before its "
                                    "message was complete")
            stream.delta = stamp
            stream.timestamp = stamp if fmt == 0 else (stream.timestamp + stamp) & 0xFFFFFFFF
        else:
            if stream.extended:
                await self._read(4)  # repeats the last extended field
            if starts and stream.started:
                stream.timestamp = (stream.timestamp + stream.delta) & 0xFFFFFFFF
        stream.started = True
        if stream.length > self.max_message:
            raise ProtocolError(f"a message of {stream.length} bytes (at most "
                                f"{self.max_message})")
        wanted = min(self.chunk_size, stream.length - len(stream.buffer))
        if wanted:
            stream.buffer += await self._read(wanted)
        if len(stream.buffer) < stream.length:
            return None
        payload = bytes(stream.buffer)
        stream.buffer = bytearray()
        return Message(stream.type_id, stream.stream_id, stream.timestamp, payload)


def chunked(csid: int, message: Message, chunk_size: int) -> bytes:
    """One message as chunks: a format 0 header, then format 3 headers (csid below 64)."""
    stamp = message.timestamp & 0xFFFFFFFF
    extended = stamp >= EXTENDED
    header = bytes([csid]) + min(stamp, EXTENDED).to_bytes(3, "big") + \
        len(message.payload).to_bytes(3, "big") + bytes([message.type_id]) + \
        message.stream_id.to_bytes(4, "little")
    tail = stamp.to_bytes(4, "big") if extended else b""
    parts = [header + tail]
    payload = message.payload
    for start in range(0, len(payload), chunk_size):
        if start:
            parts.append(bytes([0xC0 | csid]) + tail)
        parts.append(payload[start:start + chunk_size])
    return b"".join(parts)


def control(type_id: int, payload: bytes) -> bytes:
    """A protocol control message (chunk stream 2, message stream 0)."""
    return chunked(CONTROL_CSID, Message(type_id, 0, 0, payload), DEFAULT_CHUNK_SIZE)


def window_ack_size(size: int) -> bytes:
    return control(WINDOW_ACK_SIZE, struct.pack(">I", size))


def set_peer_bandwidth(size: int) -> bytes:
    return control(SET_PEER_BANDWIDTH, struct.pack(">IB", size, 2))  # 2: dynamic


def set_chunk_size(size: int) -> bytes:
    return control(SET_CHUNK_SIZE, struct.pack(">I", size))


def acknowledgement(received: int) -> bytes:
    return control(ACKNOWLEDGEMENT, struct.pack(">I", received & 0xFFFFFFFF))


def stream_begin(stream_id: int) -> bytes:
    return control(USER_CONTROL, struct.pack(">HI", 0, stream_id))  # event 0: Stream Begin
