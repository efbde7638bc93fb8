"""The fan-out's direct path under a real uvicorn (streaming.direct_socket.DirectSocket): each frame
encoded once and the same bytes written to every socket's transport. A viewer that reads gets
every frame in order; one that stops reading is cut off (1013) once a megabyte waits for it,
instead of the server holding its frames without bound; the others are not held up."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import socket
import struct
import threading
import time
from typing import Any

from fastapi import FastAPI, WebSocket
from websockets.sync.client import connect

from streaming import fanout, protocol
from streaming.broker import LocalBroker
from tests.conftest import serve
from tests.helpers import run_async

FRAMES, BIG = 400, 16 * 1024  # 6.4 MB in all: past the limit plus what the kernel buffers


def _app(broker: LocalBroker, seen: dict[str, Any]) -> FastAPI:
    app = FastAPI()

    @app.websocket("/room")
    async def room(websocket: WebSocket) -> None:
        await websocket.accept()
        subscription = broker.subscribe(1, websocket.send_text)
        seen.setdefault("direct", []).append(subscription.direct)
        await websocket.send_text(protocol.encode("hello"))
        await subscription.send_backlog(seen.get("backlog", []))
        await subscription.go_live(len(seen.get("backlog", [])))
        listening = asyncio.ensure_future(websocket.receive())  # notices the client leave
        await asyncio.wait({listening, subscription.ended}, return_when=asyncio.FIRST_COMPLETED)
        listening.cancel()
        code = subscription.ended.result() if subscription.ended.done() else None
        seen.setdefault("ended", []).append(code)
        subscription.close()
        if code == fanout.TOO_SLOW:  # as streaming.live_sockets does; it may be gone by then
            with contextlib.suppress(Exception):
                await websocket.close(code)

    return app


def _silent_socket(url: str) -> socket.socket:
    """A websocket that completes its handshake and then never reads, with a small window."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(f"GET /room HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                 f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n".encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(1)
    assert answer.startswith(b"HTTP/1.1 101"), answer
    return sock


def _wait_for(condition: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_viewer_who_stops_reading_is_cut_off_and_the_others_get_every_frame():
    broker, seen = LocalBroker(), {}
    with serve(_app(broker, seen)) as url:
        silent = _silent_socket(url)
        with connect(url.replace("http", "ws") + "/room", max_size=None) as reader:
            assert json.loads(reader.recv(timeout=5))["type"] == "hello"
            _wait_for(lambda: broker.viewers(1) == 2)
            # Under uvicorn the room writes to the transports itself (the cheap path).
            assert seen["direct"] == [True, True]
            got = []
            for first in range(1, FRAMES + 1, 5):  # five at a time, as fast as the reader reads
                for n in range(first, first + 5):  # from this thread, as a request's commit
                    broker.publish(1, [protocol.encode("comment", seq=n, id=n, pos=n,
                                                       text="长" * (BIG // 3))])
                got += [json.loads(reader.recv(timeout=10))["seq"] for _ in range(5)]
            assert got == list(range(1, FRAMES + 1))
            _wait_for(lambda: fanout.TOO_SLOW in seen.get("ended", []))
            # Gone at once (a reset), as a phone that lost its network eventually is.
            silent.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            silent.close()


def test_a_backlog_larger_than_the_queue_limit_still_arrives_whole_and_in_order():
    """A reconnecting page's backlog goes in one write when it fits under the limit, else frame
    by frame as the socket takes it: it is never cut off for its own backlog."""
    for count in (200, 100):  # 200 short comments (a new page's last page); 1.6 MB of long ones
        size = 100 if count == 200 else BIG // 3
        backlog = [protocol.encode("comment", seq=n, id=n, pos=n, text="长" * size)
                   for n in range(1, count + 1)]
        broker, seen = LocalBroker(), {"backlog": backlog}
        with serve(_app(broker, seen)) as url, \
                connect(url.replace("http", "ws") + "/room", max_size=None) as reader:
            assert json.loads(reader.recv(timeout=5))["type"] == "hello"
            got = [json.loads(reader.recv(timeout=10))["seq"] for _ in range(count)]
            assert got == list(range(1, count + 1))
            assert seen["direct"] == [True]


def test_without_uvicorn_the_frames_go_through_the_sockets_send():
    async def scenario() -> tuple[bool, list[str]]:
        broker, got = LocalBroker(), []

        async def send(frame: str) -> None:
            got.append(frame)

        subscription = broker.subscribe(1, send)
        await subscription.go_live(0)
        broker.publish(1, [protocol.encode("comment", seq=1, id=1, pos=1)])
        await asyncio.sleep(0)
        return subscription.direct, got

    direct, got = run_async(scenario())
    assert not direct and [json.loads(f)["seq"] for f in got] == [1]


def test_approvals_published_the_other_way_round_in_one_tick_arrive_in_order():
    """Two approvals commit one after the other in two threads and publish the other way round
    before the loop comes round: the page gets them in position order (it would otherwise
    re-read the room from its position), the viewers' count where it came."""
    async def scenario() -> list[str]:
        broker, got = LocalBroker(), []

        async def send(frame: str) -> None:
            got.append(frame)

        await broker.subscribe(1, send).go_live(0)

        def commits() -> None:
            broker.publish(1, [protocol.encode("comment", seq=2, id=12, pos=2)])
            broker.publish(1, [protocol.encode("viewers", count=3)])
            broker.publish(1, [protocol.encode("comment", seq=1, id=11, pos=1)])

        publisher = threading.Thread(target=commits)
        publisher.start()
        publisher.join()  # the loop is held meanwhile: all three wait for one flush
        for _ in range(3):
            await asyncio.sleep(0)
        return [json.loads(f).get("pos", "count") for f in got]

    assert run_async(scenario()) == [1, "count", 2]


def test_a_later_approval_published_first_waits_for_the_earlier_one_a_moment():
    """Across flushes too: position 3 waits until 2 comes; position 5 waits for 4 no longer
    than REORDER_WAIT_S (a frame Redis lost: the page re-reads the hole)."""
    async def scenario() -> tuple[list[int], float]:
        broker, got, at = LocalBroker(), [], {}
        loop = asyncio.get_running_loop()

        async def send(frame: str) -> None:
            got.append(json.loads(frame)["pos"])
            at[got[-1]] = loop.time()

        await broker.subscribe(1, send).go_live(0)
        for pos in (1, 3, 2, 5):  # each from a thread of its own, as commits are
            await asyncio.to_thread(broker.publish, 1,
                                    [protocol.encode("comment", seq=pos, id=pos, pos=pos)])
            if pos == 3:
                await asyncio.sleep(0.05)
                assert got == [1]
        sent_5 = loop.time()
        while len(got) < 4:
            await asyncio.sleep(0.01)
        return got, at[5] - sent_5

    got, waited = run_async(scenario())
    assert got == [1, 2, 3, 5]
    assert fanout.REORDER_WAIT_S * 0.8 <= waited < fanout.REORDER_WAIT_S + 1.0


def test_frames_closer_together_than_the_flush_gap_go_out_several_to_a_write():
    """A busy room: ten approvals 5 ms apart, each published from a thread as a commit is. The
    first goes out at once; the rest wait for the flush gap and reach the socket several to a
    write (one write per frame and socket is what a process's fan-out spends its time on),
    none later than FLUSH_GAP_S after it was published, in order."""
    async def scenario() -> tuple[list[list[int]], list[float]]:
        broker, loop = LocalBroker(), asyncio.get_running_loop()
        writes: list[list[int]] = []
        late: list[float] = []
        published: dict[int, float] = {}

        async def send(frame: str) -> None:
            raise AssertionError("the frames go to the socket's transport")

        class Transport:
            def write(self, wire: bytes) -> None:
                frames = [int(n) for n in re.findall(rb'"pos":(\d+)', wire)]
                writes.append(frames)
                late.extend(loop.time() - published[n] for n in frames)

        subscription = broker.subscribe(1, send)
        subscription._direct = Transport()  # type: ignore[assignment]
        await subscription.go_live(0)
        for pos in range(1, 11):
            published[pos] = loop.time()
            await asyncio.to_thread(broker.publish, 1,
                                    [protocol.encode("comment", seq=pos, id=pos, pos=pos)])
            await asyncio.sleep(0.005)
        while sum(map(len, writes)) < 10:
            await asyncio.sleep(0.01)
        return writes, late

    writes, late = run_async(scenario())
    assert [n for frames in writes for n in frames] == list(range(1, 11))
    assert writes[0] == [1] and len(writes) <= 5, writes
    assert max(late) < fanout.FLUSH_GAP_S + 0.1, late


def test_wire_text_is_a_server_text_frame_of_any_length():
    for size in (0, 125, 126, 65535, 65536):
        wire = fanout.wire_text("a" * size)
        assert wire[0] == 0x81 and len(wire) - size in (2, 4, 10)
        length = wire[1] if wire[1] < 126 else int.from_bytes(
            wire[2:4] if wire[1] == 126 else wire[2:10], "big")
        assert length == size and not wire[1] & 0x80  # unmasked, as a server sends
