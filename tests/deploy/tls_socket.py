"""TLS for websockets' sync client that its two threads may share.

The sync client reads in a thread of its own while the test's thread writes, both on one
`ssl.SSLSocket`. OpenSSL forbids two threads in one TLS session at once, and Python's
SSLSocket does not serialise them: with TLS 1.3 (whose session tickets arrive after the
handshake, so the reader is inside `SSL_read` when the request is written) about one
handshake in 200 never sent its request (`ss` showed the client's 597 bytes: its hello and
Finished, no request) and timed out waiting for the answer, nginx or no nginx
(python-websockets/websockets#1648 saw the same in its own suite).

`SerialTLS` keeps the session in memory (`ssl.MemoryBIO`) behind one lock, and waits for the
network outside it: a reader waiting for bytes never holds up a writer. Given to `connect`
as `sock=` with a `ws://` address, the client speaks through it as through a plain socket.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from typing import Any

RECV_BYTES = 65536


class SerialTLS:
    """A socket-like TLS connection: `recv`, `sendall`, and the rest from the plain socket."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext, server_hostname: str):
        self.sock = sock
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing,
                                     server_hostname=server_hostname)
        self._lock = threading.Lock()
        self._ended = False  # the peer ended the session: every recv from now on is b""
        while True:
            with self._lock:
                try:
                    self._tls.do_handshake()
                    self._flush()
                    break
                except ssl.SSLWantReadError:
                    self._flush()
            self._feed(self.sock.recv(RECV_BYTES))
        self.sock.settimeout(None)  # the client bounds its own waits from here on

    def _flush(self) -> None:
        """Sends what the session has written (under the lock: records leave in order)."""
        pending = self._outgoing.read()
        if pending:
            self.sock.sendall(pending)

    def _feed(self, data: bytes) -> None:
        with self._lock:
            if data:
                self._incoming.write(data)
            else:
                self._incoming.write_eof()

    def recv(self, size: int) -> bytes:
        """Every byte the session can decrypt now (more than `size` if it has them: the client
        waits on the plain socket before each call, so nothing may stay behind in memory), or
        b"" at the end."""
        while True:
            with self._lock:
                if self._ended:
                    return b""
                parts = []
                try:
                    while part := self._tls.read(max(size, RECV_BYTES)):
                        parts.append(part)
                    self._answer_close()  # b"": the peer's close_notify
                except ssl.SSLWantReadError:
                    pass
                except ssl.SSLZeroReturnError:
                    self._answer_close()
                except ssl.SSLEOFError:  # the connection ended without one
                    self._ended = True
                self._flush()  # what reading made the session say (close_notify, a key update)
                if parts or self._ended:
                    return b"".join(parts)
            self._feed(self.sock.recv(RECV_BYTES))

    def _answer_close(self) -> None:
        """The peer ended the session with its close_notify: answer in kind at once (flushed
        by the caller), as SSLSocket does. A server may keep the connection open until it
        hears it."""
        self._ended = True
        with contextlib.suppress(ssl.SSLError):
            self._tls.unwrap()

    def sendall(self, data: bytes | bytearray | memoryview) -> None:
        with self._lock:
            view = memoryview(data)
            while view:
                view = view[self._tls.write(view):]
            self._flush()

    def __getattr__(self, name: str) -> Any:
        """fileno (the client waits on the plain socket), settimeout, shutdown, close, ..."""
        return getattr(self.sock, name)
