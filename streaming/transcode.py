"""Running a transcode job: ffmpeg in a child process, at a lower CPU priority than the web
service, never on the event loop or a request thread. Its `-progress` lines become the job's
progress (and renew its lease) about once a second; its complaint, if it fails, is kept
(the tail) for staff. The finished folder is published in one step (streaming.storage).
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable

from sqlalchemy.engine import Engine
from sqlmodel import Session

from server.config import Settings
from server.db import get_engine
from streaming import jobs
from streaming.ladder import Progress, Source, ffmpeg_args, ladder, thumbnails_vtt
from streaming.models import Recording, TranscodeJob
from streaming.storage import LocalStorage, Storage

log = logging.getLogger("kaifang.transcode")

FFMPEG = "ffmpeg"
NICENESS = 10  # below the web service: a transcode never starves a request
REPORT_EVERY_S = 1.0


def storage_for(settings: Settings) -> LocalStorage:
    return LocalStorage(settings.media_dir)


# Set when this process queues a job: its transcoder starts at once instead of at its next look
# (workers in other processes look every few seconds).
_queued = threading.Event()


def wake() -> None:
    _queued.set()


class Stopped(Exception):
    """The worker is stopping: the run is abandoned and its lease left to run out."""


def _lower_priority() -> None:  # in the child, before exec
    os.nice(NICENESS)


def run_ffmpeg(args: list[str], duration_s: float, report: Callable[[float], bool],
               stop: threading.Event | None = None) -> tuple[int, str]:
    """Runs ffmpeg with `args`; calls report(fraction) as it goes (False: abandon the run).
    Returns the exit code and the tail of what ffmpeg wrote to standard error."""
    progress = Progress(duration_s)
    with tempfile.TemporaryFile() as errors:
        child = subprocess.Popen([FFMPEG, *args], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=errors, text=True,
                                 preexec_fn=_lower_priority)
        last = 0.0
        try:
            assert child.stdout is not None
            for line in child.stdout:
                if stop is not None and stop.is_set():
                    raise Stopped()
                if progress.feed(line) and time.monotonic() - last >= REPORT_EVERY_S:
                    last = time.monotonic()
                    if not report(progress.fraction):
                        raise Stopped()
            code = child.wait()
        except BaseException:
            child.kill()
            child.wait()
            raise
        errors.seek(0)
        tail = errors.read()[-jobs.ERROR_TAIL:].decode("utf-8", "replace").strip()
    return code, tail


def run_one(settings: Settings, storage: Storage | None = None,
            stop: threading.Event | None = None) -> bool:
    """Claims one due job and runs it to its end; False when none was due."""
    storage = storage or storage_for(settings)
    engine = get_engine(settings.sqlalchemy_url)
    with Session(engine, expire_on_commit=False) as db:
        job = jobs.claim(db)
        if job is None:
            return False
        recording = db.get(Recording, job.recording_id)
    assert job.id is not None and recording is not None and recording.id is not None
    source = Source(recording.duration_s, recording.width, recording.height, recording.has_audio)
    work = storage.work_dir(job.id)
    log.info("job %s: transcoding recording %s (%.0f s, %sp), attempt %s", job.id,
             recording.id, source.duration_s, source.height, job.attempts)

    def report(fraction: float) -> bool:
        with Session(engine, expire_on_commit=False) as db:
            return jobs.renew(db, job.id, fraction)  # type: ignore[arg-type]

    try:
        code, tail = run_ffmpeg(ffmpeg_args(str(storage.source(recording.id)), str(work),
                                            source), source.duration_s, report, stop)
    except Stopped:
        log.info("job %s: abandoned (stopping, or taken over)", job.id)
        return True
    except OSError as exc:  # ffmpeg missing, or the disk
        _failed(engine, job, f"ffmpeg could not run ({type(exc).__name__})")
        return True
    if code != 0:
        _failed(engine, job, tail or f"ffmpeg exited with {code}")
        return True
    (work / "thumbs.vtt").write_text(thumbnails_vtt(source), encoding="utf-8")
    key = storage.publish(work, job.event_id, recording.id)
    with Session(engine, expire_on_commit=False) as db:
        jobs.succeed(db, job, key, [r.name for r in ladder(source)])
    log.info("job %s: published as %s", job.id, key)
    return True


def _failed(engine: Engine, job: TranscodeJob, error: str) -> None:
    with Session(engine, expire_on_commit=False) as db:
        ended = jobs.fail(db, job, error)
    log.warning("job %s: ffmpeg failed (attempt %s, now %s)", job.id, ended.attempts,
                ended.state)


def run_transcoder(settings: Settings, stop: threading.Event, interval_s: float = 2.0) -> None:
    """Runs jobs one after another until `stop` is set (one at a time: ffmpeg uses every core).
    With none due it looks again after `interval_s`, or at once when this process queues one."""
    storage = storage_for(settings)
    while not stop.is_set():
        _queued.clear()
        try:
            ran = run_one(settings, storage, stop)
        except Exception as exc:
            log.error("transcoder round failed: %s", type(exc).__name__)
            ran = False
        if not ran:
            _queued.wait(interval_s)
