"""Transcode runs with real processes: the lease renewed while ffmpeg is silent, a lost lease
ending ffmpeg, the 7 KB attack of issue 16 ending in seconds, a long recording never ahead of
another unit's clip and stopped at its time limit, the child's limits, progress that moves, and
a stop (SIGTERM, the app's end) that ends ffmpeg and releases the job."""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.config import Settings
from server.worker import start_transcoder
from streaming import ffmpeg_child, jobs, transcode
from streaming.ladder import Source
from streaming.transcode import run_one
from tests.conftest import TEST_SECRET_KEY
from tests.helpers import children_named, gone
from tests.streaming.jobs_helpers import (
    claim,
    ffmpeg,
    fresh,
    queue,
    recording_of,
    run_out,
    unit_session,
)

# What the attack's probe gives: two 1920x1080 frames, 3600 s apart.
ATTACK = Source(3600.04, 1920, 1080, False)
# An hour of real frames: what keeps ffmpeg busy while a test looks (see `media`).
HOUR = Source(3600.0, 1280, 720, False)


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The attack of issue 16 (an .mkv of two 1080p frames an hour apart, 7 KB), a 20 s clip,
    and an hour of 1280x720 video (8 MB, made in a fraction of a second: a 2 s still picture
    repeated by stream copy). Each of the hour's 90,000 frames is encoded at 720p, 480p and
    360p: about 15 CPU-minutes, so ffmpeg is still busy with it whenever a test looks, on any
    machine (a test stops it after seconds)."""
    folder = tmp_path_factory.mktemp("jobs")
    attack = folder / "attack.mkv"
    ffmpeg("-f", "lavfi", "-i", "color=c=red:s=1920x1080:r=25:d=0.08", "-vf",
           "setpts=N*3600/TB", "-fps_mode", "passthrough", "-c:v", "libx264", "-preset",
           "ultrafast", str(attack))
    assert attack.stat().st_size < 8 * 1024
    clip = folder / "clip20.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=20", "-f", "lavfi",
           "-i", "sine=frequency=440:duration=20", "-c:v", "libx264", "-preset", "ultrafast",
           "-c:a", "aac", "-shortest", str(clip))
    still = folder / "still.mkv"
    ffmpeg("-f", "lavfi", "-i", "color=c=blue:s=1280x720:r=25:d=2", "-c:v", "libx264",
           "-preset", "ultrafast", str(still))
    hour = folder / "hour.mkv"
    ffmpeg("-stream_loop", str(round(HOUR.duration_s / 2) - 1), "-i", str(still), "-c", "copy",
           str(hour))
    return {"attack": attack, "clip20": clip, "hour": hour}


def _fake_ffmpeg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    fake = tmp_path / "ffmpeg"
    fake.write_text(f"#!/bin/sh\n{body}\n")
    fake.chmod(0o755)
    monkeypatch.setattr(ffmpeg_child, "FFMPEG", str(fake))


# What a fake ffmpeg writes to "succeed": a master playlist and the 360p rendition's, complete
# (a folder whose playlists are missing or cut off is never published).
WRITES_PLAYLISTS = ('for a in "$@"; do case "$a" in */poster.jpg) out="${a%/poster.jpg}";; '
                    'esac; done; mkdir -p "$out/360p"; echo "#EXTM3U" > "$out/master.m3u8"; '
                    'printf "#EXTM3U\\n#EXT-X-ENDLIST\\n" > "$out/360p/index.m3u8"')


def _quick_watch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ffmpeg_child, "TICK_S", 0.05)
    monkeypatch.setattr(ffmpeg_child, "REPORT_EVERY_S", 0.1)
    monkeypatch.setattr(ffmpeg_child, "RENEW_EVERY_S", 0.2)
    monkeypatch.setattr(ffmpeg_child, "TERMINATE_GRACE_S", 1.0)


def _until(what: Callable[[], Any], within_s: float, step_s: float = 0.05) -> Any:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(step_s)
    raise AssertionError(f"not within {within_s} s")


def _start(settings: Settings) -> tuple[threading.Thread, list[bool]]:
    done: list[bool] = []
    runner = threading.Thread(target=lambda: done.append(run_one(settings)), daemon=True)
    runner.start()
    return runner, done


def test_the_lease_is_renewed_while_ffmpeg_prints_nothing(staff, db, settings, tmp_path,
                                                           monkeypatch):
    monkeypatch.setattr(jobs, "LEASE", timedelta(seconds=2))
    _quick_watch(monkeypatch)
    _fake_ffmpeg(tmp_path, monkeypatch, f"sleep 3.5; {WRITES_PLAYLISTS}")  # silent, then done
    job = queue(db, settings, unit_session(staff, db, "education"))
    runner, _ = _start(settings)
    _until(lambda: fresh(settings, job.id).state == "running", 10)
    time.sleep(2.6)  # past a 2 s lease, and ffmpeg has printed nothing
    assert claim(settings) is None  # nobody may take it over: its worker is alive
    runner.join(15)
    ended = fresh(settings, job.id)
    assert (ended.state, ended.attempts) == ("succeeded", 1)


def test_a_run_that_lost_its_lease_ends_its_ffmpeg_and_publishes_nothing(
        staff, db, settings, tmp_path, monkeypatch):
    _quick_watch(monkeypatch)
    _fake_ffmpeg(tmp_path, monkeypatch, "exec sleep 30")
    cut_off = threading.Event()  # its renewals do not reach the database until then
    renew = jobs.renew
    monkeypatch.setattr(jobs, "renew", lambda *args, **kwargs: renew(*args, **kwargs)
                        if cut_off.is_set() else True)
    job = queue(db, settings, unit_session(staff, db, "education"))
    runner, done = _start(settings)
    sleeper = _until(lambda: children_named(os.getpid(), "sleep"), 10)[0]
    run_out(settings, job.id)  # its lease ran out: another worker takes the job over
    other = claim(settings)
    assert other is not None and other.attempts == 2
    cut_off.set()
    runner.join(5)
    assert done == [True] and gone(sleeper)
    now = fresh(settings, job.id)
    assert (now.state, now.lease) == ("running", other.lease)
    assert list((settings.media_dir / "hls").iterdir()) == []
    assert list((settings.media_dir / "work").iterdir()) == []  # its own folder, removed


def test_the_7kb_attack_ends_in_seconds_and_never_holds_up_another_units_clip(
        staff, db, settings, media, clips):
    # Before: ffmpeg filled the hour with 90,000 copies of a 1080p frame for each of four
    # renditions (over half an hour on two cores), and the other unit's clip waited behind it.
    bad = queue(db, settings, unit_session(staff, db, "education"), media["attack"], ATTACK)
    good = queue(db, settings, unit_session(staff, db, "health"), clips["video"],
                 Source(3.0, 640, 360, True))
    stop = threading.Event()
    lanes = start_transcoder(settings, stop)
    try:
        _until(lambda: all(fresh(settings, job.id).state in ("succeeded", "failed")
                           for job in (bad, good)), 60, 0.1)
    finally:
        stop.set()
        transcode.wake()
        lanes.join(15)
    assert not lanes.is_alive()
    assert fresh(settings, good.id).state == "succeeded"
    assert fresh(settings, bad.id).attempts == 1
    assert children_named(os.getpid(), "ffmpeg") == []


def test_a_long_recording_never_holds_up_another_units_clip(staff, db, settings, media,
                                                            clips):
    long = queue(db, settings, unit_session(staff, db, "education"), media["hour"], HOUR)
    short = queue(db, settings, unit_session(staff, db, "health"), clips["video"],
                  Source(3.0, 640, 360, True))
    stop = threading.Event()
    lanes = start_transcoder(settings, stop)
    try:
        _until(lambda: fresh(settings, short.id).state == "succeeded", 30, 0.1)
        assert fresh(settings, long.id).state == "running"  # the clip did not wait for it
    finally:
        stop.set()
        transcode.wake()
        lanes.join(15)
    assert not lanes.is_alive() and children_named(os.getpid(), "ffmpeg") == []
    released = fresh(settings, long.id)
    assert (released.state, released.attempts, released.lease) == ("queued", 0, "")


def test_a_transcode_past_its_time_limit_is_ended_and_fails_for_good(staff, db, settings,
                                                                      monkeypatch, media):
    _quick_watch(monkeypatch)
    monkeypatch.setattr(ffmpeg_child, "TIME_FLOOR_S", 1.5)  # max(1.5 s, duration / 2400)
    monkeypatch.setattr(ffmpeg_child, "TIME_FACTOR", 1 / 2400)
    job = queue(db, settings, unit_session(staff, db, "education"), media["hour"], HOUR)
    assert run_one(settings) is True
    failed = fresh(settings, job.id)
    assert (failed.state, failed.attempts) == ("failed", 1)
    assert claim(settings) is None  # not tried again: it would run out of time again
    assert "转码超时" in failed.error and "time limit (1 min for a 60 min" in failed.error
    assert failed.finished_at - failed.started_at < timedelta(seconds=1.5 + 1 + 5)
    assert children_named(os.getpid(), "ffmpeg") == []
    assert list((settings.media_dir / "hls").iterdir()) == []


def test_ffmpeg_runs_in_its_own_session_under_memory_cpu_and_priority_limits(tmp_path,
                                                                            monkeypatch):
    _fake_ffmpeg(tmp_path, monkeypatch, 'echo "$(ulimit -v) $(ulimit -t) $(nice) '
                 '$(cut -d" " -f6 /proc/$$/stat) $$" >&2\nexit 3')
    spawned: list[dict[str, Any]] = []
    popen = subprocess.Popen

    def spy(*args: Any, **kwargs: Any) -> Any:
        spawned.append(kwargs)
        return popen(*args, **kwargs)

    monkeypatch.setattr(ffmpeg_child.subprocess, "Popen", spy)
    code, said = ffmpeg_child.run_ffmpeg([], 60.0, lambda fraction: True, memory_mb=700)
    assert code == 3
    memory_kb, cpu_s, niceness, session, pid = (int(word) for word in said.split())
    assert memory_kb == 700 * 1024
    assert cpu_s == math.ceil(600 * (os.cpu_count() or 1)) + 60  # the 10-minute floor
    assert niceness == os.nice(0) + ffmpeg_child.NICENESS
    assert session == pid  # a session of its own
    assert spawned[0].get("preexec_fn") is None and spawned[0]["start_new_session"] is True
    monkeypatch.setenv("KAIFANG_TRANSCODE_MEMORY_MB", "900")
    assert Settings().transcode_memory_mb == 900


def test_the_jobs_progress_rises_in_steps_during_a_transcode(staff, db, settings, monkeypatch,
                                                             media):
    monkeypatch.setattr(ffmpeg_child, "TICK_S", 0.05)
    monkeypatch.setattr(ffmpeg_child, "REPORT_EVERY_S", 0.1)
    admin = staff("admin")
    job = queue(db, settings, unit_session(staff, db, "education"), media["clip20"],
                Source(20.0, 640, 360, True))
    runner, _ = _start(settings)
    seen = []
    while runner.is_alive():
        seen.append(admin.get(f"/api/jobs/{job.id}").json()["progress"])
        time.sleep(0.03)
    done = admin.get(f"/api/jobs/{job.id}").json()
    assert (done["state"], done["progress"]) == ("succeeded", 1)
    steps = sorted({p for p in seen if 0 < p < 1})
    assert len(steps) >= 2, seen  # 0.2, 0.4, ... as its 4 s segments are written
    assert seen == sorted(seen)


def test_the_apps_end_ends_ffmpeg_and_releases_the_job(staff, db, settings, media):
    job = queue(db, settings, unit_session(staff, db, "education"), media["hour"], HOUR)
    with TestClient(create_app(settings, start_worker=True)):
        child = _until(lambda: children_named(os.getpid(), "ffmpeg"), 20)[0]
        stopping = time.monotonic()
    assert time.monotonic() - stopping < ffmpeg_child.TERMINATE_GRACE_S + 3
    assert gone(child)
    released = fresh(settings, job.id)
    assert (released.state, released.attempts, released.lease) == ("queued", 0, "")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("command", ["worker", "serve"])
def test_sigterm_ends_ffmpeg_releases_the_job_and_exits_promptly(command, staff, db, settings,
                                                                 media):
    job = queue(db, settings, unit_session(staff, db, "education"), media["hour"], HOUR)
    env = {**os.environ, "KAIFANG_DATA_DIR": str(settings.data_dir),
           "KAIFANG_SECRET_KEY": TEST_SECRET_KEY, "KAIFANG_WORKER_INTERVAL_S": "1"}
    if settings.database_url:
        env["KAIFANG_DATABASE_URL"] = settings.database_url
    args = ["--port", str(_free_port())] if command == "serve" else []
    server = subprocess.Popen([str(Path(sys.executable).parent / "kaifang"), command, *args],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    child = None
    try:
        child = _until(lambda: children_named(server.pid, "ffmpeg"), 30)[0]
        server.send_signal(signal.SIGTERM)
        stopping = time.monotonic()
        # uvicorn raises the signal again once it has shut down
        assert server.wait(timeout=ffmpeg_child.TERMINATE_GRACE_S + 10) in (0, -signal.SIGTERM)
        assert time.monotonic() - stopping < ffmpeg_child.TERMINATE_GRACE_S + 5
        assert gone(child)
    finally:
        for pid in (server.pid, child):
            if pid is not None and not gone(pid):
                os.kill(pid, signal.SIGKILL)
        server.wait()
    released = fresh(settings, job.id)
    assert (released.state, released.attempts, released.lease) == ("queued", 0, "")


def test_a_folder_published_by_a_run_that_died_before_marking_its_job_is_swept_at_start(
        staff, db, settings, tmp_path, monkeypatch):
    _quick_watch(monkeypatch)
    _fake_ffmpeg(tmp_path, monkeypatch, WRITES_PLAYLISTS)  # done at once
    job = queue(db, settings, unit_session(staff, db, "education"))
    succeed = jobs.succeed

    def dies(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt  # the process is killed between publishing and marking

    monkeypatch.setattr(jobs, "succeed", dies)
    with pytest.raises(KeyboardInterrupt):
        run_one(settings)
    hls = settings.media_dir / "hls"
    [orphan] = list(hls.iterdir())
    monkeypatch.setattr(jobs, "succeed", succeed)
    run_out(settings, job.id)
    assert run_one(settings) is True  # taken up again, and published under a key of its own
    kept = fresh(settings, job.id)
    assert (kept.state, kept.attempts) == ("succeeded", 2)
    stopped = threading.Event()
    stopped.set()
    start_transcoder(settings, stopped).join(5)  # a worker starting sweeps first
    assert not orphan.exists()
    assert [folder.name for folder in hls.iterdir()] == [recording_of(settings, kept).media_key]
