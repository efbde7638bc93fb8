"""HTTP and WebSocket for the live room (DESIGN.md's contract; docs/live-protocol.md).

The sockets (`/ws/events/{id}?token=&after=&pos=`, and the hosts') are streaming.live_sockets;
`GET /api/events/{id}/changes?after=POS` reads the same stream over HTTP (what a page re-reads
when it finds a hole in its positions, and its safety check).
"""

from __future__ import annotations

import csv
import io
import json
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from events import permissions, sessions
from events.errors import NotFound
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
)
from streaming import bans, live_sockets, messages, room, stream
from streaming.broker import Broker, publish_after_commit
from streaming.live_sockets import VIEWER_COOKIE
from streaming.schemas import BanDone, BlockedWords, LiveMessagePublic, RoomRules, ViewerJoined

router = APIRouter(route_class=JSONRoute)
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]
T = TypeVar("T")


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
    minutes: int | None = Field(default=None, ge=5, le=10)  # 5 or 10 (streaming.bans)


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
                  before: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
                  limit: Annotated[int, Query(ge=1, le=500)] = 100,
                  state: Annotated[str, Query(pattern="^(approved|held)$")] = "approved",
                  ) -> list[LiveMessagePublic]:
    """Approved messages after `after`, oldest first; with `before=SEQ` the `limit` ones just
    before it (a reader paging back from the room's last page). Staff who run the session add
    `state=held` to read the moderation queue."""
    event = sessions.get_visible_event(db, event_id, viewer)
    if state == "held":
        if viewer is None:
            raise NotFound("event_not_found", f"no session with id {event_id}")
        permissions.require_runner(db, viewer, event)
        return answers(LiveMessagePublic,
                       [room.message_for_hosts(m) for m in room.held(db, event_id, limit)])
    found = stream.last_page(db, event_id, before, limit) if before is not None \
        else room.backlog(db, event_id, after, limit)
    return answers(LiveMessagePublic, [room.message_public(m) for m in found])


class RoomChanges(BaseModel):
    """The room's stream after a position: `frames` as the socket sends them (comment,
    removed, pinned; each with its `pos`), and the room's position now."""

    last_pos: int
    frames: list[dict[str, Any]]


@router.get("/api/events/{event_id}/changes")
def list_changes(event_id: Id, db: SessionDep, viewer: OptionalStaffDep,
                 after: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
                 limit: Annotated[int, Query(ge=1, le=500)] = 200) -> RoomChanges:
    """What changed in the room after position `after`, in order (a page that found a hole in
    its positions re-reads from its own, and checks every 15 s that it has missed nothing)."""
    sessions.get_visible_event(db, event_id, viewer)
    last = stream.last_pos(db, event_id)
    frames = [json.loads(f) for f in stream.changes_after(db, event_id, after, limit)]
    return RoomChanges(last_pos=last, frames=frames)


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


# ---- the sockets (streaming.live_sockets) --------------------------------------------------

router.add_api_websocket_route("/ws/events/{event_id}", live_sockets.room_socket)
router.add_api_websocket_route("/ws/events/{event_id}/host", live_sockets.host_socket)
