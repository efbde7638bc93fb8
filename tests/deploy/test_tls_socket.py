"""SerialTLS (tls_socket.py), the TLS of the nginx smoke test's websockets: every handshake is
answered, and a closed session ends at once. With the client's own TLS (`wss://` and an
SSLContext) 14 handshakes in 5,000 went unanswered here (TLS 1.3, a server on this machine,
no nginx); the smoke test saw it as a host's socket that hung for 30 s."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.sync.client import ClientConnection, connect

from tests.deploy.nginx import make_cert
from tests.deploy.tls_socket import SerialTLS

HOST = "kaifang.test"


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A websockets server over TLS 1.3 (session tickets after the handshake, close_notify
    answered before it closes), which says hello and echoes."""
    cert, key = make_cert(tmp_path, HOST)
    ready: list[int] = []
    stop = threading.Event()

    async def handler(ws: ServerConnection) -> None:
        await ws.send("hello")
        async for message in ws:
            await ws.send(message)

    async def run() -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        async with serve(handler, "127.0.0.1", 0, ssl=context) as server:
            ready.append(server.sockets[0].getsockname()[1])
            while not stop.is_set():
                await asyncio.sleep(0.05)

    thread = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not ready and time.monotonic() < deadline:
        time.sleep(0.01)
    yield ready[0], cert
    stop.set()
    thread.join(5)


def _open(port: int, cert: Path) -> ClientConnection:
    context = ssl.create_default_context(cafile=str(cert))
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    return connect(f"ws://{HOST}:{port}/", sock=SerialTLS(sock, context, HOST),  # type: ignore[arg-type]
                   open_timeout=5, close_timeout=5)


def test_every_handshake_is_answered_and_every_close_is_prompt(tls_server):
    port, cert = tls_server
    started = time.monotonic()
    for _ in range(500):
        with _open(port, cert) as ws:
            assert ws.recv(timeout=5) == "hello"
    # 500 with each close in milliseconds; one close_timeout (5 s) would show.
    assert time.monotonic() - started < 30


def test_both_threads_speak_through_one_session(tls_server):
    """The client reads in its own thread while this one writes: 200 messages and their
    echoes, in order."""
    port, cert = tls_server
    with _open(port, cert) as ws:
        assert ws.recv(timeout=5) == "hello"
        for n in range(200):
            ws.send(f"m{n}")
        assert [ws.recv(timeout=5) for _ in range(200)] == [f"m{n}" for n in range(200)]
        started = time.monotonic()
    assert time.monotonic() - started < 1  # the close is heard at once
