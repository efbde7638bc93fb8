"""The fan-out's direct path under a real uvicorn (streaming.fanout.DirectSocket): each frame
encoded once and the same bytes written to every socket's transport. A viewer that reads gets
every frame in order; one that stops reading is cut off (1013) once a megabyte waits for it,
instead of the server holding its frames without bound; the others are not held up."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import struct
import time
from typing import Any

from fastapi import FastAPI, WebSocket
from websockets.sync.client import connect

from streaming import fanout, protocol
from streaming.broker import LocalBroker
from tests.conftest import serve

FRAMES, BIG = 400, 16 * 1024  # 6.4 MB in all: past the limit plus what the kernel buffers


def _app(broker: LocalBroker, seen: dict[str, Any]) -> FastAPI:
    app = FastAPI()

    @app.websocket("/room")
    async def room(websocket: WebSocket) -> None:
        await websocket.accept()
        subscription = broker.subscribe(1, websocket.send_text)
        seen.setdefault("direct", []).append(subscription.direct)
        await subscription.go_live(0)
        await websocket.send_text(protocol.encode("hello"))
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
            loop = broker._loop
            assert loop is not None
            got = []
            for n in range(1, FRAMES + 1):  # as fast as the reader reads
                frame = protocol.encode("comment", seq=n, id=n, pos=n, text="长" * (BIG // 3))
                loop.call_soon_threadsafe(broker.publish, 1, [frame])
                got.append(json.loads(reader.recv(timeout=10))["seq"])
            assert got == list(range(1, FRAMES + 1))
            _wait_for(lambda: fanout.TOO_SLOW in seen.get("ended", []))
            # Gone at once (a reset), as a phone that lost its network eventually is.
            silent.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            silent.close()


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

    direct, got = asyncio.run(scenario())
    assert not direct and [json.loads(f)["seq"] for f in got] == [1]


def test_wire_text_is_a_server_text_frame_of_any_length():
    for size in (0, 125, 126, 65535, 65536):
        wire = fanout.wire_text("a" * size)
        assert wire[0] == 0x81 and len(wire) - size in (2, 4, 10)
        length = wire[1] if wire[1] < 126 else int.from_bytes(
            wire[2:4] if wire[1] == 126 else wire[2:10], "big")
        assert length == size and not wire[1] & 0x80  # unmasked, as a server sends
