"""The load-generator processes of bench/scaleout.py: each holds its share of the viewers'
sockets and records when each comment frame arrives, as bench/fanout_viewers.py does, but with
a websocket client cut to what a viewer of the room needs (the handshake, unmasked text frames
from the server, pings answered, a close noticed), so that a delivered frame costs the
generator about half what it costs with websockets' ClientProtocol and a json.loads per frame:
on two cores the generator's CPU is taken from the server it measures.

Frames are read from the bytes as they come: the id and seq of a comment frame with one regular
expression (both servers write `{"type":"comment","seq":S,"id":I,...`). Started with the spawn
context, so this module, not the script, is what each process imports."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import struct
import time
import zlib
from collections import Counter
from multiprocessing.connection import Connection
from typing import cast
from urllib.parse import urlsplit

import fanout_viewers
from harness import REQUEST_TIMEOUT_S

# Matched at a frame's start with match(buffer, start, end) (a `^` would only match at 0).
COMMENT = re.compile(rb'\{"type":"comment","seq":(\d+),"id":(\d+)')
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


class LightViewer(asyncio.Protocol):
    """One viewer's socket, parsed by hand: no task, no frame object, no JSON per frame."""

    def __init__(self, url: str, crowd: LightCrowd, forwarded_for: str | None = None) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.target = parts.path + (f"?{parts.query}" if parts.query else "")
        # From an address of its own, as behind the district's proxy (the server trusts
        # 127.0.0.1's X-Forwarded-For): sockets are limited per address.
        spread = zlib.crc32(url.encode())
        self.address = forwarded_for or \
            f"10.{200 + spread % 50}.{spread >> 8 & 255}.{(spread >> 16) % 250 + 1}"
        self.crowd = crowd
        self.hello: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.upgraded = False
        self.received: list[tuple[int, int, float]] = []  # (id, seq, monotonic time)
        self.frames = 0  # every text frame, comments or not
        self.closed_with: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        key = base64.b64encode(os.urandom(16)).decode()
        self.transport.write(
            f"GET {self.target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nX-Forwarded-For: {self.address}\r\n\r\n".encode())

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        buffer = self.buffer + data if self.buffer else data
        if not self.upgraded:
            head, found, rest = buffer.partition(b"\r\n\r\n")
            if not found:
                self.buffer = buffer
                return
            if not head.startswith(b"HTTP/1.1 101"):
                self._fail(f"handshake {head[9:12].decode(errors='replace')}")
                return
            self.upgraded, buffer = True, rest
        at, end = 0, len(buffer)
        while end - at >= 2:
            opcode, length = buffer[at] & 0x0F, buffer[at + 1] & 0x7F
            start = at + 2
            if length == 126:
                if end - at < 4:
                    break
                length, start = struct.unpack_from("!H", buffer, at + 2)[0], at + 4
            elif length == 127:
                if end - at < 10:
                    break
                length, start = struct.unpack_from("!Q", buffer, at + 2)[0], at + 10
            if end - start < length:
                break
            if opcode == TEXT:
                self.frames += 1
                self.crowd.last_frame = now
                found_comment = COMMENT.match(buffer, start, start + length)
                if found_comment is not None:
                    self.received.append((int(found_comment[2]), int(found_comment[1]), now))
                elif not self.hello.done():
                    self.hello.set_result(None)
            elif opcode == PING:
                self._send(PONG, buffer[start:start + length])
            elif opcode == CLOSE:
                code = struct.unpack_from("!H", buffer, start)[0] if length >= 2 else 1005
                self._fail(f"closed {code}")
                self._send(CLOSE, buffer[start:start + 2])
            at = start + length
        self.buffer = buffer[at:] if at < end else b""

    def _send(self, opcode: int, payload: bytes) -> None:
        """A client's frame: masked (RFC 6455 5.3), short payloads only (pongs, a close)."""
        if self.transport is None or self.transport.is_closing():
            return
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(bytes((0x80 | opcode, 0x80 | len(payload))) + mask + masked)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail("connection lost")

    def _fail(self, why: str) -> None:
        self.closed_with = self.closed_with or why
        if not self.hello.done():
            self.hello.set_exception(ConnectionError(why))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class LightCrowd(fanout_viewers.Crowd):
    """fanout_viewers.Crowd (settle, start, collect, close) on LightViewer sockets."""

    def __init__(self, compression: bool = False) -> None:
        super().__init__(False)
        self.viewers: list[LightViewer] = []  # type: ignore[assignment]

    async def connect(self, urls: list[str]) -> Counter[str]:
        """Opens every socket (a few at a time) and waits for each one's first frame."""
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(fanout_viewers.CONNECTS_AT_ONCE)
        outcomes: Counter[str] = Counter()

        async def one(url: str) -> None:
            async with gate:
                viewer = LightViewer(url, self)
                try:
                    await loop.create_connection(lambda: viewer, viewer.host, viewer.port)
                    await asyncio.wait_for(viewer.hello, REQUEST_TIMEOUT_S)
                    self.viewers.append(viewer)
                    outcomes["connected"] += 1
                except (OSError, ConnectionError, TimeoutError) as exc:
                    outcomes[str(exc) or type(exc).__name__] += 1
                    viewer.close()

        await asyncio.gather(*(one(url) for url in urls))
        return outcomes

    async def cpu(self) -> float:
        return time.process_time()


def generator_main(pipe: Connection, compression: bool) -> None:
    """A load-generator process: runs the bench's commands on its crowd until `close`."""
    fanout_viewers.serve_crowd(pipe, LightCrowd)


class LightGenerators(fanout_viewers.Generators):
    """fanout_viewers.Generators whose processes run LightCrowd, optionally pinned to CPUs."""

    def __init__(self, count: int, cpus: set[int] | None = None) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes = []
        for _ in range(count):
            ours, theirs = context.Pipe()
            process = context.Process(target=generator_main, args=(theirs, False), daemon=True)
            process.start()
            if cpus and process.pid is not None:
                os.sched_setaffinity(process.pid, cpus)
            self.pipes.append(ours)
            self.processes.append(process)

    async def cpu_s(self) -> float:
        return sum(await self.ask("cpu"))

