"""HTTP for a session's webcast: its state for the console (`GET /api/events/{id}/live`) and
its live media (`/media/live/<key>/...`), composed from the encoder's files on each request
(any app process answers the same; each process keeps what the database said for CACHE_S,
and the folder as read until it changes).

Who fetches what: the public the master (`master.m3u8`), each rendition's EVENT playlist
(`720p/live.m3u8`) and the segments those list, exactly while the session is public and live
with its webcast on air; staff who may run the session everything, with the preview
(`preview.m3u8`, `720p/preview.m3u8`: every segment, from before the on-air moment too).
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path as FilePath
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import FileResponse
from sqlmodel import Session

from events import permissions, sessions
from events.errors import NotFound
from events.models import Event, EventStatus
from events.schemas import answer
from events.timeutil import utcnow
from server.caching import PRIVATE
from server.deps import (
    SESSION_COOKIE,
    JSONRoute,
    SessionDep,
    StaffDep,
    in_own_session,
    optional_staff,
)
from streaming import live_playlists as playlists
from streaming import live_state
from streaming.live_state import Composed
from streaming.media import MEDIA_TYPES, valid_name
from streaming.models import LiveStream
from streaming.schemas import WebcastPublic
from streaming.storage import LocalStorage

router = APIRouter(prefix="/api", route_class=JSONRoute)
media = APIRouter(route_class=JSONRoute)
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]
LIVE_KEY = re.compile(r"(?P<event>[0-9]{1,10})-live-[0-9a-f]{24}")
CACHE_S = 1.0
GROWING = "public, max-age=1"
LONG = "public, max-age=31536000, immutable"


@router.get("/events/{event_id}/live")
def webcast(event_id: Id, request: Request, db: SessionDep, user: StaffDep) -> WebcastPublic:
    """The webcast as the console shows it (staff who may run the session)."""
    event = sessions.get_visible_event(db, event_id, user)
    permissions.require_runner(db, user, event)
    stream = live_state.stream_of(db, event_id)
    grace = request.app.state.settings.live_grace_s
    storage: LocalStorage = request.app.state.media_storage
    now = utcnow()
    body: dict[str, Any] = {
        "state": "idle", "signal": None, "source": None, "width": 0, "height": 0, "runs": 0,
        "on_air_at": None, "preview_url": None, "last_error": "", "peak_viewers": 0,
        "total_viewers": 0, "recording_id": None}
    if stream is not None:
        body.update(state=stream.state, signal=live_state.signal_of(stream, now, grace),
                    source=stream.source or None, width=stream.width, height=stream.height,
                    runs=stream.runs,
                    on_air_at=stream.on_air_at.isoformat() if stream.on_air_at else None,
                    last_error=stream.last_error, peak_viewers=stream.peak_viewers,
                    total_viewers=stream.total_viewers, recording_id=stream.recording_id)
        if stream.media_key and stream.state != "ended":
            body["preview_url"] = storage.live_url(stream.media_key, playlists.PREVIEW_MASTER)
    return answer(WebcastPublic, body)


@dataclass(frozen=True)
class _Webcast:
    event: Event
    stream: LiveStream
    public: bool  # the public may watch it now


class _Recent:
    """Answers kept for CACHE_S (thread-safe; bounded)."""

    def __init__(self) -> None:
        self._kept: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[bool, Any]:
        with self._lock:
            found = self._kept.get(key)
        return (True, found[1]) if found and found[0] > time.monotonic() else (False, None)

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            if len(self._kept) > 1000:
                self._kept.clear()
            self._kept[key] = (time.monotonic() + CACHE_S, value)


def _recent(request: Request) -> _Recent:
    recent: _Recent | None = getattr(request.app.state, "live_recent", None)
    if recent is None:
        recent = request.app.state.live_recent = _Recent()
    return recent


def _webcast_of(db: Session, key: str, event_id: int) -> _Webcast | None:
    stream = live_state.stream_of(db, event_id)
    event = db.get(Event, event_id)
    if stream is None or event is None or stream.media_key != key:
        return None
    public = sessions.is_public(event) and event.status == EventStatus.live \
        and stream.on_air_at is not None and stream.off_air_at is None \
        and stream.state != "ended"
    db.expunge(stream)
    db.expunge(event)
    return _Webcast(event, stream, public)


def _no_media() -> NotFound:
    return NotFound("not_found", "no such media file")


@media.get("/media/live/{key}/{name:path}", include_in_schema=False)
async def live_file(key: str, name: str, request: Request) -> Response:
    found = LIVE_KEY.fullmatch(key)
    suffix = name[name.rfind("."):].lower() if "." in name else ""
    if found is None or suffix not in (".m3u8", ".ts") or not valid_name(name):
        raise _no_media()
    recent = _recent(request)
    known, webcast = recent.get(f"d:{key}")
    if not known:
        webcast = await in_own_session(request, lambda db: _webcast_of(db, key,
                                                                        int(found["event"])))
        recent.put(f"d:{key}", webcast)
    if webcast is None:
        raise _no_media()
    storage: LocalStorage = request.app.state.media_storage
    folder = storage.live_dir(key)
    # Kept until a rendition's folder changes (ffmpeg renames a playlist into it): a segment
    # is listed as soon as it is written, not a cache time later.
    version = f"c:{key}:{_changed(folder)}"
    known, composed = recent.get(version)
    if not known:
        composed = await anyio.to_thread.run_sync(
            live_state.compose, folder, webcast.stream.on_air_at, webcast.stream.off_air_at)
        recent.put(version, composed)
    if composed is None:
        raise _no_media()
    rendition, _, file = name.partition("/")
    segment = playlists.SEGMENT.fullmatch(file) if suffix == ".ts" else None
    if suffix == ".ts" and (segment is None or rendition not in composed.layout.names):
        raise _no_media()
    # The public: the public playlists, and the segments they list; staff: everything.
    public = webcast.public and (
        int(segment["number"]) in _listed(composed, rendition) if segment is not None
        else not name.endswith(playlists.PREVIEW))
    if not public and (SESSION_COOKIE not in request.cookies or not await in_own_session(
            request, lambda db: _may_run(request, db, webcast.event))):
        raise _no_media()
    if segment is None:
        return Response(_playlist(composed, name), media_type=MEDIA_TYPES[".m3u8"],
                        headers={"Cache-Control": GROWING if public else PRIVATE})
    path = folder / rendition / file
    if not path.is_file():
        raise _no_media()
    return FileResponse(path, media_type=MEDIA_TYPES[".ts"],
                        headers={"Cache-Control": LONG if public else PRIVATE})


def _changed(folder: FilePath) -> int:
    """The latest change of the folder's renditions (0: none yet)."""
    try:
        return max((entry.stat().st_mtime_ns for entry in os.scandir(folder)
                    if entry.is_dir()), default=0)
    except OSError:
        return 0


def _listed(composed: Composed, rendition: str) -> set[int]:
    """The numbers of the segments the public's playlist of this rendition lists."""
    runs = playlists.select(composed.runs[rendition], composed.cut)
    return {segment.number for run in runs for segment in run}


def _may_run(request: Request, db: Session, event: Event) -> bool:
    user = optional_staff(request, db, request.app.state.signer, request.app.state.settings)
    return user is not None and permissions.may_run(db, user, event)


def _playlist(composed: Composed, name: str) -> str:
    if name == playlists.MASTER:
        return playlists.master_playlist(composed.layout, playlists.PUBLIC)
    if name == playlists.PREVIEW_MASTER:
        return playlists.master_playlist(composed.layout, playlists.PREVIEW)
    rendition, _, file = name.partition("/")
    if rendition not in composed.layout.names or file not in (playlists.PUBLIC,
                                                              playlists.PREVIEW):
        raise _no_media()
    cut = composed.cut if file == playlists.PUBLIC else None
    return playlists.media_playlist(playlists.select(composed.runs[rendition], cut))
