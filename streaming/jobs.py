"""Transcode jobs in the database, claimed with a lease like the outbox (events.delivery).

A worker claims one due job in a short transaction (PostgreSQL skips rows another worker is
claiming: FOR UPDATE SKIP LOCKED; SQLite claims under its one write lock) and renews its lease
while ffmpeg runs. A worker that dies leaves its lease to run out; the job is then due again and
another worker starts it over. A run that fails is retried after a backoff, up to MAX_ATTEMPTS,
and then ends `failed` with the tail of ffmpeg's complaint for staff to read.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import ColumnElement, update
from sqlmodel import Session, col, select

from events.errors import Conflict, NotFound
from events.locking import write_lock
from events.models import Event, EventStatus, StaffUser
from events.timeutil import utcnow
from streaming.ladder import Source
from streaming.models import Recording, TranscodeJob, Upload

MAX_ATTEMPTS = 3
FIRST_RETRY = timedelta(minutes=1)  # then 2, 4
# A run renews its lease every few seconds (streaming.transcode): only a dead worker's runs out.
LEASE = timedelta(minutes=2)
ERROR_TAIL = 2000
# A recording is taken for sessions that will be, or were, held.
NO_RECORDING = frozenset({EventStatus.cancelled})


def enqueue(db: Session, actor: StaffUser, event: Event, source: Source,
            size_bytes: int) -> tuple[Recording, TranscodeJob]:
    """A recording of this session and its job, queued. Flushes; the caller commits."""
    assert event.id is not None
    if event.status in NO_RECORDING:
        raise Conflict("event_cancelled", "a cancelled session takes no recording")
    write_lock(db)
    recording = Recording(event_id=event.id, duration_s=source.duration_s, width=source.width,
                          height=source.height, has_audio=source.has_audio,
                          size_bytes=size_bytes, uploaded_by=actor.id)
    db.add(recording)
    db.flush()
    assert recording.id is not None
    job = TranscodeJob(recording_id=recording.id, event_id=event.id)
    db.add(job)
    db.flush()
    return recording, job


def get_job(db: Session, job_id: int) -> TranscodeJob:
    job = db.get(TranscodeJob, job_id) if 0 < job_id <= 2**31 - 1 else None
    if job is None:
        raise NotFound("job_not_found", f"no job with id {job_id}")
    return job


def _due(now: datetime) -> ColumnElement[bool]:
    waiting = (col(TranscodeJob.state) == "queued") & (col(TranscodeJob.due_at) <= now)
    abandoned = (col(TranscodeJob.state) == "running") & (col(TranscodeJob.claimed_until) <= now)
    return waiting | abandoned


def claim(db: Session, now: datetime | None = None) -> TranscodeJob | None:
    """The oldest due job, marked running under this worker's lease; committed at once."""
    now = now or utcnow()
    query = select(TranscodeJob.id).where(_due(now)).order_by(col(TranscodeJob.id)).limit(1)
    if db.connection().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    write_lock(db)
    job_id = db.exec(query).first()
    if job_id is None:
        db.commit()
        return None
    job = db.get(TranscodeJob, job_id, populate_existing=True)
    assert job is not None
    job.state, job.claimed_until = "running", now + LEASE
    job.attempts += 1
    job.progress = 0.0
    job.started_at = now
    db.add(job)
    _mirror(db, job)
    db.commit()
    return job


def renew(db: Session, job_id: int, progress: float, now: datetime | None = None) -> bool:
    """Reports progress and extends the lease; False when the job is no longer this run's
    (its lease ran out and another worker took it)."""
    now = now or utcnow()
    write_lock(db)
    renewed = db.execute(
        update(TranscodeJob)
        .where(col(TranscodeJob.id) == job_id, col(TranscodeJob.state) == "running",
               col(TranscodeJob.claimed_until) > now)
        .values(progress=progress, claimed_until=now + LEASE)
        .returning(col(TranscodeJob.id))).first()
    db.commit()
    return renewed is not None


def succeed(db: Session, job: TranscodeJob, media_key: str, renditions: list[str],
            now: datetime | None = None) -> Recording:
    """The job's recording is published: the session plays it from now on."""
    now = now or utcnow()
    write_lock(db)
    job = db.get(TranscodeJob, job.id, populate_existing=True) or job
    recording = db.get(Recording, job.recording_id, populate_existing=True)
    assert recording is not None
    job.state, job.progress, job.finished_at = "succeeded", 1.0, now
    job.claimed_until, job.error = None, ""
    recording.media_key, recording.renditions = media_key, ",".join(renditions)
    recording.published_at = now
    db.add(job)
    _mirror(db, job)
    db.commit()
    return recording


def fail(db: Session, job: TranscodeJob, error: str, now: datetime | None = None,
         *, final: bool = False) -> TranscodeJob:
    """Queued again after a backoff, or `failed` for good after MAX_ATTEMPTS (or when retrying
    cannot help: `final`)."""
    now = now or utcnow()
    write_lock(db)
    job = db.get(TranscodeJob, job.id, populate_existing=True) or job
    job.error = error[-ERROR_TAIL:]
    job.claimed_until = None
    if final or job.attempts >= MAX_ATTEMPTS:
        job.state, job.finished_at = "failed", now
    else:
        job.state = "queued"
        job.due_at = now + FIRST_RETRY * 2 ** (job.attempts - 1)
    db.add(job)
    _mirror(db, job)
    db.commit()
    return job


def _mirror(db: Session, job: TranscodeJob) -> None:
    recording = db.get(Recording, job.recording_id)
    if recording is not None:
        recording.state = job.state
        db.add(recording)


def published(db: Session, event_id: int) -> Recording | None:
    """The session's newest recording that plays."""
    return db.exec(select(Recording).where(Recording.event_id == event_id,
                                           col(Recording.published_at).is_not(None))
                   .order_by(col(Recording.published_at).desc(), col(Recording.id).desc())
                   .limit(1)).first()


def job_public(job: TranscodeJob) -> dict[str, object]:
    return {"id": job.id, "event_id": job.event_id, "recording_id": job.recording_id,
            "state": job.state, "progress": round(job.progress, 3), "error": job.error,
            "attempts": job.attempts}


def recordings_of(db: Session, event_id: int) -> list[tuple[Recording, TranscodeJob | None]]:
    """A session's recordings, newest first, each with its job (staff's panel)."""
    found = list(db.exec(select(Recording).where(Recording.event_id == event_id)
                         .order_by(col(Recording.created_at).desc(), col(Recording.id).desc())))
    ids = [r.id for r in found]
    by_recording = {job.recording_id: job for job in db.exec(
        select(TranscodeJob).where(col(TranscodeJob.recording_id).in_(ids)))} if ids else {}
    return [(r, by_recording.get(r.id or 0)) for r in found]


# A resumable upload nobody went on with for this long is given up, and its bytes deleted.
UPLOAD_KEPT = timedelta(days=1)


def forget_stale_uploads(db: Session, uploads_dir: Path, now: datetime | None = None) -> int:
    """The worker's round: uploads left unfinished past UPLOAD_KEPT, and files in the uploads
    folder that no upload names (a whole upload cut off), are deleted. Flushes."""
    now = now or utcnow()
    write_lock(db)
    stale = list(db.exec(select(Upload).where(col(Upload.job_id).is_(None),
                                              col(Upload.updated_at) < now - UPLOAD_KEPT)))
    for upload in stale:
        (uploads_dir / upload.path).unlink(missing_ok=True)
        db.delete(upload)
    db.flush()
    named = set(db.exec(select(Upload.path)))
    cutoff = (now - UPLOAD_KEPT).timestamp()
    for leftover in uploads_dir.glob("*.part"):
        if leftover.name not in named and leftover.stat().st_mtime < cutoff:
            leftover.unlink(missing_ok=True)
    return len(stale)
