"""HTTP for a session's ingest key (DESIGN.md: `POST|DELETE /api/events/{id}/ingest`).

The key is in the 201 answer and nowhere else: not in the audit log, not in a log line, not
in the GET staff read later (which says only whether a key is set and until when).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from events.schemas import IsoTime, PublicModel, answer
from events.timeutil import iso_local
from server.caching import PRIVATE
from server.config import Settings
from server.deps import JSONRoute, SessionDep, StaffDep, error_responses
from streaming import ingest

router = APIRouter(prefix="/api", route_class=JSONRoute)
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]


class IngestKeyIssued(PublicModel):
    rtmp_url: str
    stream_key: str
    expires_at: IsoTime


class IngestKeyState(PublicModel):
    rtmp_url: str
    # A key is set and has not run out.
    active: bool
    expires_at: IsoTime | None
    # Why the last publisher was refused or cut off (Chinese, for the console).
    last_error: str


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@router.post("/events/{event_id}/ingest", status_code=201,
             responses=error_responses(401, 403, 404, 409))
def issue_key(event_id: Id, request: Request, response: Response, db: SessionDep,
              user: StaffDep) -> IngestKeyIssued:
    """A new stream key (a second call rotates it: the old key stops working at once)."""
    settings = _settings(request)
    event = ingest.runnable_event(db, user, event_id)
    stream, key = ingest.issue_key(db, user, event, settings.ingest_key_hours)
    response.headers["Cache-Control"] = PRIVATE
    return answer(IngestKeyIssued, {"rtmp_url": ingest.rtmp_url(settings), "stream_key": key,
                                    "expires_at": iso_local(stream.key_expires_at)})


@router.delete("/events/{event_id}/ingest", status_code=204,
               responses=error_responses(401, 403, 404, 409))
def revoke_key(event_id: Id, db: SessionDep, user: StaffDep) -> Response:
    """The key stops working; 404 no_ingest_key when there is none."""
    event = ingest.runnable_event(db, user, event_id)
    ingest.revoke_key(db, user, event)
    return Response(status_code=204)


@router.get("/events/{event_id}/ingest", responses=error_responses(401, 403, 404))
def key_state(event_id: Id, request: Request, response: Response, db: SessionDep,
              user: StaffDep) -> IngestKeyState:
    """Whether the session has a working key and until when (never the key itself)."""
    event = ingest.runnable_event(db, user, event_id)
    stream = ingest.key_status(db, event)
    active = ingest.key_active(stream)
    response.headers["Cache-Control"] = PRIVATE
    return answer(IngestKeyState, {
        "rtmp_url": ingest.rtmp_url(_settings(request)), "active": active,
        "expires_at": iso_local(stream.key_expires_at) if stream and active else None,
        "last_error": stream.last_error if stream else ""})
