"""HTTP and WebSocket for the live room (DESIGN.md's contract; docs/live-protocol.md).

The socket (`/ws/events/{id}?token=&after=`) is served on the event loop; its database work
runs in short sessions of its own in a thread, as the uploads' does. It subscribes to the room
before it reads the backlog, so nothing approved in between is missed, and drops what it already
sent by `seq`, so nothing arrives twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import functools
import io
import json
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from fastapi import APIRouter, Path, Query, Request, Response, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field
from sqlmodel import Session

from events import permissions, sessions
from events.errors import DomainError, NotFound
from events.schemas import answer, answers
from events.timeutil import iso_local
from server.config import Settings
from server.deps import (
    JSONRoute,
    OptionalStaffDep,
    SessionDep,
    StaffDep,
    error_responses,
    in_own_session,
)
from server.security import Signer
from streaming import protocol, room
from streaming.broker import Broker, Subscription, publish_after_commit
from streaming.schemas import BanDone, BlockedWords, LiveMessagePublic, ViewerJoined

router = APIRouter(route_class=JSONRoute)
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]
T = TypeVar("T")
VIEWER_COOKIE = "kaifang_viewer"
# Close codes of a socket refused before it starts (4000 + the HTTP status it stands for).
REFUSED_UNKNOWN, REFUSED_TOKEN, REFUSED_BANNED = 4404, 4401, 4403


class JoinIn(BaseModel):
    nickname: str = Field(min_length=1, max_length=40)


class ModerationIn(BaseModel):
    action: str = Field(max_length=20)


class BanIn(BaseModel):
    viewer_id: int = Field(ge=1, le=2**31 - 1)
    reason: str = Field(min_length=1, max_length=200)


def _broker(app: Any) -> Broker:
    broker: Broker = app.state.broker
    return broker


@router.post("/api/events/{event_id}/viewers", status_code=201)
def join_room(event_id: Id, body: JoinIn, request: Request, response: Response,
              db: SessionDep) -> ViewerJoined:
    """A nickname in a public session's room → {viewer_id, viewer_token} (also a cookie)."""
    event = sessions.get_visible_event(db, event_id, None)
    viewer, token = room.join(db, request.app.state.signer, event, body.nickname)
    settings: Settings = request.app.state.settings
    response.set_cookie(VIEWER_COOKIE, token, max_age=room.VIEWER_TOKEN_MAX_AGE_S,
                        httponly=True, samesite="lax", secure=settings.cookie_secure,
                        path="/")
    return answer(ViewerJoined, {"viewer_id": viewer.id, "viewer_token": token,
                                 "nickname": viewer.nickname})


@router.get("/api/events/{event_id}/comments")
def list_comments(event_id: Id, db: SessionDep, viewer: OptionalStaffDep,
                  after: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
                  limit: Annotated[int, Query(ge=1, le=500)] = 100,
                  state: Annotated[str, Query(pattern="^(approved|held)$")] = "approved",
                  ) -> list[LiveMessagePublic]:
    """Approved messages after `after`, oldest first; staff who run the session add
    `state=held` to read the moderation queue."""
    event = sessions.get_visible_event(db, event_id, viewer)
    if state == "held":
        if viewer is None:
            raise NotFound("event_not_found", f"no session with id {event_id}")
        permissions.require_runner(db, viewer, event)
        found = room.held(db, event_id, limit)
    else:
        found = room.backlog(db, event_id, after, limit)
    return answers(LiveMessagePublic, [room.message_public(m) for m in found])


@router.post("/api/comments/{message_id}/moderation",
             responses=error_responses(409))
def moderate(message_id: Id, body: ModerationIn, request: Request, db: SessionDep,
             user: StaffDep) -> LiveMessagePublic:
    message, frame = room.moderate(db, user, message_id, body.action)
    if frame is not None:
        publish_after_commit(db, _broker(request.app), message.event_id, [frame])
    if body.action in ("reject", "unpin") and message.seq is not None:
        publish_after_commit(db, _broker(request.app), message.event_id,
                             [protocol.encode(protocol.REMOVED if body.action == "reject"
                                              else protocol.PINNED, id=message.id)])
    return answer(LiveMessagePublic, room.message_public(message))


@router.post("/api/events/{event_id}/bans", status_code=201)
def ban_viewer(event_id: Id, body: BanIn, request: Request, db: SessionDep,
               user: StaffDep) -> BanDone:
    removed = room.ban(db, user, event_id, body.viewer_id, body.reason)
    publish_after_commit(db, _broker(request.app), event_id,
                         [protocol.encode(protocol.REMOVED, id=m) for m in removed])
    return answer(BanDone, {"viewer_id": body.viewer_id, "removed": removed})


class BlockedWordsIn(BaseModel):
    words: list[str] = Field(max_length=room.MAX_WORDS)


@router.get("/api/live/blocked-words")
def get_blocked_words(db: SessionDep, user: StaffDep) -> BlockedWords:
    permissions.require_admin(user)
    return answer(BlockedWords, {"words": room.blocked_words(db)})


@router.put("/api/live/blocked-words")
def put_blocked_words(body: BlockedWordsIn, db: SessionDep, user: StaffDep) -> BlockedWords:
    """The district office's list for every room: a message holding one is refused
    (`blocked_word`)."""
    return answer(BlockedWords, {"words": room.set_blocked_words(db, user, body.words)})


@router.get("/api/events/{event_id}/comments.csv", response_class=Response,
            responses={200: {"description": "the room as CSV (UTF-8 with BOM)",
                             "content": {"text/csv": {"schema": {"type": "string"}}}}})
def export_room(event_id: Id, db: SessionDep, user: StaffDep) -> Response:
    """The room for the minutes: the counts, then every approved message with its time (the
    unit and the office)."""
    event = sessions.get_visible_event(db, event_id, user)
    permissions.require_owner(user, event)
    counts = room.tally(db, event_id)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["已通过", "未通过", "待审核", "已移除"])
    writer.writerow([counts["approved"], counts["rejected"], counts["held"], counts["removed"]])
    writer.writerow([])
    writer.writerow(["序号", "类型", "昵称", "内容", "视频时间（秒）", "发送时间"])
    for message in room.backlog(db, event_id, 0, limit=100_000):
        writer.writerow([message.seq, message.kind, _cell(message.author), _cell(message.text),
                         "" if message.video_time is None else round(message.video_time, 1),
                         iso_local(message.created_at)])
    return Response("\ufeff" + buffer.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition":
                             f'attachment; filename="room-{event_id}.csv"'})


def _cell(text: str) -> str:
    """A spreadsheet never runs a cell as a formula (=, +, -, @ at the start)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# ---- the socket ---------------------------------------------------------------------------

@router.websocket("/ws/events/{event_id}")
async def room_socket(websocket: WebSocket, event_id: int, token: str = "",
                      after: int = 0) -> None:
    signer: Signer = websocket.app.state.signer
    token = token or websocket.cookies.get(VIEWER_COOKIE, "")

    def enter(db: Session) -> tuple[Any, str, int]:
        event = sessions.get_visible_event(db, event_id, None)
        viewer = room.viewer_of(db, signer, event_id, token)
        found = db.get(room.LiveRoom, event_id)
        return viewer, event.moderation.value, found.last_seq if found else 0

    try:
        viewer, moderation, _last = await in_own_session(websocket, enter)
    except DomainError as exc:
        # Accepted, then closed with a code a page can read (a refused handshake says nothing
        # to a browser's script): 4404 no such public session, 4401 not this room's viewer,
        # 4403 banned.
        await websocket.accept()
        await websocket.close(REFUSED_UNKNOWN if exc.status == 404 else
                              REFUSED_BANNED if exc.code == protocol.BANNED else REFUSED_TOKEN,
                              reason=exc.code)
        return
    await websocket.accept()
    broker = _broker(websocket.app)
    subscription = broker.subscribe(event_id)
    await anyio.to_thread.run_sync(broker.announce_viewers, event_id)
    sent_up_to = max(0, after)
    try:
        def catch_up(db: Session) -> tuple[int, list[str]]:
            found = db.get(room.LiveRoom, event_id)
            return (found.last_seq if found else 0,
                    [room.comment_frame(m) for m in room.backlog(db, event_id, sent_up_to)])

        last_seq, missed = await in_own_session(websocket, catch_up)
        await websocket.send_text(protocol.encode(
            protocol.HELLO, viewer=room.viewer_public(viewer), moderation=moderation,
            last_seq=last_seq))
        for frame in missed:
            await websocket.send_text(frame)
        if missed:
            sent_up_to = max(sent_up_to, _seq_of(missed[-1]))
        reader = asyncio.create_task(_read(websocket, viewer, event_id))
        sender = asyncio.create_task(_send_frames(websocket, subscription, sent_up_to))
        try:
            done, _pending = await asyncio.wait({reader, sender},
                                                return_when=asyncio.FIRST_COMPLETED)
        finally:
            reader.cancel()
            sender.cancel()
        if sender in done:
            sender.result()  # its failure is the socket's
    except WebSocketDisconnect:
        pass
    finally:
        subscription.close()
        with contextlib.suppress(Exception):
            await anyio.to_thread.run_sync(broker.announce_viewers, event_id)


async def _send_frames(websocket: WebSocket, subscription: Subscription, sent_up_to: int) -> None:
    """The room's frames to one socket, in order, each comment once (by seq), until the
    subscription is cut off. A task of its own: a frame wakes this coroutine alone, not the
    handler under every ASGI layer, nor a task and a wait() made for it; times every viewer,
    that cost more than sending the frame (bench/live_fanout.py)."""
    while (got := await subscription.next()) is not None:
        seq = _seq_of(got)
        if seq is not None:
            if seq <= sent_up_to:
                continue
            sent_up_to = seq
        await websocket.send_text(got)
    await websocket.close(1013)  # too slow to keep up: the page reconnects with after=


@functools.lru_cache(maxsize=256)
def _seq_of(frame: str) -> Any:
    """A comment frame's seq (None for other frames). Every socket of the room is handed the
    same string, so it is parsed once, not once per viewer."""
    if not frame.startswith('{"type":"comment"'):
        return None
    return json.loads(frame).get("seq")


def _store(viewer: Any, sent: protocol.Sent, db: Session) -> Any:
    return room.send(db, viewer, sent)


async def _read(websocket: WebSocket, viewer: Any, event_id: int) -> None:
    """The viewer's frames until the socket closes; each answered on its own."""
    broker = _broker(websocket.app)
    while True:
        try:
            text = await websocket.receive_text()
        except (WebSocketDisconnect, RuntimeError, KeyError):
            return
        asked = protocol.decode(text)
        if isinstance(asked, protocol.BadFrame):
            await websocket.send_text(protocol.error(protocol.BAD_MESSAGE, asked.why))
            continue
        if isinstance(asked, protocol.Vote):
            continue  # questions and votes come with the question list
        try:
            message = await in_own_session(websocket, functools.partial(_store, viewer, asked))
        except DomainError as exc:
            code = exc.code if exc.code in protocol.ERROR_CODES else protocol.BAD_MESSAGE
            await websocket.send_text(protocol.error(code, exc.message))
            continue
        if message.state == "held":
            await websocket.send_text(protocol.encode(protocol.HELD, client_id=asked.client_id,
                                                      id=message.id))
        else:
            broker.publish(event_id, [room.comment_frame(message)])
