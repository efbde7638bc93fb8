"""Running a transcode job: ffmpeg in a child process, at a lower CPU priority than the web
service, never on the event loop or a request thread (streaming.ffmpeg_child: its limits and
the watch thread beside it).

The watch thread writes the job's progress and renews its lease; when it ends ffmpeg, the
job is released for another attempt (the worker stops), left to the attempt that took it
(the lease was lost) or failed (past its time limit). Progress is the share of the source
whose HLS segments are written.

Each attempt writes into a folder of its own; the finished folder is published in one step
(streaming.storage), then the job is marked, if this attempt still holds it; otherwise what it
published is removed. `sweep` removes what attempts that died left behind, and an attempt
removes its job's earlier attempts' folders when it starts (a killed worker's ffmpeg, were it
still running, then writes nowhere that counts).

A full disk: ffmpeg's HLS muxer drops segments it cannot write and still exits 0, with empty
playlists. So the watch thread also ends ffmpeg once the media disk's free space falls under
KAIFANG_MEDIA_RESERVE_BYTES, and a folder is published only when every playlist it names is
complete. Either way the job fails for good (retrying would fill the disk again, and with it
the database's, the webcasts' and the uploads' room) with DISK_FULL for staff to read, the
folder is deleted, and a recording already playing plays on.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from server.config import Settings
from server.db import get_engine
from streaming import ffmpeg_child, jobs
from streaming.ffmpeg_child import (
    DiskFull,
    LeaseLost,
    Stopped,
    TimedOut,
    free_bytes,
    run_ffmpeg,
    time_limit_s,
)
from streaming.ladder import SEGMENT_S, Rendition, Source, ffmpeg_args, ladder, thumbnails_vtt
from streaming.models import Recording, TranscodeJob
from streaming.storage import NO_SPACE, LocalStorage, Storage

log = logging.getLogger("kaifang.transcode")

TIMED_OUT = ("转码超时：{duration} 分钟的录像最多可用 {limit} 分钟转码，已停止。"
             "文件的时间戳可能与内容不符，请检查后重新上传。"
             "The transcode was stopped at its time limit ({limit} min for a {duration} min "
             "recording); the file's timestamps may not match what it holds.")
DISK_FULL = ("磁盘空间不足：媒体存储已满，转码已停止，没有发布任何内容（正在播放的录像不受影响）。"
             "请管理员腾出空间后重新上传录像。"
             "The media disk is full: the transcode was stopped and nothing was published "
             "(a recording already playing plays on). Free space, then upload it again.")
INCOMPLETE = ("转码结果不完整（{what}），未发布，稍后重试。"
              "The transcode's output is incomplete ({what}); nothing was published.")


def storage_for(settings: Settings) -> LocalStorage:
    return LocalStorage(settings.media_dir)


# Set when this process queues a job: its transcoders start at once instead of at their next
# look (workers in other processes look every few seconds). One event per transcoder loop.
_waiting: set[threading.Event] = set()


def wake() -> None:
    for event in list(_waiting):
        event.set()


def segments_done(work: Path, source: Source) -> float:
    """The share of the source written so far: the finished HLS segments of the rendition
    furthest on. (ffmpeg 5 prints no -progress block until every output file has opened, and
    the seek-preview sheet opens at its 100th tile or at the end: its own figure stays at 0
    for most of a run.)"""
    written = 0
    with os.scandir(work) as entries:
        folders = [entry.path for entry in entries if entry.is_dir()]
    for folder in folders:
        with os.scandir(folder) as entries:
            written = max(written, sum(1 for entry in entries
                                       if entry.name.endswith((".ts", ".m4s"))))
    done = max(written - 1, 0) * SEGMENT_S / max(source.duration_s, 0.001)
    return min(round(done, 3), 0.99)


def run_one(settings: Settings, storage: Storage | None = None,
            stop: threading.Event | None = None, *, longest_s: float | None = None) -> bool:
    """Claims one due job (with `longest_s`, only a recording that short) and runs it to its
    end; False when none was due."""
    storage = storage or storage_for(settings)
    engine = get_engine(settings.sqlalchemy_url)
    hold = jobs.lease_of(settings.job_lease_s)
    with Session(engine, expire_on_commit=False) as db:
        job = jobs.claim(db, longest_s=longest_s, hold=hold)
        if job is None:
            return False
        recording = db.get(Recording, job.recording_id)
    assert job.id is not None and recording is not None and recording.id is not None
    source = Source(recording.duration_s, recording.width, recording.height, recording.has_audio)
    _forget_earlier_attempts(storage, job)
    try:
        work = storage.work_dir(job.id, job.lease)
    except OSError as exc:
        _failed(engine, job, *_write_failure(exc))
        return True
    log.info("job %s: transcoding recording %s (%.0f s, %sp), attempt %s", job.id,
             recording.id, source.duration_s, source.height, job.attempts)
    try:
        _attempt(settings, engine, storage, job, recording, source, work, stop, hold)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # this attempt's own (gone if published)
    return True


def _forget_earlier_attempts(storage: Storage, job: TranscodeJob) -> None:
    """The folders of this job's earlier attempts (a killed worker's): this claim ended them."""
    if isinstance(storage, LocalStorage):
        for folder in (storage.root / "work").glob(f"{job.id}-*"):
            if folder.name != f"{job.id}-{job.lease}":
                shutil.rmtree(folder, ignore_errors=True)


def _write_failure(exc: OSError) -> tuple[str, bool]:
    """What a failed write of ours tells staff, and whether it fails the job for good."""
    if exc.errno in NO_SPACE:
        return DISK_FULL, True
    return f"the transcode's files could not be written ({type(exc).__name__})", False


def incomplete(work: Path, renditions: list[Rendition]) -> str | None:
    """What is missing from a finished run's folder (None: every playlist is whole and every
    segment it names is there): what ffmpeg leaves when it could not write its files."""
    master = work / "master.m3u8"
    if not master.is_file() or master.stat().st_size == 0:
        return "master.m3u8"
    for rendition in renditions:
        playlist = work / rendition.name / "index.m3u8"
        try:
            text = playlist.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return f"{rendition.name}/index.m3u8"
        if "#EXT-X-ENDLIST" not in text:
            return f"{rendition.name}/index.m3u8"
        for line in text.splitlines():
            if line and not line.startswith("#"):
                segment = work / rendition.name / line
                if not segment.is_file() or segment.stat().st_size == 0:
                    return f"{rendition.name}/{line}"
    return None


def _attempt(settings: Settings, engine: Engine, storage: Storage, job: TranscodeJob,
             recording: Recording, source: Source, work: Path,
             stop: threading.Event | None, hold: timedelta) -> None:
    assert job.id is not None and recording.id is not None

    def report(fraction: float) -> bool:
        with Session(engine, expire_on_commit=False) as db:
            return jobs.renew(db, job.id, job.lease, fraction,  # type: ignore[arg-type]
                              hold=hold)

    def disk_full() -> bool:
        free = free_bytes(work)
        return free is not None and free <= settings.media_reserve_bytes

    limit_s = time_limit_s(source.duration_s)
    try:
        code, tail = run_ffmpeg(
            ffmpeg_args(str(storage.source(recording.id)), str(work), source),
            source.duration_s, report, stop, fraction=lambda: segments_done(work, source),
            limit_s=limit_s, memory_mb=settings.transcode_memory_mb, disk_full=disk_full,
            renew_every_s=min(ffmpeg_child.RENEW_EVERY_S, hold.total_seconds() / 4))
    except Stopped:
        with Session(engine, expire_on_commit=False) as db:
            jobs.release(db, job)
        log.info("job %s: released (the worker is stopping)", job.id)
        return
    except LeaseLost:
        log.warning("job %s: attempt %s lost its lease to another; ended", job.id, job.attempts)
        return
    except TimedOut:
        error = TIMED_OUT.format(limit=max(1, round(limit_s / 60)),
                                 duration=max(1, round(source.duration_s / 60)))
        return _failed(engine, job, error, final=True)
    except DiskFull:
        return _disk_full(engine, job, work)
    except OSError as exc:  # ffmpeg (or setpriv, prlimit, nice) missing, or the disk
        if exc.errno in NO_SPACE:
            return _disk_full(engine, job, work)
        return _failed(engine, job, f"ffmpeg could not run ({type(exc).__name__})")
    renditions = ladder(source)
    missing = None if code != 0 else incomplete(work, renditions)
    if (code != 0 or missing) and disk_full():
        return _disk_full(engine, job, work)
    if code != 0:
        return _failed(engine, job, tail or f"ffmpeg exited with {code}")
    if missing:
        return _failed(engine, job, INCOMPLETE.format(what=missing))
    try:
        (work / "thumbs.vtt").write_text(thumbnails_vtt(source), encoding="utf-8")
    except OSError as exc:
        if exc.errno in NO_SPACE:
            return _disk_full(engine, job, work)
        return _failed(engine, job, *_write_failure(exc))
    if not report(0.99):
        log.warning("job %s: attempt %s lost its lease before publishing", job.id, job.attempts)
        return
    key = storage.publish(work, job.event_id, recording.id)
    with Session(engine, expire_on_commit=False) as db:
        published = jobs.succeed(db, job, key, [r.name for r in renditions])
    if published is None:  # taken over between the two: what it published goes
        storage.remove(key)
        log.warning("job %s: attempt %s lost its lease; its output removed", job.id,
                    job.attempts)
        return
    log.info("job %s: published as %s", job.id, key)


def _disk_full(engine: Engine, job: TranscodeJob, work: Path) -> None:
    """The person on call reads this line; staff read DISK_FULL on the job."""
    shutil.rmtree(work, ignore_errors=True)  # the room it took, given back before anything
    log.error("job %s: the media disk is full (%s bytes free after its folder was removed); "
              "the job failed, nothing was published", job.id, free_bytes(work.parent))
    _failed(engine, job, DISK_FULL, final=True)


def _failed(engine: Engine, job: TranscodeJob, error: str, final: bool = False) -> None:
    with Session(engine, expire_on_commit=False) as db:
        ended = jobs.fail(db, job, error, final=final)
    if ended is None:
        log.warning("job %s: attempt %s failed after losing its lease", job.id, job.attempts)
    else:
        log.warning("job %s: ffmpeg failed (attempt %s, now %s)", job.id, ended.attempts,
                    ended.state)


def sweep(db: Session, storage: Storage) -> int:
    """Removes what attempts that died left: work folders of attempts no longer running, and
    published folders no recording names whose job is not running (a process that died
    between publishing and marking the job). Folders are listed before the database is read:
    an attempt's claim is committed before its folder exists."""
    if not isinstance(storage, LocalStorage):
        return 0
    work = [folder for folder in (storage.root / "work").iterdir() if folder.is_dir()]
    published = [folder.name for folder in storage.hls_root.iterdir() if folder.is_dir()]
    live = {f"{job_id}-{lease}" for job_id, lease in jobs.running_leases(db)}
    removed = 0
    for folder in work:
        if folder.name not in live:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    for key in published:
        parts = key.split("-")
        if len(parts) != 3 or not parts[1].isdigit():
            continue  # not one of ours: left alone
        recording = db.get(Recording, int(parts[1]), populate_existing=True)
        if recording is None or (recording.media_key != key and recording.state != "running"):
            storage.remove(key)
            removed += 1
    if removed:
        log.info("swept %s folder(s) left by attempts that died", removed)
    return removed


def run_transcoder(settings: Settings, stop: threading.Event, interval_s: float = 2.0, *,
                   longest_s: float | None = None) -> None:
    """Runs jobs one after another until `stop` is set (with `longest_s`: only recordings that
    short). With none due it looks again after `interval_s`, or at once when this process
    queues one."""
    storage = storage_for(settings)
    queued = threading.Event()
    _waiting.add(queued)
    try:
        while not stop.is_set():
            queued.clear()
            try:
                ran = run_one(settings, storage, stop, longest_s=longest_s)
            except Exception as exc:
                log.error("transcoder round failed: %s", type(exc).__name__)
                ran = False
            if not ran:
                queued.wait(interval_s)
    finally:
        _waiting.discard(queued)
