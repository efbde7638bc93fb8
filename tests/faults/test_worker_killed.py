"""A `kaifang worker` killed (SIGKILL) in the middle of a transcode: its ffmpeg dies with it,
another worker takes the job up once the dead one's lease runs out, and the recording is
published once: one folder, one row, one entry in the audit log, and it plays. A worker that
is merely slow (its ffmpeg stopped) keeps its job however long it takes."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import Session, col, select

from events.models import AuditEntry, OutboxMessage
from server.config import Settings
from server.db import get_engine
from streaming.models import Recording
from tests.faults.media_procs import clip, plays, until, worker
from tests.helpers import children_named, gone
from tests.streaming.jobs_helpers import unit_session

# Short for a test, yet eight renewals long, so that a worker starved of CPU by a busy machine
# (or waiting for the database's lock) still renews in time: a killed worker's job waits this
# long.
LEASE_S = "4"


DURATION_S = 12
# How long a worker may take to start on a machine busy with other tests (seconds of CPU, more
# of waiting for a core): a bound for a broken run only, never waited for by a healthy one.
STARTING_S = 120


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 s of 320x240: a second or more of transcoding, in which a test catches ffmpeg."""
    return clip(tmp_path_factory.mktemp("killed") / "session.mp4", DURATION_S, "320x240")


def _upload(editor: Any, event_id: int, path: Path) -> int:
    sent = editor.post(f"/api/events/{event_id}/recording",
                       files={"file": (path.name, path.read_bytes(), "video/mp4")})
    assert sent.status_code == 202, sent.text
    return int(sent.json()["job_id"])


def _count(settings: Settings, model: Any, *where: Any) -> int:
    with Session(get_engine(settings.sqlalchemy_url)) as db:
        return int(db.exec(select(func.count()).select_from(model).where(*where)).one())


def test_a_slow_worker_keeps_its_job_and_a_killed_ones_job_is_finished_once_by_another(
        staff, db, settings, app, recording, tmp_path):
    editor = staff("editor", "education")
    event = unit_session(staff, db, "education")
    assert event.id is not None
    workers = [worker(settings, tmp_path / f"worker{n}.log", KAIFANG_JOB_LEASE_S=LEASE_S)
               for n in (1, 2)]
    job_id = _upload(editor, event.id, recording)

    def job() -> dict[str, Any]:
        answer = editor.get(f"/api/jobs/{job_id}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    ffmpeg = 0
    try:
        # One worker claims the job; its ffmpeg stops dead mid-way (as a stuck disk or a
        # starved CPU would stop it): slow, but its worker is alive.
        [(holder, ffmpeg)] = until(lambda: [(w, pids[0]) for w in workers
                                            if (pids := children_named(w.pid, "ffmpeg"))],
                                   STARTING_S, 0.02)
        os.kill(ffmpeg, signal.SIGSTOP)
        [other] = [w for w in workers if w is not holder]
        [attempt] = list((settings.media_dir / "work").iterdir())
        until(lambda: "worker started" in other.said(), STARTING_S)
        with pytest.raises(AssertionError, match="not within"):  # its lease holds meanwhile
            until(lambda: children_named(other.pid, "ffmpeg") or job()["attempts"] > 1,
                  1.5 * float(LEASE_S))
        assert (job()["state"], job()["attempts"]) == ("running", 1)

        # Killed mid-transcode: its ffmpeg dies with it (no orphan writing on), its claim
        # stands until the lease runs out, then the other worker starts the job over.
        holder.kill()
        until(lambda: gone(ffmpeg), 5)
        assert job()["state"] == "running"
        assert attempt.exists()  # what the dead attempt wrote, until the next one starts
        seen: list[float] = []

        def finished() -> bool:
            now = job()
            seen.append(now["progress"])
            assert now["state"] != "failed", now
            return bool(now["state"] == "succeeded")

        until(finished, STARTING_S, 0.1)
        assert children_named(other.pid, "ffmpeg") == []
    finally:
        for process in workers:
            process.stop()
        if ffmpeg and not gone(ffmpeg):
            os.kill(ffmpeg, signal.SIGKILL)
    done = job()
    assert (done["state"], done["progress"], done["attempts"], done["error"]) == \
        ("succeeded", 1, 2, "")
    assert seen[-1] == 1

    # Published once: one row, one folder, nothing left of the killed attempt.
    with Session(get_engine(settings.sqlalchemy_url)) as fresh:
        rows = list(fresh.exec(select(Recording).where(Recording.event_id == event.id)))
    assert [(r.state, r.published_at is not None) for r in rows] == [("succeeded", True)]
    key = rows[0].media_key
    media = settings.media_dir
    assert [folder.name for folder in (media / "hls").iterdir()] == [key]
    assert list((media / "work").iterdir()) == []
    assert _count(settings, AuditEntry, col(AuditEntry.action) == "recording.published",
                  AuditEntry.entity_id == event.id) == 1
    # Nobody is told twice: nothing about the recording, and the reminders that both
    # workers' rounds made once per recipient.
    with Session(get_engine(settings.sqlalchemy_url)) as fresh:
        told = [(m.topic, m.recipient, m.unit_id, m.event_id, m.subject)
                for m in fresh.exec(select(OutboxMessage))]
    assert [m for m in told if m[3] == event.id] == []
    assert len(told) == len(set(told))

    # It plays: a player reads every playlist and segment through the app and decodes them.
    assert abs(plays(app, editor, key) - DURATION_S) < 1
