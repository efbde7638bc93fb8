"""The browser's ingest: `/ws/events/{id}/ingest`, the console's "go live" page sending its
camera (MediaRecorder's WebM chunks, binary frames) to the session's live hub.

Only staff who may run the session, from our own pages (the Origin, as the room's sockets
check it), may open it; the hub may still refuse (`refused` with IngestRefused's code and
message, then a close). The page is told, in JSON text frames, what became of its chunks:
`accepted`, then `stats` every second (bytes and chunks taken, chunks `late` — written to the
encoder more than LATE_S after they came — and `dropped` — the encoder so far behind that its
queue was full — and the hub's state of the session), and `refused`/`error` before a close.

A chunk is never dropped before the first is written: it carries the WebM header, without
which nothing after it can be read. Later drops leave a hole the encoder's demuxer skips at
the next cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from fastapi import APIRouter, WebSocket
from sqlmodel import Session, select

from events import permissions, sessions
from events.errors import DomainError, NotFound, Unauthenticated
from server.deps import in_own_session, staff_of_connection
from streaming.live_hub import Feed, IngestRefused
from streaming.live_sockets import REFUSED_BANNED, REFUSED_TOKEN, REFUSED_UNKNOWN, same_origin
from streaming.models import LiveStream

log = logging.getLogger("kaifang.ingest")
router = APIRouter()

# One binary frame at most: a 1 s MediaRecorder chunk at the page's bitrate is ~300 KB; the
# page cuts larger ones (the bytes are a stream: where they are cut does not matter).
MAX_FRAME_BYTES = 1024 * 1024
# Chunks waiting for the encoder: past this many the next is dropped (with 1 s chunks, the
# encoder is QUEUE_CHUNKS seconds behind).
QUEUE_CHUNKS = 8
LATE_S = 2.0
STATS_EVERY_S = 1.0
# Close codes: the hub refused (4409: a conflict, like a second publisher), no hub runs (1013:
# try again later), a frame over MAX_FRAME_BYTES (1009), a text frame we cannot read (1003).
REFUSED_BY_HUB, NO_HUB, TOO_BIG, UNSUPPORTED = 4409, 1013, 1009, 1003
NO_HUB_MESSAGE = "直播服务没有运行，请联系管理员。"


def _frame(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, **fields}, ensure_ascii=False)


class Tally:
    """What became of the page's chunks (on the loop only)."""

    def __init__(self) -> None:
        self.bytes = 0
        self.chunks = 0
        self.late = 0
        self.dropped = 0
        self.started = time.monotonic()

    def public(self, state: str, signal_at: str | None) -> dict[str, Any]:
        seconds = max(0.001, time.monotonic() - self.started)
        return {"bytes": self.bytes, "chunks": self.chunks, "late": self.late,
                "dropped": self.dropped, "kbps": round(self.bytes * 8 / 1000 / seconds),
                "state": state, "signal_at": signal_at}


@router.websocket("/ws/events/{event_id}/ingest")
async def ingest_socket(websocket: WebSocket, event_id: int) -> None:
    """A staff member's camera, as WebM chunks, into the session's live hub."""
    if not same_origin(websocket):
        log.warning("ingest refused: session %s, a page of another origin", event_id)
        await _refuse(websocket, REFUSED_BANNED, "origin")
        return

    def enter(db: Session) -> int:
        if not 0 < event_id <= 2**31 - 1:
            raise NotFound("event_not_found", f"no session with id {event_id}")
        user = staff_of_connection(websocket, db)
        if user is None:
            raise Unauthenticated("login_required", "sign in as staff first")
        event = sessions.get_visible_event(db, event_id, user)
        permissions.require_runner(db, user, event)
        assert user.id is not None
        return user.id

    try:
        user_id = await in_own_session(websocket, enter)
    except DomainError as exc:
        log.warning("ingest refused: session %s, %s", event_id, exc.code)
        await _refuse(websocket, REFUSED_UNKNOWN if exc.status == 404 else
                      REFUSED_BANNED if exc.status == 403 else REFUSED_TOKEN, exc.code)
        return
    hub = getattr(websocket.app.state, "live_hub", None)
    await websocket.accept()
    if hub is None:
        log.warning("ingest refused: session %s, no live hub runs", event_id)
        await _send_quietly(websocket, _frame("refused", code="unavailable",
                                              message=NO_HUB_MESSAGE))
        await _close(websocket, NO_HUB, "unavailable")
        return
    try:
        feed: Feed = await hub.open_feed(event_id, "browser", "webm")
    except IngestRefused as exc:
        log.warning("ingest refused by the hub: session %s, %s", event_id, exc.code)
        await _send_quietly(websocket, _frame("refused", code=exc.code, message=exc.message))
        await _close(websocket, REFUSED_BY_HUB, exc.code[:100])
        return
    log.info("browser ingest: session %s, staff %s publishes", event_id, user_id)
    await _publish(websocket, event_id, feed)


async def _publish(websocket: WebSocket, event_id: int, feed: Feed) -> None:
    """Reads the page's chunks into a queue a writer empties into the feed, and reports
    every STATS_EVERY_S, until the page stops, goes away or breaks a rule."""
    tally = Tally()
    queue: asyncio.Queue[tuple[bytes, float] | None] = asyncio.Queue(maxsize=QUEUE_CHUNKS)
    writer = asyncio.create_task(_write(feed, queue, tally))
    reporter = asyncio.create_task(_report(websocket, event_id, tally))
    why = "the browser's connection dropped"
    try:
        await _send_quietly(websocket, _frame("accepted", max_frame=MAX_FRAME_BYTES))
        first = True
        while True:
            try:
                message = await websocket.receive()
            except (RuntimeError, OSError):
                break
            if message["type"] == "websocket.disconnect":
                break
            data = message.get("bytes")
            if data is None:
                if _is_stop(message.get("text")):
                    why = ""
                    break
                continue  # a text frame we do not know: pages newer than us may send one
            if len(data) > MAX_FRAME_BYTES:
                log.warning("ingest cut: session %s, a frame of %d bytes", event_id, len(data))
                why = "a frame over the size limit"
                await _send_quietly(websocket, _frame(
                    "error", code="too_big", message="数据块过大（上限 1 MB）。"))
                await _close(websocket, TOO_BIG, "frame too big")
                break
            if writer.done():  # the feed broke: the hub cut the publisher off
                why = "the feed closed"
                await _close(websocket, REFUSED_BY_HUB, "feed closed")
                break
            tally.chunks += 1
            tally.bytes += len(data)
            if queue.full() and not first:
                tally.dropped += 1
                continue
            await queue.put((data, time.monotonic()))  # the first waits for room: never lost
            first = False
    finally:
        reporter.cancel()
        if not writer.done():
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(writer), timeout=5)
        writer.cancel()
        with contextlib.suppress(Exception):
            await feed.close(why)
        log.info("browser ingest: session %s ends (%s): %d chunks, %d late, %d dropped",
                 event_id, why or "stopped", tally.chunks, tally.late, tally.dropped)
        await _close(websocket, 1000, "")


async def _write(feed: Feed, queue: asyncio.Queue[tuple[bytes, float] | None],
                 tally: Tally) -> None:
    """The queue into the feed, one chunk after the other (the feed's own back-pressure holds
    it while the encoder is behind)."""
    while True:
        item = await queue.get()
        if item is None:
            return
        data, came = item
        try:
            await feed.write(data)
        except Exception:  # noqa: BLE001 - the hub's failure ends this publisher, not the server
            log.warning("ingest: the feed refused a chunk", exc_info=True)
            return
        if time.monotonic() - came > LATE_S:
            tally.late += 1


async def _report(websocket: WebSocket, event_id: int, tally: Tally) -> None:
    """`stats` every STATS_EVERY_S, with the hub's state of the session (its LiveStream)."""

    def state(db: Session) -> tuple[str, str | None]:
        found = db.exec(select(LiveStream).where(LiveStream.event_id == event_id)).first()
        if found is None:
            return "idle", None
        return found.state, found.signal_at.isoformat() if found.signal_at else None

    with contextlib.suppress(Exception):
        while True:
            await asyncio.sleep(STATS_EVERY_S)
            now, signal_at = await in_own_session(websocket, state)
            await websocket.send_text(_frame("stats", **tally.public(now, signal_at)))


def _is_stop(text: Any) -> bool:
    try:
        return bool(json.loads(str(text)).get("type") == "stop")
    except (ValueError, AttributeError):
        return False


async def _refuse(websocket: WebSocket, code: int, reason: str) -> None:
    """Accepted, then closed with a code the page can read (a refused handshake says nothing
    to a browser's script)."""
    await websocket.accept()
    await _close(websocket, code, reason)


async def _send_quietly(websocket: WebSocket, text: str) -> None:
    with contextlib.suppress(Exception):
        await websocket.send_text(text)


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        await websocket.close(code, reason=reason)
