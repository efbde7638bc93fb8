"""The room's frames written straight to a socket's transport: each frame encoded once
(`wire_text`) and the same bytes written to every uvicorn websocket (`DirectSocket`), as the
websockets library's broadcast does (streaming.fanout decides who gets what)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from websockets.protocol import State

# What may queue for one socket (while it catches up, or while a send waits), in bytes of
# frames, before it is cut off (1013) rather than let the queue grow without bound; the page
# reconnects from its position and misses nothing.
QUEUE_LIMIT_BYTES = 1 << 20
TOO_SLOW = 1013
Send = Callable[[str], Coroutine[Any, Any, None]]
# How deep DirectSocket.under looks through the ASGI wrappers of a socket's send (Starlette's
# exception handling wraps it once; a middleware may add one or two).
SEND_WRAPPERS = 6


def wire_text(frame: str) -> bytes:
    """A text frame as a server writes it on the wire (RFC 6455 5.2: FIN, opcode 1, unmasked,
    the payload's length in 7, 7+16 or 7+64 bits), for any number of sockets."""
    payload = frame.encode()
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 1 << 16:
        return bytes((0x81, 126)) + size.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + size.to_bytes(8, "big") + payload


class DirectSocket:
    """A socket served by uvicorn's websockets (Sans-I/O) protocol, written to directly: the
    room's frames go to its transport as ready-made bytes (wire_text), as the websockets
    library's broadcast does, and need nothing from the protocol's state machine (a complete,
    uncompressed text frame changes none of it). Frames the socket itself answers still go
    through the ASGI send."""

    __slots__ = ("protocol", "transport")

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol
        self.transport = protocol.transport

    @classmethod
    def under(cls, send: Send) -> DirectSocket | None:
        """The socket under a Starlette WebSocket's `send_text`, when it is uvicorn's websockets
        Sans-I/O protocol; None otherwise (the test client, another protocol): then frames go
        through `send`. With permessage-deflate agreed (`kaifang serve` declines it) the frames
        still go uncompressed, which RFC 7692 allows (RSV1 unset: not compressed)."""
        found = getattr(getattr(send, "__self__", None), "_send", None)
        for _ in range(SEND_WRAPPERS):
            protocol = getattr(found, "__self__", None)
            if protocol is not None:
                usable = type(protocol).__name__ == "WebSocketsSansIOProtocol" \
                    and hasattr(protocol, "transport") and hasattr(protocol, "close_sent") \
                    and hasattr(protocol, "disconnected") and hasattr(protocol, "conn")
                return cls(protocol) if usable else None
            cells = getattr(found, "__closure__", None) or ()
            found = next((cell.cell_contents for cell in cells
                          if callable(getattr(cell, "cell_contents", None))), None)
            if found is None:
                return None
        return None

    def write(self, wire: bytes) -> int | None:
        """Writes one frame's bytes; None when written, else why the socket must end: 0 gone
        (its handler notices), TOO_SLOW when QUEUE_LIMIT_BYTES are already waiting in it."""
        protocol = self.protocol
        if protocol.close_sent or protocol.disconnected or protocol.conn.state is not State.OPEN:
            return 0
        transport = self.transport
        if transport.get_write_buffer_size() + len(wire) > QUEUE_LIMIT_BYTES:
            return TOO_SLOW
        transport.write(wire)
        return None
