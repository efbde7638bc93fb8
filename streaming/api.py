"""HTTP for recordings: upload (whole or resumable), the transcode job, playback, media files.

The upload endpoints are `async`: they stream the body to disk on the event loop (writes go to
a thread), so a slow phone on a long upload holds no request thread and no database
connection. Their database work (who is asking, the session, the job) runs in a thread with a
short session of its own, before the body is read and after it is on disk.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path as FilePath
from typing import Annotated, TypeVar

import anyio.to_thread
from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import delete, update
from sqlmodel import Session, col, select
from starlette.requests import ClientDisconnect

from events import permissions, sessions
from events.errors import Conflict, Invalid, NotFound
from events.models import Event, StaffUser
from events.schemas import answer
from events.timeutil import utcnow
from server.caching import PRIVATE
from server.config import Settings
from server.deps import (
    SESSION_COOKIE,
    JSONRoute,
    OptionalStaffDep,
    SessionDep,
    StaffDep,
    error_responses,
    in_own_session,
    optional_staff,
    require_staff,
)
from server.security import Signer
from streaming import jobs, live_state, transcode, upload_room
from streaming.media import (
    MEDIA_TYPES,
    MediaGate,
    is_media_playlist,
    parse_key,
    playback_state,
    playing_of,
    premiere_position,
    public_may_fetch,
    read_playlist,
    released,
    valid_name,
)
from streaming.models import Upload
from streaming.playback import playback_of
from streaming.probe import probe
from streaming.schemas import JobCreated, JobPublic, PlaybackPublic, UploadPublic
from streaming.storage import LocalStorage
from streaming.uploads import MAX_DIGITS, TooLarge, parse_offset, receive_chunk, receive_multipart

router = APIRouter(prefix="/api", route_class=JSONRoute)
media = APIRouter(route_class=JSONRoute)
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]
UploadToken = Annotated[str, Path(min_length=20, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
T = TypeVar("T")
# One chunk of a resumable upload: small enough to retry cheaply on a phone.
MAX_CHUNK = 64 * 1024 * 1024
_upload_locks: dict[int, asyncio.Lock] = {}


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _storage(request: Request) -> LocalStorage:
    storage: LocalStorage = request.app.state.media_storage
    return storage


def _uploader(request: Request, db: Session, event_id: int) -> tuple[StaffUser, Event]:
    """The signed-in staff member who may give this session a recording: its unit's editors
    and the office."""
    signer: Signer = request.app.state.signer
    user = require_staff(request, db, signer, _settings(request))
    event = sessions.get_visible_event(db, event_id, user)
    permissions.require_owner(user, event)
    if event.status in jobs.NO_RECORDING:
        raise Conflict("event_cancelled", "a cancelled session takes no recording")
    return user, event


def _declared_length(request: Request, limit: int) -> int | None:
    """The body's Content-Length when it is a number; 413 over the limit (and a multipart's
    headers)."""
    length = request.headers.get("content-length", "")
    if not (length.isascii() and length.isdigit()):
        return None
    if len(length) > MAX_DIGITS or int(length) > limit + 64 * 1024:
        raise TooLarge(limit)
    return int(length)


def _make_room(request: Request, db: Session, size: int, user: StaffUser | None = None) -> None:
    """409 too_many_uploads, 507 no_space (streaming.upload_room)."""
    settings = _settings(request)
    upload_room.make_room(db, size, free=upload_room.free_bytes(_storage(request).root),
                          margin=settings.upload_disk_margin_bytes,
                          user_id=user.id if user else None,
                          max_open=settings.max_open_uploads if user else None)


async def _accept(request: Request, event_id: int, file: FilePath, size: int, *,
                  keep_unless_invalid: bool = False) -> JobCreated:
    """Probes the file on disk (in a thread) and queues its job; the file moves to the store's
    sources. A file refused is deleted; with `keep_unless_invalid` (a resumable upload, whose
    bytes took long to send) only one that is not a recording, so a retry can finish it."""
    storage = _storage(request)
    try:
        if size == 0:
            raise Invalid("empty_file", "the file is empty", field="file")
        source = await anyio.to_thread.run_sync(probe, file)

        def queue(db: Session) -> int:
            user, event = _uploader(request, db, event_id)
            recording, job = jobs.enqueue(db, user, event, source, size)
            assert recording.id is not None and job.id is not None
            try:
                storage.keep_source(file, recording.id)
            except FileNotFoundError:  # another request (another process) took it first
                raise Conflict("upload_busy", "another request is finishing this upload") from None
            return job.id

        job_id = await in_own_session(request, queue)
        transcode.wake()  # committed: this process's transcoder takes it now
    except Invalid:
        storage.discard_upload(file)
        raise
    finally:
        if not keep_unless_invalid:
            storage.discard_upload(file)  # gone already when kept
    return answer(JobCreated, {"job_id": job_id})


@router.post("/events/{event_id}/recording", status_code=202,
             responses=error_responses(401, 403, 409, 413, 422))
async def upload_recording(event_id: Id, request: Request) -> JobCreated:
    """The contract's upload: one multipart `file` part → 202 {job_id}. A disk that fills up
    while the body is written: 507 `no_space`, and nothing of it is kept."""
    limit = _settings(request).max_upload_bytes

    def admit(db: Session) -> None:
        _uploader(request, db, event_id)
        declared = _declared_length(request, limit)
        if declared is not None:  # a chunked body: its size is known only as it comes
            _make_room(request, db, declared)

    await in_own_session(request, admit)
    target = _storage(request).new_upload()
    try:
        size = await receive_multipart(request.stream(), request.headers.get("content-type", ""),
                                       target, limit)
    except BaseException:
        _storage(request).discard_upload(target)
        raise
    return await _accept(request, event_id, target, size)


class UploadIn(BaseModel):
    size: int = Field(ge=1)


def _upload_public(upload: Upload) -> UploadPublic:
    return answer(UploadPublic, {
        "upload_id": upload.token, "event_id": upload.event_id, "size": upload.size_bytes,
        "offset": upload.received, "job_id": upload.job_id,
        "url": f"/api/uploads/{upload.token}"})


@router.post("/events/{event_id}/uploads", status_code=201,
             responses=error_responses(401, 403, 409, 413))
async def open_upload(event_id: Id, body: UploadIn, request: Request) -> UploadPublic:
    """A resumable upload of `size` bytes: send it in PATCHes to its `url`. A few open at once
    per person (409 too_many_uploads), and only as many as the disk holds (507 no_space)."""
    limit = _settings(request).max_upload_bytes
    if body.size > limit:
        raise TooLarge(limit)
    path = _storage(request).new_upload()

    def open_one(db: Session) -> UploadPublic:
        user, event = _uploader(request, db, event_id)
        assert user.id is not None and event.id is not None
        _make_room(request, db, body.size, user)
        upload = Upload(token=secrets.token_urlsafe(24), event_id=event.id, user_id=user.id,
                        size_bytes=body.size, path=path.name)
        db.add(upload)
        db.flush()
        return _upload_public(upload)

    return await in_own_session(request, open_one)


def _own_upload(request: Request, db: Session, token: str) -> Upload:
    signer: Signer = request.app.state.signer
    user = require_staff(request, db, signer, _settings(request))
    found = db.exec(select(Upload).where(Upload.token == token)).first()
    if found is None or found.user_id != user.id:
        raise NotFound("upload_not_found", "no such upload")
    return found


@router.get("/uploads/{token}", responses=error_responses(401, 403))
async def upload_state(token: UploadToken, request: Request) -> UploadPublic:
    """Where a resumable upload stands: go on from `offset`."""
    return await in_own_session(request, lambda db: _upload_public(_own_upload(request, db, token)))


@router.patch("/uploads/{token}", status_code=204,
              responses=error_responses(401, 403, 409, 413, 422))
async def upload_chunk(token: UploadToken, request: Request) -> Response:
    """Appends the body at `Upload-Offset`, which must be the server's; answers 204 with the
    new `Upload-Offset`. A wrong offset is 409 `offset_mismatch` with the right one; a disk
    that fills up mid-chunk 507 `no_space`, the chunk cut off (the offset stays)."""
    offset = parse_offset(request.headers.get("upload-offset"))
    upload = await in_own_session(request, lambda db: _own_upload(request, db, token))
    assert upload.id is not None
    if upload.job_id is not None:
        raise Conflict("upload_finished", "this upload is complete")
    if offset != upload.received:
        raise Conflict("offset_mismatch", "the server holds another offset",
                       offset=upload.received)
    _declared_length(request, min(MAX_CHUNK, upload.size_bytes - offset))
    lock = _upload_locks.setdefault(upload.id, asyncio.Lock())
    if lock.locked():
        raise Conflict("upload_busy", "another request is sending this upload")
    try:
        async with lock:
            received = await _receive(request, upload, offset)
    finally:
        _upload_locks.pop(upload.id, None)
    return Response(status_code=204, headers={"Upload-Offset": str(received)})


async def _receive(request: Request, upload: Upload, offset: int) -> int:
    """The chunk on disk, then its new offset in the database (if nobody moved it meanwhile)."""
    target = _storage(request).root / "uploads" / upload.path
    try:
        received = await receive_chunk(request.stream(), target, offset, upload.size_bytes)
    except ClientDisconnect:  # the phone went away: it sends the chunk again from `offset`
        raise Invalid("disconnected", "the connection closed before the chunk arrived") from None

    def record(db: Session) -> int:
        moved = db.execute(update(Upload).where(col(Upload.id) == upload.id,
                                                col(Upload.received) == offset)
                           .values(received=received, updated_at=utcnow())
                           .returning(col(Upload.id))).first()
        if moved is None:
            raise Conflict("offset_mismatch", "the upload moved on meanwhile")
        return received

    return int(await in_own_session(request, record))


@router.post("/uploads/{token}/recording", status_code=202,
             responses=error_responses(401, 403, 409, 422))
async def finish_upload(token: UploadToken, request: Request) -> JobCreated:
    """A complete upload becomes the session's recording: 202 {job_id}, as the whole upload.
    Clicks that come together are taken one at a time: the later ones get the same job. A file
    that is not a recording ends the upload (422, then 404: start again); any other refusal
    keeps it, to finish later."""
    first = await in_own_session(request, lambda db: _own_upload(request, db, token))
    assert first.id is not None
    async with _upload_locks.setdefault(first.id, asyncio.Lock()):
        upload = await in_own_session(request, lambda db: _own_upload(request, db, token))
        if upload.job_id is not None:
            return answer(JobCreated, {"job_id": upload.job_id})  # a double click: the same job
        if upload.received != upload.size_bytes:
            raise Conflict("upload_incomplete", "the upload is not complete",
                           offset=upload.received, size=upload.size_bytes)
        target = _storage(request).root / "uploads" / upload.path
        try:
            created = await _accept(request, upload.event_id, target, upload.received,
                                    keep_unless_invalid=True)
        except Invalid:
            await in_own_session(request, lambda db: db.execute(
                delete(Upload).where(col(Upload.id) == upload.id)))
            raise

        def link(db: Session) -> None:
            db.execute(update(Upload).where(col(Upload.id) == upload.id)
                       .values(job_id=created.job_id, updated_at=utcnow()))

        await in_own_session(request, link)
    _upload_locks.pop(first.id, None)
    return created


@router.get("/jobs/{job_id}")
def job_state(job_id: Id, db: SessionDep, user: StaffDep) -> JobPublic:
    job = jobs.get_job(db, job_id)
    event = sessions.get_visible_event(db, job.event_id, user)
    if not permissions.may_run(db, user, event):
        raise NotFound("job_not_found", f"no job with id {job_id}")
    return answer(JobPublic, jobs.job_public(job))


# ---- playback -------------------------------------------------------------------------------

@router.get("/events/{event_id}/playback")
def playback(event_id: Id, request: Request, db: SessionDep,
             viewer: OptionalStaffDep) -> PlaybackPublic:
    event = sessions.get_visible_event(db, event_id, viewer)
    assert event.id is not None
    now, storage = utcnow(), _storage(request)
    live = live_state.playback_live(db, storage, event, now, _settings(request).live_grace_s)
    return answer(PlaybackPublic,
                  playback_of(event, jobs.published(db, event.id), storage, now, live))


# ---- media files ----------------------------------------------------------------------------

# A published folder never changes (a new upload gets a new key): segments and pictures are
# kept for a year; playlists briefly (a folder may be withdrawn); a premiere's growing one less.
LONG = "public, max-age=31536000, immutable"
SHORT = "public, max-age=10"
GROWING = "public, max-age=1"
NOT_YET = "no-store"


def _gate(request: Request) -> MediaGate:
    gate: MediaGate | None = getattr(request.app.state, "media_gate", None)
    if gate is None:
        gate = request.app.state.media_gate = MediaGate()
    return gate


def _may_preview(request: Request, db: Session, event: Event) -> bool:
    """Staff who may run the session (its unit, an admin, a host assigned to it) preview its
    recording in any state: the console's preview."""
    user = optional_staff(request, db, request.app.state.signer, _settings(request))
    return user is not None and permissions.may_run(db, user, event)


def _no_media() -> NotFound:
    return NotFound("not_found", "no such media file")


@media.get("/media/hls/{key}/{name:path}", include_in_schema=False)
async def media_file(key: str, name: str, request: Request) -> Response:
    """HLS as static files, with their types, caching and range requests (FileResponse), to
    whom and as far as streaming.media allows."""
    suffix = FilePath(name).suffix.lower()
    if suffix not in MEDIA_TYPES or not valid_name(name) or parse_key(key) is None:
        raise _no_media()
    gate, now = _gate(request), utcnow()
    known, playing = gate.recall(key, now)
    if not known:
        playing = await in_own_session(request, lambda db: playing_of(db, key))
        gate.remember(key, playing, now)
    if playing is None:
        raise _no_media()
    storage = _storage(request)
    state = playback_state(playing, storage, now)
    public = public_may_fetch(playing, state)
    if not public and (SESSION_COOKIE not in request.cookies or not await in_own_session(
            request, lambda db: _may_preview(request, db, playing.event))):
        raise _no_media()
    folder = storage.hls_root / key
    path = folder / name
    if not path.is_file():
        raise _no_media()
    cache = SHORT if suffix == ".m3u8" else LONG
    if state == "premiere":
        position = premiere_position(playing, now)
        if is_media_playlist(name):
            return Response(read_playlist(path).event_text(position),
                            media_type=MEDIA_TYPES[suffix],
                            headers={"Cache-Control": GROWING if public else PRIVATE})
        if not released(folder, name, position):  # asked again later: not cached
            return JSONResponse({"error": "not_yet", "message": "this part of the premiere "
                                 "has not been shown yet"}, status_code=404,
                                headers={"Cache-Control": NOT_YET})
    return FileResponse(path, media_type=MEDIA_TYPES[suffix],
                        headers={"Cache-Control": cache if public else PRIVATE})
