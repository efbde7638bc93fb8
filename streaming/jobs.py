"""Transcode jobs in the database, claimed with a lease like the outbox (events.delivery).

A worker claims one due job in a short transaction (PostgreSQL skips rows another worker is
claiming: FOR UPDATE SKIP LOCKED; SQLite claims under its one write lock) and renews its lease
while ffmpeg runs (streaming.transcode, from a timer: not from what ffmpeg prints). A worker
that dies leaves its lease to run out; the job is then due again and another worker starts it
over. A run that fails is retried after a backoff; after MAX_ATTEMPTS runs (failed, or
abandoned by a worker that died) it ends `failed` with the reason for staff to read.

Fencing: each claim gives the run a token of its own (`lease`). Every later write of the run
(renew, succeed, fail, release) is one UPDATE whose WHERE names that token, so a run whose
lease ran out and was taken over can neither publish nor mark the job: it learns it lost, and
stops. Leases and backoffs are compared with the database's clock (one clock for every
worker), never a worker's own.

Fairness: the next job claimed is the oldest of the unit with the fewest jobs running now,
and among those the unit whose last job started longest ago (round-robin between units): one
unit's queue of long recordings never holds another unit's short clip behind all of it.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import ColumnElement, DateTime, bindparam, func, nulls_first, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from events import audit
from events.errors import Conflict, NotFound
from events.locking import write_lock
from events.models import Event, EventStatus, StaffUser
from events.timeutil import utcnow
from server.db import UTCDateTime
from streaming.ladder import Source
from streaming.models import Recording, TranscodeJob, Upload

MAX_ATTEMPTS = 3
FIRST_RETRY = timedelta(minutes=1)  # then 2, 4
# A run renews its lease every few seconds (streaming.transcode): only a dead worker's runs out.
# KAIFANG_JOB_LEASE_S sets another (lease_of).
LEASE = timedelta(minutes=2)
ERROR_TAIL = 2000
# A recording is taken for sessions that will be, or were, held.
NO_RECORDING = frozenset({EventStatus.cancelled})
GAVE_UP = ("转码中断 {attempts} 次（处理它的进程停止或失去联系），已放弃。"
           "The transcode was interrupted {attempts} times (the worker running it stopped or "
           "lost contact) and was given up.")


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


def lease_of(seconds: float | None) -> timedelta:
    """A claim's length: KAIFANG_JOB_LEASE_S when set, LEASE otherwise."""
    return LEASE if seconds is None else timedelta(seconds=seconds)


def get_job(db: Session, job_id: int) -> TranscodeJob:
    job = db.get(TranscodeJob, job_id) if 0 < job_id <= 2**31 - 1 else None
    if job is None:
        raise NotFound("job_not_found", f"no job with id {job_id}")
    return job


def db_clock(db: Session, now: datetime | None = None,
             plus: timedelta = timedelta(0)) -> ColumnElement[datetime]:
    """The database's time (plus a span), as naive UTC like the columns; `now` (tests) in its
    place when given."""
    if now is not None:
        return bindparam(None, now + plus, type_=UTCDateTime())
    if db.connection().dialect.name == "postgresql":
        return func.timezone("UTC", func.statement_timestamp(), type_=DateTime) + plus
    # SQLite: milliseconds, padded to the microseconds SQLAlchemy writes, so text compares right.
    return func.strftime("%Y-%m-%d %H:%M:%f000", "now", f"{plus.total_seconds():+.3f} seconds")


def _lease_holds(job_id: int, lease: str) -> list[ColumnElement[bool]]:
    return [col(TranscodeJob.id) == job_id, col(TranscodeJob.state) == "running",
            col(TranscodeJob.lease) == lease]


def _due(clock: ColumnElement[datetime]) -> ColumnElement[bool]:
    # A new job is due at once (whoever's clock stamped it); a retry after its backoff.
    waiting = (col(TranscodeJob.state) == "queued") & (
        (col(TranscodeJob.attempts) == 0) | (col(TranscodeJob.due_at) <= clock))
    abandoned = (col(TranscodeJob.state) == "running") & (col(TranscodeJob.claimed_until) <= clock)
    return (waiting | abandoned) & (col(TranscodeJob.attempts) < MAX_ATTEMPTS)


def _give_up_abandoned(db: Session, clock: ColumnElement[datetime]) -> None:
    """Jobs abandoned (lease run out) on their last attempt end `failed`, not claimed again."""
    ended = db.execute(
        update(TranscodeJob)
        .where(col(TranscodeJob.state) == "running", col(TranscodeJob.claimed_until) <= clock,
               col(TranscodeJob.attempts) >= MAX_ATTEMPTS)
        .values(state="failed", finished_at=clock, claimed_until=None, lease="",
                error=GAVE_UP.format(attempts=MAX_ATTEMPTS))
        .returning(col(TranscodeJob.recording_id))).scalars().all()
    if ended:
        db.execute(update(Recording).where(col(Recording.id).in_(ended)).values(state="failed"))


def _fair_order(clock: ColumnElement[datetime]) -> list[ColumnElement[object]]:
    other, other_event = aliased(TranscodeJob), aliased(Event)
    same_unit = (select(col(other.id)).join(other_event, col(other_event.id) == other.event_id)
                 .where(col(other_event.unit_id) == Event.unit_id))
    running = (same_unit.with_only_columns(func.count(col(other.id)))
               .where(col(other.state) == "running", col(other.claimed_until) > clock)
               .scalar_subquery())
    last_start = same_unit.with_only_columns(func.max(other.started_at)).scalar_subquery()
    return [running, nulls_first(last_start), col(TranscodeJob.id)]  # type: ignore[list-item]


def claim(db: Session, now: datetime | None = None, *, longest_s: float | None = None,
          hold: timedelta | None = None) -> TranscodeJob | None:
    """The next due job (fairly between units; with `longest_s`, only recordings that short),
    marked running under a new lease of this attempt's (for `hold`, LEASE unless given);
    committed at once."""
    clock = db_clock(db, now)
    write_lock(db)
    _give_up_abandoned(db, clock)
    query = (select(TranscodeJob.id).join(Event, col(Event.id) == TranscodeJob.event_id)
             .where(_due(clock)).order_by(*_fair_order(clock)).limit(1))
    if longest_s is not None:
        query = query.join(Recording, col(Recording.id) == TranscodeJob.recording_id).where(
            col(Recording.duration_s) <= longest_s)
    if db.connection().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=TranscodeJob)  # type: ignore[arg-type]
    job_id = db.exec(query).first()
    if job_id is None:
        db.commit()
        return None
    lease = secrets.token_hex(12)
    db.execute(update(TranscodeJob).where(col(TranscodeJob.id) == job_id).values(
        state="running", lease=lease, claimed_until=db_clock(db, now, hold or LEASE),
        attempts=TranscodeJob.attempts + 1, progress=0.0, started_at=clock))
    job = db.get(TranscodeJob, job_id, populate_existing=True)
    assert job is not None
    _mirror(db, job.recording_id, "running")
    db.commit()
    return job


def renew(db: Session, job_id: int, lease: str, progress: float,
          now: datetime | None = None, *, hold: timedelta | None = None) -> bool:
    """Reports progress and extends the lease (for `hold`, LEASE unless given); False when the
    job is no longer this attempt's (its lease ran out and another attempt took it, or it
    ended)."""
    write_lock(db)
    renewed = db.execute(
        update(TranscodeJob).where(*_lease_holds(job_id, lease))
        .values(progress=progress, claimed_until=db_clock(db, now, hold or LEASE))
        .returning(col(TranscodeJob.id))).first()
    db.commit()
    return renewed is not None


def succeed(db: Session, job: TranscodeJob, media_key: str, renditions: list[str],
            now: datetime | None = None) -> Recording | None:
    """The job's recording is published under `media_key`, if this attempt (job.lease) still
    holds the job; None when it does not (the caller removes what it published). The audit
    log says so in the same transaction: once per recording, whatever attempts it took."""
    assert job.id is not None
    write_lock(db)
    done = db.execute(
        update(TranscodeJob).where(*_lease_holds(job.id, job.lease))
        .values(state="succeeded", progress=1.0, finished_at=db_clock(db, now),
                claimed_until=None, lease="", error="")
        .returning(col(TranscodeJob.id))).first()
    if done is None:
        db.commit()
        return None
    db.execute(update(Recording).where(col(Recording.id) == job.recording_id).values(
        state="succeeded", media_key=media_key, renditions=",".join(renditions),
        published_at=db_clock(db, now)))
    event = db.get(Event, job.event_id)
    audit.record(db, None, "recording.published", "event", job.event_id,
                 unit_id=event.unit_id if event else None,
                 changes={"recording_id": job.recording_id, "job_id": job.id,
                          "attempts": job.attempts})
    db.commit()
    return db.get(Recording, job.recording_id, populate_existing=True)


def fail(db: Session, job: TranscodeJob, error: str, now: datetime | None = None,
         *, final: bool = False) -> TranscodeJob | None:
    """Queued again after a backoff, or `failed` for good after MAX_ATTEMPTS (or when retrying
    cannot help: `final`); None when this attempt no longer holds the job."""
    assert job.id is not None
    write_lock(db)
    last = final or job.attempts >= MAX_ATTEMPTS
    retry = db_clock(db, now, FIRST_RETRY * 2 ** max(job.attempts - 1, 0))
    ended = db.execute(
        update(TranscodeJob)
        .where(*_lease_holds(job.id, job.lease), col(TranscodeJob.attempts) == job.attempts)
        .values(error=error[-ERROR_TAIL:], claimed_until=None, lease="",
                state="failed" if last else "queued",
                finished_at=db_clock(db, now) if last else None,
                due_at=TranscodeJob.due_at if last else retry)
        .returning(col(TranscodeJob.id))).first()
    if ended is not None:
        _mirror(db, job.recording_id, "failed" if last else "queued")
    db.commit()
    return db.get(TranscodeJob, job.id, populate_existing=True) if ended is not None else None


def release(db: Session, job: TranscodeJob) -> bool:
    """The worker is stopping: the job is due again at once, and this attempt is not counted
    (a restart is not the recording's fault). False when the attempt no longer held it."""
    assert job.id is not None
    write_lock(db)
    released = db.execute(
        update(TranscodeJob).where(*_lease_holds(job.id, job.lease))
        .values(state="queued", lease="", claimed_until=None, progress=0.0,
                attempts=TranscodeJob.attempts - 1, due_at=db_clock(db))
        .returning(col(TranscodeJob.id))).first()
    if released is not None:
        _mirror(db, job.recording_id, "queued")
    db.commit()
    return released is not None


def _mirror(db: Session, recording_id: int, state: str) -> None:
    db.execute(update(Recording).where(col(Recording.id) == recording_id).values(state=state))


def running_leases(db: Session) -> set[tuple[int, str]]:
    """(job id, lease) of every attempt that may still be running (streaming.transcode's
    sweep keeps their work folders)."""
    return {(job_id, lease) for job_id, lease in db.exec(
        select(TranscodeJob.id, TranscodeJob.lease).where(TranscodeJob.state == "running"))
        if job_id is not None}


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
