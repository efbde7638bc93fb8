"""Helpers for the transcode jobs' tests: sessions of a unit, jobs queued straight into the
database (no probe: the worker sees what an accepted upload would give it), leases run out."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from events.models import Event, StaffUser
from server.config import Settings
from server.db import get_engine
from streaming import jobs
from streaming.ladder import Source
from streaming.models import Recording, TranscodeJob
from streaming.storage import LocalStorage
from tests.conftest import event_body


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def unit_session(staff: Any, db: Session, unit: str) -> Event:
    """A session of `unit` that has been held (its editor signed in)."""
    editor = staff("editor", unit)
    now = datetime.now(UTC)
    body = event_body(db, unit_code=unit,
                      starts_at=(now - timedelta(hours=3)).isoformat(),
                      ends_at=(now - timedelta(hours=1)).isoformat(),
                      registration_opens_at=(now - timedelta(days=2)).isoformat(),
                      registration_closes_at=(now - timedelta(hours=4)).isoformat())
    created = editor.post("/api/events", json=body)
    assert created.status_code == 201, created.text
    event = db.get(Event, created.json()["id"])
    assert event is not None
    return event


def queue(db: Session, settings: Settings, event: Event, path: Path | None = None,
          source: Source | None = None) -> TranscodeJob:
    """A job for a recording of `event` (its source file copied where the worker reads it)."""
    user = db.exec(select(StaffUser)).first()
    assert user is not None
    source = source or Source(3.0, 640, 360, True)
    recording, job = jobs.enqueue(db, user, event, source, path.stat().st_size if path else 1)
    db.commit()
    assert recording.id is not None
    if path is not None:
        shutil.copy(path, LocalStorage(settings.media_dir).source(recording.id))
    return job


def fresh(settings: Settings, job_id: int | None) -> TranscodeJob:
    with Session(get_engine(settings.sqlalchemy_url), expire_on_commit=False) as db:
        job = db.get(TranscodeJob, job_id)
        assert job is not None
        return job


def recording_of(settings: Settings, job: TranscodeJob) -> Recording:
    with Session(get_engine(settings.sqlalchemy_url), expire_on_commit=False) as db:
        recording = db.get(Recording, job.recording_id)
        assert recording is not None
        return recording


def claim(settings: Settings, **kwargs: Any) -> TranscodeJob | None:
    """A claim by a worker of its own (its own session)."""
    with Session(get_engine(settings.sqlalchemy_url), expire_on_commit=False) as db:
        return jobs.claim(db, **kwargs)


def run_out(settings: Settings, job_id: int | None) -> None:
    """The job's lease ends now (its worker stopped renewing it a while ago)."""
    with Session(get_engine(settings.sqlalchemy_url)) as db:
        db.execute(update(TranscodeJob).where(col(TranscodeJob.id) == job_id)
                   .values(claimed_until=datetime.now(UTC) - timedelta(seconds=5)))
        db.commit()
