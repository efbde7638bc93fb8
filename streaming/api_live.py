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
import time
from collections.abc import Coroutine
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

import anyio.to_thread
from fastapi import APIRouter, Path, Query, Request, Response, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field
from sqlmodel import Session

from events import permissions, sessions
from events.errors import DomainError, NotFound, Unauthenticated
from events.models import Event
from events.schemas import answer, answers
from events.timeutil import iso_local
from server.clientaddr import client_of
from server.config import Settings
from server.deps import (
    JSONRoute,
    OptionalStaffDep,
    SessionDep,
    StaffDep,
    error_responses,
    in_own_session,
    staff_of_connection,
)
from server.security import Signer
from streaming import bans, messages, protocol, questions, room, tallies
from streaming.broker import TOO_SLOW, Broker, Subscription, publish_after_commit
from streaming.schemas import BanDone, BlockedWords, LiveMessagePublic, RoomRules, ViewerJoined

router = APIRouter(route_class=JSONRoute)
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]
T = TypeVar("T")
VIEWER_COOKIE = "kaifang_viewer"
# Close codes of a socket refused before it starts (4000 + the HTTP status it stands for).
REFUSED_UNKNOWN, REFUSED_TOKEN, REFUSED_BANNED = 4404, 4401, 4403


class JoinIn(BaseModel):
    nickname: str = Field(min_length=1, max_length=40)
    # The manage token of the viewer's registration (their ticket's link): shows as registered.
    manage_token: str | None = Field(default=None, max_length=500)


class ModerationIn(BaseModel):
    action: str = Field(max_length=20)


class ReplyIn(BaseModel):
    text: str = Field(min_length=1, max_length=2000)


class RoomIn(BaseModel):
    closed: bool | None = None
    slow_mode_s: int | None = Field(default=None, ge=0, le=room.MAX_SLOW_MODE_S)
    moderation: str | None = Field(default=None, pattern="^(pre|post)$")


class BanIn(BaseModel):
    viewer_id: int = Field(ge=1, le=2**31 - 1)
    reason: str = Field(min_length=1, max_length=200)
    # A timeout (streaming.bans.TIMEOUT_MINUTES); none: for the rest of the session.
    minutes: int | None = Field(default=None, ge=1, le=60)


def _broker(app: Any) -> Broker:
    broker: Broker = app.state.broker
    return broker


@router.post("/api/events/{event_id}/viewers", status_code=201)
def join_room(event_id: Id, body: JoinIn, request: Request, response: Response,
              db: SessionDep) -> ViewerJoined:
    """A nickname in a public session's room → {viewer_id, viewer_token} (also a cookie)."""
    event = sessions.get_visible_event(db, event_id, None)
    viewer, token = room.join(db, request.app.state.signer, event, body.nickname,
                              client_of(request), manage_token=body.manage_token,
                              ticket=request.cookies.get(room.ticket_cookie(event_id)))
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
        return answers(LiveMessagePublic,
                       [room.message_for_hosts(m) for m in room.held(db, event_id, limit)])
    return answers(LiveMessagePublic,
                   [room.message_public(m) for m in room.backlog(db, event_id, after, limit)])


@router.post("/api/comments/{message_id}/moderation",
             responses=error_responses(409))
def moderate(message_id: Id, body: ModerationIn, request: Request, db: SessionDep,
             user: StaffDep) -> LiveMessagePublic:
    message, frames = messages.moderate(db, user, message_id, body.action)
    publish_after_commit(db, _broker(request.app), message.event_id, frames)
    return answer(LiveMessagePublic, room.message_public(message))


@router.post("/api/comments/{message_id}/replies", status_code=201,
             responses=error_responses(409))
def reply(message_id: Id, body: ReplyIn, request: Request, db: SessionDep,
          user: StaffDep) -> LiveMessagePublic:
    """A host's reply (官方回复) to a message; a held message is approved with it."""
    message, frames = room.reply(db, user, message_id, body.text)
    publish_after_commit(db, _broker(request.app), message.event_id, frames)
    return answer(LiveMessagePublic, room.message_public(message))


@router.get("/api/events/{event_id}/room")
def room_rules(event_id: Id, db: SessionDep, viewer: OptionalStaffDep) -> RoomRules:
    """Whether the room takes messages, its moderation and its slow mode."""
    event = sessions.get_visible_event(db, event_id, viewer)
    return answer(RoomRules, room.room_public(event, db.get(room.LiveRoom, event_id)))


@router.put("/api/events/{event_id}/room")
def set_room_rules(event_id: Id, body: RoomIn, request: Request, db: SessionDep,
                   user: StaffDep) -> RoomRules:
    """A host closes or reopens the room, sets slow mode, or switches pre- and
    post-moderation while it runs; the room hears it (a `room` frame)."""
    rules, frames = room.configure(db, user, event_id, closed=body.closed,
                                   slow_mode_s=body.slow_mode_s, moderation=body.moderation)
    publish_after_commit(db, _broker(request.app), event_id, frames)
    return answer(RoomRules, rules)


@router.post("/api/events/{event_id}/bans", status_code=201)
def ban_viewer(event_id: Id, body: BanIn, request: Request, db: SessionDep,
               user: StaffDep) -> BanDone:
    removed, frames = bans.ban(db, user, event_id, body.viewer_id, body.reason,
                               minutes=body.minutes)
    publish_after_commit(db, _broker(request.app), event_id, frames)
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


# ---- the sockets --------------------------------------------------------------------------

@router.websocket("/ws/events/{event_id}")
async def room_socket(websocket: WebSocket, event_id: int, token: str = "",
                      after: int = 0) -> None:
    """A viewer's socket: the room's frames, and the viewer's comments and questions."""
    signer: Signer = websocket.app.state.signer
    token = token or websocket.cookies.get(VIEWER_COOKIE, "")
    sender = room.address_key(signer, client_of(websocket))

    def enter(db: Session) -> Any:
        sessions.get_visible_event(db, _known(event_id), None)
        return room.viewer_of(db, signer, event_id, token)

    try:
        viewer = await in_own_session(websocket, enter)
    except DomainError as exc:
        await _refuse(websocket, exc)
        return
    await websocket.accept()
    broker = _broker(websocket.app)
    subscription = broker.subscribe(event_id, websocket.send_text)
    await anyio.to_thread.run_sync(broker.announce_viewers, event_id)
    try:
        await _stream(websocket, subscription, event_id, after,
                      {"viewer": room.viewer_public(viewer)},
                      _read(websocket, viewer, event_id, sender))
    finally:
        subscription.close()
        with contextlib.suppress(Exception):
            await anyio.to_thread.run_sync(broker.announce_viewers, event_id)


@router.websocket("/ws/events/{event_id}/host")
async def host_socket(websocket: WebSocket, event_id: int, after: int = 0) -> None:
    """A host's socket (the console's): the room's frames, and the queue's — `queued` when a
    message is held, `decided` when any host, on any process, decides one. Signed in by the
    staff cookie; a page of another site may not open it (its Origin is checked)."""
    if not _same_origin(websocket):
        await websocket.accept()
        await websocket.close(REFUSED_BANNED, reason="origin")
        return

    def enter(db: Session) -> Any:
        user = staff_of_connection(websocket, db)
        if user is None:
            raise Unauthenticated("login_required", "sign in as staff first")
        event = sessions.get_visible_event(db, _known(event_id), user)
        permissions.require_runner(db, user, event)
        return user

    try:
        user = await in_own_session(websocket, enter)
    except DomainError as exc:
        await _refuse(websocket, exc)
        return
    await websocket.accept()
    broker = _broker(websocket.app)
    subscription = broker.subscribe(event_id, websocket.send_text, hosts=True)
    # How many watch now, after `hello` (it waits with the room's frames): the console shows it
    # at once, not when someone next joins or leaves.
    count = await anyio.to_thread.run_sync(broker.viewers, event_id)
    subscription.offer(protocol.encode(protocol.VIEWERS, count=count), None)
    try:
        await _stream(websocket, subscription, event_id, after,
                      {"host": {"id": user.id, "name": user.display_name or user.username}},
                      _listen_only(websocket))
    finally:
        subscription.close()


def _known(event_id: int) -> int:
    """A session id the database can hold (the socket's path is not checked as HTTP's is)."""
    if not 0 < event_id <= 2**31 - 1:
        raise NotFound("event_not_found", f"no session with id {event_id}")
    return event_id


async def _refuse(websocket: WebSocket, exc: DomainError) -> None:
    """Accepted, then closed with a code a page can read (a refused handshake says nothing to
    a browser's script): 4404 no such public session, 4401 not this room's viewer or not signed
    in, 4403 banned or not a host of this session."""
    await websocket.accept()
    await websocket.close(REFUSED_UNKNOWN if exc.status == 404 else
                          REFUSED_BANNED if exc.status == 403 else REFUSED_TOKEN,
                          reason=exc.code)


def _same_origin(websocket: WebSocket) -> bool:
    """A browser names the page that opens a socket; the host socket takes only our own pages
    (the service's address, or the one the request was made to). Clients that are not browsers
    send no Origin and carry no one else's cookie."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    settings: Settings = websocket.app.state.settings
    ours = {urlsplit(settings.public_url).netloc, websocket.headers.get("host", "")}
    return urlsplit(origin).netloc in ours


async def _stream(websocket: WebSocket, subscription: Subscription, event_id: int, after: int,
                  hello: dict[str, Any], reader: Coroutine[Any, Any, None]) -> None:
    """`hello`, then the backlog after `after` page by page, then the room as it happens (the
    broker writes it). Subscribed before the backlog is read, so nothing approved in between is
    missed; a comment already sent is not sent again (by `seq`), so nothing arrives twice."""
    sent_up_to = min(max(0, after), 2**31 - 1)
    task: asyncio.Task[None] | None = None
    try:
        def rules(db: Session) -> tuple[dict[str, Any], int, list[int]]:
            event = db.get(Event, event_id)
            if event is None:  # deleted since the socket was let in
                raise NotFound("event_not_found", f"no session with id {event_id}")
            found = db.get(room.LiveRoom, event_id)
            return (room.room_public(event, found), found.last_seq if found else 0,
                    room.pinned_ids(db, event_id))

        shown, last_seq, pinned = await in_own_session(websocket, rules)
        await websocket.send_text(protocol.encode(
            protocol.HELLO, **hello, moderation=shown["moderation"], last_seq=last_seq,
            open=shown["open"], slow_mode_s=shown["slow_mode_s"], pinned=pinned))
        while True:  # the backlog, a page at a time
            def page(db: Session, since: int = sent_up_to) -> list[str]:
                return [room.comment_frame(m) for m in room.backlog(db, event_id, since)]

            missed = await in_own_session(websocket, page)
            for frame in missed:
                await websocket.send_text(frame)
            if missed:
                sent_up_to = max(sent_up_to, protocol.seq_of(missed[-1]) or 0)
            if len(missed) < room.BACKLOG_PAGE:
                break
        await subscription.go_live(sent_up_to)
        task = asyncio.create_task(reader)
        either: set[asyncio.Future[Any]] = {task, subscription.ended}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if subscription.ended.done() and subscription.ended.result() == TOO_SLOW:
            await websocket.close(TOO_SLOW)  # the page reconnects with after=
    except (WebSocketDisconnect, DomainError):
        pass
    finally:
        if task is not None:
            task.cancel()
        else:
            reader.close()


def _store(viewer: Any, sent: protocol.Sent, sender: str, db: Session) -> Any:
    return messages.send(db, viewer, sent, sender_key=sender)


async def _vote(websocket: WebSocket, viewer: Any, event_id: int,
                asked: protocol.Vote) -> None:
    """A `vote` frame (streaming.questions): no answer of its own when counted, the room's
    next `votes` frame carries the new count to everyone; an `error` frame when refused."""
    try:
        question = await in_own_session(
            websocket, functools.partial(questions.vote_from_room, viewer, asked.question_id))
    except DomainError as exc:
        code = exc.code if exc.code in protocol.ERROR_CODES else protocol.BAD_MESSAGE
        await websocket.send_text(protocol.error(code, exc.message))
        return
    await anyio.to_thread.run_sync(tallies.vote_counts(websocket.app.state).counted, event_id,
                                   question.id or 0, question.votes)


class _Pace:
    """Frames a socket may send: a burst of BURST, then PER_S a second. Past it a frame is
    answered `rate_limited` without touching the database (each frame would take the session's
    lock), whatever the number of nicknames or sockets behind the flood."""

    BURST, PER_S = 10, 3.0

    def __init__(self) -> None:
        self.tokens = float(self.BURST)
        self.at = time.monotonic()

    def admit(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.BURST, self.tokens + (now - self.at) * self.PER_S)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


async def _read(websocket: WebSocket, viewer: Any, event_id: int, sender: str) -> None:
    """The viewer's frames until the socket closes; each answered on its own."""
    broker = _broker(websocket.app)
    pace = _Pace()
    while True:
        try:
            text = await websocket.receive_text()
        except (WebSocketDisconnect, RuntimeError, KeyError):
            return
        if not pace.admit():
            await websocket.send_text(protocol.error(
                protocol.RATE_LIMITED, "too many frames; wait a moment"))
            continue
        asked = protocol.decode(text)
        if isinstance(asked, protocol.BadFrame):
            await websocket.send_text(protocol.error(protocol.BAD_MESSAGE, asked.why))
            continue
        if isinstance(asked, protocol.Vote):  # questions: a vote, refused with an error frame
            await _vote(websocket, viewer, event_id, asked)
            continue
        try:
            message, frames = await in_own_session(
                websocket, functools.partial(_store, viewer, asked, sender))
        except DomainError as exc:
            code = exc.code if exc.code in protocol.ERROR_CODES else protocol.BAD_MESSAGE
            await websocket.send_text(protocol.refusal(code, exc.message, exc.retry_after_s))
            continue
        if message.state == "held":
            await websocket.send_text(protocol.encode(protocol.HELD, client_id=asked.client_id,
                                                      id=message.id))
        # In a thread: with Redis, publishing is a network call the loop must not wait on.
        if frames.hosts:
            await anyio.to_thread.run_sync(broker.publish_hosts, event_id, frames.hosts)
        if frames.room:
            await anyio.to_thread.run_sync(broker.publish, event_id, frames.room)


async def _listen_only(websocket: WebSocket) -> None:
    """A host's socket only listens (hosts decide over HTTP): any frame is `bad_message`."""
    while True:
        try:
            await websocket.receive_text()
        except (WebSocketDisconnect, RuntimeError, KeyError):
            return
        await websocket.send_text(protocol.error(
            protocol.BAD_MESSAGE, "the host socket only listens: decide over HTTP"))
