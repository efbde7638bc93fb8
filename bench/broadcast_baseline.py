"""The baseline of bench/live_fanout.py: a minimal broadcast server written with the websockets
library alone, serving the same viewers as the live room, so that the room's fan-out can be
compared with what this machine does when nothing but the socket library stands in the way.

A viewer connects to `/viewers` and gets a `hello` frame; whatever the one connection at `/host`
sends is broadcast at once, as it came, to every viewer (`websockets.broadcast`: one write per
connection, no queue, no task per frame). Like `kaifang serve`, it declines permessage-deflate
(a viewer that offers it gets plain frames), and the event loop is uvloop when installed, as
under uvicorn.

    .venv/bin/python bench/broadcast_baseline.py PORT
"""

from __future__ import annotations

import asyncio
import json
import sys

from websockets.asyncio.server import ServerConnection, broadcast, serve

HOST = "127.0.0.1"
HELLO = json.dumps({"type": "hello", "viewer": None, "moderation": "pre", "last_seq": 0})


async def main(port: int) -> None:
    viewers: set[ServerConnection] = set()

    async def handler(connection: ServerConnection) -> None:
        if connection.request is not None and connection.request.path == "/host":
            async for frame in connection:
                broadcast(viewers, frame)
            return
        viewers.add(connection)
        try:
            await connection.send(HELLO)
            await connection.wait_closed()
        finally:
            viewers.discard(connection)

    async with serve(handler, HOST, port, backlog=4096, max_queue=16, compression=None):
        print(f"broadcasting on ws://{HOST}:{port}", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:
        asyncio.run(main(int(sys.argv[1])))
    else:
        uvloop.run(main(int(sys.argv[1])))
