"""HTTP for a recording's captions and chapters (WebVTT or SRT, streaming.tracks): attached by
the session's unit, listed with the recording, served as WebVTT while the recording is."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Response, UploadFile

from events import permissions, sessions
from events.errors import Conflict, NotFound
from events.schemas import answer, answers
from server.deps import JSONRoute, OptionalStaffDep, SessionDep, StaffDep, error_responses
from streaming import jobs, tracks
from streaming.models import Recording
from streaming.schemas import TrackPublic

router = APIRouter(prefix="/api", route_class=JSONRoute)
media = APIRouter(route_class=JSONRoute)
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]
# As the playlists: a corrected caption reaches players within seconds.
SHORT = "public, max-age=10"


@router.post("/events/{event_id}/tracks", status_code=201, responses=error_responses(409))
def attach_track(event_id: Id, db: SessionDep, user: StaffDep, file: UploadFile,
                 kind: Annotated[str, Form(max_length=20)] = "captions",
                 language: Annotated[str, Form(max_length=20)] = "zh",
                 label: Annotated[str, Form(max_length=100)] = "") -> TrackPublic:
    """Captions (WebVTT or SRT) or chapters for the session's recording that plays."""
    event = sessions.get_visible_event(db, event_id, user)
    permissions.require_owner(user, event)
    recording = jobs.published(db, event_id)
    if recording is None or recording.id is None:
        raise Conflict("no_recording", "the session has no published recording yet")
    raw = file.file.read(tracks.MAX_TRACK_BYTES + 1)
    return answer(TrackPublic,
                  tracks.track_public(tracks.attach(db, recording.id, kind, language, label, raw)))


@router.get("/events/{event_id}/tracks")
def list_tracks(event_id: Id, db: SessionDep, viewer: OptionalStaffDep) -> list[TrackPublic]:
    sessions.get_visible_event(db, event_id, viewer)
    recording = jobs.published(db, event_id)
    if recording is None or recording.id is None:
        return []
    return answers(TrackPublic,
                   [tracks.track_public(t) for t in tracks.of_recording(db, recording.id)])


@router.delete("/tracks/{track_id}", status_code=204)
def remove_track(track_id: Id, db: SessionDep, user: StaffDep) -> Response:
    track = tracks.get_track(db, track_id)
    recording = db.get(Recording, track.recording_id)
    assert recording is not None
    permissions.require_owner(user, sessions.get_visible_event(db, recording.event_id, user))
    db.delete(track)
    return Response(status_code=204)


@media.get("/media/tracks/{track_id}.vtt", include_in_schema=False)
def track_file(track_id: int, db: SessionDep, viewer: OptionalStaffDep) -> Response:
    track = tracks.get_track(db, track_id)
    recording = db.get(Recording, track.recording_id)
    assert recording is not None
    event = sessions.get_visible_event(db, recording.event_id, viewer)
    withdrawn = event.status in jobs.NO_RECORDING  # its captions go with its recording
    if withdrawn and not (viewer and permissions.may_run(db, viewer, event)):
        raise NotFound("not_found", "no such media file")
    return Response(track.body, media_type="text/vtt; charset=utf-8",
                    headers={"Cache-Control": SHORT})
