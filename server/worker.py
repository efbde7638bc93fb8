"""The worker: delivers notifications and erases expired personal data, round after round.

`kaifang worker` runs it in the foreground; `kaifang serve` runs it in a thread of its own.
Several may run at once (each claims its work in the database). A job is one transaction; a
failing job is logged, without personal data, and the loop goes on. Transcodes run beside the
rounds, in two lanes of their own (streaming.transcode): one takes any job, the other only
recordings up to SHORT_LANE_S long, so a long transcode (or one that runs to its time limit)
never holds up a unit's short clip. Stopping ends both lanes' ffmpeg and releases their jobs.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from events import plan, recovery
from events.closeout import remind_units as remind_units_to_close_out
from events.delivery import deliver_due
from events.quotas import remind_units_at_risk
from events.ratelimit import forget_expired
from events.retention import purge_due
from server.config import Settings
from server.db import get_engine
from streaming import answers
from streaming.jobs import forget_stale_uploads
from streaming.retention import sweep_replaced_media
from streaming.transcode import run_transcoder, storage_for, sweep
from streaming.transcode import wake as wake_transcoder

log = logging.getLogger("kaifang.worker")
# The short lane takes only recordings this long or shorter (seconds).
SHORT_LANE_S = 600.0
ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Job:
    name: str
    # Seconds between two runs; 0: every round.
    every_s: float
    run: Callable[[Session, Settings], object]


def _deliver(db: Session, settings: Settings) -> object:
    return deliver_due(db, settings)


def _purge(db: Session, settings: Settings) -> object:
    return purge_due(db, settings)


def _quota_reminders(db: Session, settings: Settings) -> object:
    return remind_units_at_risk(db)


def _closeout_reminders(db: Session, settings: Settings) -> object:
    return remind_units_to_close_out(db)


def _forget_registration_attempts(db: Session, settings: Settings) -> object:
    return forget_expired(db, settings) + recovery.forget_expired(db)


def _forget_stale_uploads(db: Session, settings: Settings) -> object:
    return forget_stale_uploads(db, settings.media_dir / "uploads")


def _sweep_media(db: Session, settings: Settings) -> object:
    return sweep(db, storage_for(settings))


JOBS: tuple[Job, ...] = (
    Job("deliver", 0, _deliver),
    Job("purge", 3600, _purge),
    Job("quota_reminders", 3600, _quota_reminders),
    Job("closeout_reminders", 3600, _closeout_reminders),
    Job("plan_reminders", 3600, plan.remind_due),
    Job("answer_reminders", 3600, answers.remind_overdue),
    Job("registration_limits", 600, _forget_registration_attempts),
    Job("stale_uploads", 3600, _forget_stale_uploads),
    Job("orphan_media", 600, _sweep_media),
    Job("replaced_media", 60, sweep_replaced_media),
)


def _ours(filename: str) -> Path | None:
    path = Path(filename)
    if not path.is_relative_to(ROOT):
        return None
    relative = path.relative_to(ROOT)
    return None if relative.parts[:1] == (".venv",) else relative


def _where(exc: BaseException) -> str:
    """The innermost line of our own code that raised: enough to find it, no data in it."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "?"
    ours = [frame for frame in frames if _ours(frame.filename)]
    frame = (ours or frames)[-1]
    return f"{_ours(frame.filename) or Path(frame.filename).name}:{frame.lineno}"


def run_job(job: Job, settings: Settings) -> Literal["done", "failed", "conflict"]:
    """One run in its own session and transaction. Exception text can quote SQL parameters
    (a phone number), so only its type and place are logged. `conflict`: another worker wrote
    the same deduplicated row first (two workers reminding the same unit in the same round):
    nothing was lost, and the run is tried again next round."""
    try:
        with Session(get_engine(settings.sqlalchemy_url), expire_on_commit=False) as db:
            result = job.run(db, settings)
            db.commit()
    except IntegrityError:
        log.info("worker job %s met another worker's same work (IntegrityError); again next "
                 "round", job.name)
        return "conflict"
    except Exception as exc:
        log.error("worker job %s failed: %s at %s", job.name, type(exc).__name__, _where(exc))
        return "failed"
    if result:
        log.debug("worker job %s: %s", job.name, result)
    return "done"


def run_worker(settings: Settings, stop: threading.Event, interval_s: float = 5,
               jobs: Sequence[Job] = JOBS) -> None:
    """Runs every job when due until `stop` is set; never dies of a job's failure."""
    last_run: dict[str, float] = {}
    log.info("worker started: %s", ", ".join(job.name for job in jobs))
    while not stop.is_set():
        for job in jobs:
            if stop.is_set():
                break
            now = time.monotonic()
            if job.name in last_run and now - last_run[job.name] < job.every_s:
                continue
            last_run[job.name] = now
            if run_job(job, settings) == "conflict":
                del last_run[job.name]
        stop.wait(interval_s)
    wake_transcoder()  # from its wait for work: it sees `stop` at once
    log.info("worker stopped")


def run_transcoders(settings: Settings, stop: threading.Event) -> None:
    """Both lanes until `stop` is set: the short one in a thread of its own, the other here."""
    short = threading.Thread(target=run_transcoder, name="kaifang-transcoder-short",
                             daemon=True, args=(settings, stop),
                             kwargs={"longest_s": SHORT_LANE_S})
    short.start()
    try:
        run_transcoder(settings, stop)
    finally:
        stop.set()
        short.join()


def start_transcoder(settings: Settings, stop: threading.Event) -> threading.Thread:
    """Transcode jobs in threads of their own (ffmpeg runs in a child process): a recording
    that takes minutes never holds up a text or a reminder. Joining the thread returned waits
    for both lanes."""
    run_job(Job("orphan_media", 0, _sweep_media), settings)  # what a process that died left
    thread = threading.Thread(target=run_transcoders, name="kaifang-transcoder", daemon=True,
                              args=(settings, stop))
    thread.start()
    return thread


class BackgroundWorker:
    """The worker in daemon threads of the web process (the embedded default): the rounds of
    JOBS, and the transcoder."""

    def __init__(self, settings: Settings, interval_s: float | None = None) -> None:
        self.settings = settings
        self.stop_event = threading.Event()
        self.thread = threading.Thread(
            target=run_worker, name="kaifang-worker", daemon=True,
            args=(settings, self.stop_event, interval_s or settings.worker_interval_s))
        self.transcoder: threading.Thread | None = None

    def start(self) -> BackgroundWorker:
        self.thread.start()
        self.transcoder = start_transcoder(self.settings, self.stop_event)
        return self

    def stop(self, timeout_s: float = 30) -> None:
        self.stop_event.set()
        wake_transcoder()  # from its wait for work
        self.thread.join(timeout_s)
        if self.transcoder is not None:
            self.transcoder.join(timeout_s)
