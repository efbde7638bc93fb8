"""The load-generator processes of bench/live_fanout.py: each holds its share of the viewers'
sockets on the websockets library's Sans-I/O protocol (no task per connection) and records when
each comment frame arrives. Started with the spawn context, so this module, not the script, is
what each process imports."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import time
import zlib
from collections import Counter
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, cast

from harness import REQUEST_TIMEOUT_S
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

CONNECTS_AT_ONCE = 50  # per generator: under the servers' listen backlogs
QUIET_S = 1.0  # no frame for this long: the room has settled after the joins
COMMENT = b'{"type":"comment"'

class Viewer(asyncio.Protocol):
    """One viewer's socket, on the websockets library's Sans-I/O protocol: frames are handled in
    the transport's callback, without a task per connection, so that the generator's CPU (taken
    from the server on two cores) stays small. Records when each comment frame arrives."""

    def __init__(self, url: str, compression: bool, crowd: Crowd) -> None:
        extensions = enable_client_permessage_deflate(None) if compression else None
        self.ws = ClientProtocol(parse_uri(url), extensions=extensions)
        # From an address of its own, as behind the district's proxy (the server trusts
        # 127.0.0.1's X-Forwarded-For): sockets are limited per address.
        spread = zlib.crc32(url.encode())
        self.address = f"10.{200 + spread % 50}.{spread >> 8 & 255}.{(spread >> 16) % 250 + 1}"
        self.crowd = crowd
        self.hello: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.received: list[tuple[int, int, float]] = []  # (id, seq, monotonic time)
        self.closed_with: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        request = self.ws.connect()
        request.headers["X-Forwarded-For"] = self.address
        self.ws.send_request(request)
        self._flush()

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Response):
                if self.ws.handshake_exc is not None:
                    self._fail(f"handshake {event.status_code}")
            elif isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                self.crowd.last_frame = now
                if bytes(event.data).startswith(COMMENT):
                    got = json.loads(bytes(event.data))
                    self.received.append((got["id"], got["seq"], now))
                elif not self.hello.done():
                    self.hello.set_result(None)
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        code = self.ws.close_code
        self._fail(f"closed {code}" if code is not None else "connection lost")

    def _fail(self, why: str) -> None:
        self.closed_with = self.closed_with or why
        if not self.hello.done():
            self.hello.set_exception(ConnectionError(why))

    def _flush(self) -> None:
        assert self.transport is not None
        for chunk in self.ws.data_to_send():
            if chunk:
                self.transport.write(chunk)
            elif self.transport.can_write_eof():
                self.transport.write_eof()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Crowd:
    """A generator process's viewers, driven by the bench's commands over a pipe."""

    def __init__(self, compression: bool) -> None:
        self.compression = compression
        self.viewers: list[Viewer] = []
        self.last_frame = time.monotonic()
        self.cpu_at_start = 0.0

    async def connect(self, urls: list[str]) -> Counter[str]:
        """Opens every socket (a few at a time) and waits for each one's first frame."""
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(CONNECTS_AT_ONCE)
        outcomes: Counter[str] = Counter()

        async def one(url: str) -> None:
            async with gate:
                viewer = Viewer(url, self.compression, self)
                try:
                    uri = parse_uri(url)
                    await loop.create_connection(lambda: viewer, uri.host, uri.port)
                    await asyncio.wait_for(viewer.hello, REQUEST_TIMEOUT_S)
                    self.viewers.append(viewer)
                    outcomes["connected"] += 1
                except (OSError, ConnectionError, TimeoutError) as exc:
                    outcomes[str(exc) or type(exc).__name__] += 1
                    viewer.close()

        await asyncio.gather(*(one(url) for url in urls))
        return outcomes

    async def settle(self, timeout_s: float) -> float:
        """Waits until no frame has come for QUIET_S (the joins' viewer counts are out)."""
        started = time.monotonic()
        while time.monotonic() - self.last_frame < QUIET_S \
                and time.monotonic() - started < timeout_s:
            await asyncio.sleep(0.1)
        return time.monotonic() - started

    async def start(self) -> None:
        for viewer in self.viewers:
            viewer.received.clear()
        self.cpu_at_start = time.process_time()

    async def collect(self, sent: dict[int, float], deadline: float) -> dict[str, Any]:
        """Waits (until `deadline`, monotonic) for every open viewer to have every message,
        then counts: latencies from each message's approval, and what went wrong."""
        expected = len(sent)
        while time.monotonic() < deadline and any(
                len(v.received) < expected and v.closed_with is None for v in self.viewers):
            await asyncio.sleep(0.05)
        latencies: list[float] = []
        problems: Counter[str] = Counter()
        last = 0.0
        for viewer in self.viewers:
            seen: set[int] = set()
            seqs = [seq for _id, seq, _t in viewer.received]
            if seqs != sorted(seqs):
                problems["out of order"] += 1
            for message_id, _seq, at in viewer.received:
                if message_id in seen:
                    problems["duplicate"] += 1
                    continue
                seen.add(message_id)
                if message_id in sent:
                    latencies.append(at - sent[message_id])
                    last = max(last, at)
            problems["missing"] += len(set(sent) - seen)
            if viewer.closed_with is not None:
                problems[viewer.closed_with] += 1
        return {"latencies": latencies, "problems": problems, "last": last,
                "cpu_s": time.process_time() - self.cpu_at_start}

    async def close(self) -> None:
        for viewer in self.viewers:
            viewer.close()
        await asyncio.sleep(0.5)


def generator_main(pipe: Connection, compression: bool) -> None:
    """A load-generator process: runs the bench's commands on its crowd until `close`."""
    serve_crowd(pipe, lambda: Crowd(compression))


def serve_crowd(pipe: Connection, make_crowd: Callable[[], Any]) -> None:
    """Runs the commands that come through `pipe` on the crowd `make_crowd` gives (a method
    name and its arguments; the answer goes back), until `close`."""
    async def serve_commands() -> None:
        loop = asyncio.get_running_loop()
        crowd = make_crowd()
        while True:
            command, args = await loop.run_in_executor(None, pipe.recv)
            pipe.send(await getattr(crowd, command)(*args))
            if command == "close":
                return

    try:
        import uvloop
    except ImportError:
        asyncio.run(serve_commands())
    else:
        uvloop.run(serve_commands())


class Generators:
    """The load-generator processes, each with its share of the viewers."""

    def __init__(self, count: int, compression: bool) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes = []
        for _ in range(count):
            ours, theirs = context.Pipe()
            process = context.Process(target=generator_main, args=(theirs, compression),
                                      daemon=True)
            process.start()
            self.pipes.append(ours)
            self.processes.append(process)

    async def ask(self, command: str, per_process: list[tuple[Any, ...]] | None = None,
                  *args: Any) -> list[Any]:
        loop = asyncio.get_running_loop()
        for index, pipe in enumerate(self.pipes):
            pipe.send((command, per_process[index] if per_process else args))
        return [await loop.run_in_executor(None, pipe.recv) for pipe in self.pipes]

    async def connect(self, urls: list[str]) -> Counter[str]:
        shares = [(urls[i::len(self.pipes)],) for i in range(len(self.pipes))]
        total: Counter[str] = Counter()
        for outcome in await self.ask("connect", shares):
            total.update(outcome)
        return total

    async def close(self) -> None:
        await self.ask("close")
        for process in self.processes:
            process.join(timeout=10)
