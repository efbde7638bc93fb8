"""The console's recordings panel of one session: each upload with its job, which one plays,
whether the public sees it now, its captions and chapters, and the texts the upload script
shows (recording.js)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from events.models import Event
from events.timeutil import utcnow
from frontend.i18n import N_, gettext
from streaming import jobs as stream_jobs
from streaming import phase
from streaming import tracks as stream_tracks
from streaming.playback import playback_of
from streaming.storage import Storage


def recordings_panel(db: Session, event: Event, max_upload_bytes: int,
                     storage: Storage) -> dict[str, Any]:
    """The recordings panel: each upload with its job, which one plays, and whether the public
    sees it now (not a draft's, nor before the session is over or its premiere has begun)."""
    assert event.id is not None
    playing = stream_jobs.published(db, event.id)
    state = playback_of(event, playing, storage, utcnow())["state"]
    public_now = phase.public_sees(event, state)
    rows = [{"id": r.id, "state": job.state if job else r.state,
             "job_id": job.id if job else None,
             "progress": round((job.progress if job else 0) * 100),
             "error": job.error if job else "", "duration": r.duration_s,
             "size_mb": round(r.size_bytes / 1024**2, 1),
             "renditions": r.renditions, "created_at": r.created_at,
             "playing": playing is not None and playing.id == r.id,
             "public": public_now and playing is not None and playing.id == r.id}
            for r, job in stream_jobs.recordings_of(db, event.id)]
    tracks = stream_tracks.of_recording(db, playing.id) if playing and playing.id else []
    return {"recordings": rows, "recording_tracks": tracks,
            "takes_recording": event.status not in stream_jobs.NO_RECORDING,
            "recording_texts": recording_texts(), "recording_states": {
                state: gettext(text) for state, text in RECORDING_STATES.items()},
            "track_kinds": {kind: gettext(text) for kind, text in TRACK_KINDS.items()},
            "max_upload_gb": f"{max_upload_bytes / 1024**3:g}"}


RECORDING_STATES = {"queued": N_("Waiting to be transcoded"), "running": N_("Transcoding"),
                    "succeeded": N_("Ready"), "failed": N_("Transcoding failed")}
TRACK_KINDS = {"captions": N_("Captions"), "subtitles": N_("Subtitles"),
               "chapters": N_("Chapters")}
# What the panel says when the API refuses (by error code).
UPLOAD_PROBLEMS = {
    "not_a_recording": N_("This file is not a video or audio recording that can be played "
                          "(or it is damaged). Check the file and upload it again."),
    "empty_file": N_("The file is empty."),
    "too_large": N_("The file is larger than the upload limit."),
    "too_many_uploads": N_("Too many of your uploads are under way: finish one of them, or "
                           "try again in an hour."),
    "no_space": N_("The server has no room for this file now. Try again later, or ask the "
                   "district office."),
    "event_cancelled": N_("A cancelled session takes no recording."),
    "login_required": N_("You were signed out: sign in again, then upload."),
    "csrf_failed": N_("You were signed out: sign in again, then upload."),
    "forbidden": N_("You may only upload recordings of your own unit's sessions."),
    "invalid_track": N_("The file holds no timed text: use WebVTT or SRT."),
    "no_recording": N_("Upload the recording first."),
}


def recording_texts() -> dict[str, Any]:
    return {"uploading": gettext("Uploading: %(percent)s%%"),
            "retrying": gettext("The connection dropped: trying again…"),
            "checking": gettext("Uploaded. Checking the file…"),
            "queued": gettext("Checked. Waiting to be transcoded…"),
            "transcoding": gettext("Transcoding: %(percent)s%%"),
            "transcodingBar": gettext("Transcoding"),
            "etaSeconds": gettext("about %(seconds)s s left"),
            "etaMinutes": gettext("about %(minutes)s min left"),
            "choose": gettext("Choose a file first."),
            "failed": gettext("Upload failed: %(why)s"),
            "errors": {code: gettext(text) for code, text in UPLOAD_PROBLEMS.items()}}
