"""ffmpeg in a child process, watched: its limits, the timer beside it, and how it is ended.
streaming.transcode runs a job's ladder through `run_ffmpeg`; this module knows nothing of
jobs but the tail of an error it keeps (jobs.ERROR_TAIL).

The child is started with no Python code between fork and exec (the web process has threads:
`preexec_fn` is unsafe there). Its limits are set by small programs in front of it, each
exec()ing the next: `setpriv --pdeathsig KILL` (util-linux: it dies with the thread that
started it, even when the worker is killed), `prlimit` (util-linux: address space, from
KAIFANG_TRANSCODE_MEMORY_MB, and CPU seconds) and `nice` (coreutils). It runs in a session of
its own, so a terminal's Ctrl-C reaches the worker, which ends it itself.

A watch thread beside it, on a timer of its own (never on what ffmpeg prints: a file whose
timestamps jump prints nothing for minutes), reports the progress (which renews the job's
lease), and ends the child (SIGTERM, then SIGKILL) when the lease is lost to another attempt,
when the worker stops, when the run passes its time limit, or when the media disk is full.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from streaming import jobs

log = logging.getLogger("kaifang.transcode")

FFMPEG = "ffmpeg"
NICENESS = 10  # below the web service: a transcode never starves a request
# The watch thread looks this often; writes progress at most every REPORT_EVERY_S, and renews
# the lease at least every RENEW_EVERY_S (well inside jobs.LEASE) while ffmpeg is alive.
TICK_S = 0.2
REPORT_EVERY_S = 1.0
RENEW_EVERY_S = 15.0
# After SIGTERM ffmpeg may go on flushing (a gap in the timestamps is filled first): then SIGKILL.
TERMINATE_GRACE_S = 3.0
# A run may take max(10 min, 4 × the source's duration). The ladder runs at 1.5× real time or
# better on two cores (bench/transcode.py); 4× leaves room for a machine busy with requests
# (ffmpeg runs niced) and the floor for a short clip's start-up. A source whose timestamps
# promise far more than it holds ends `failed`, not retried: another run would do the same.
TIME_FLOOR_S = 600.0
TIME_FACTOR = 4.0


class Stopped(Exception):
    """The worker is stopping: ffmpeg was ended, and the job is released for another attempt."""


class LeaseLost(Exception):
    """Another attempt holds the job now: this one ended its ffmpeg and publishes nothing."""


class TimedOut(Exception):
    """ffmpeg ran past the run's time limit and was ended."""


class DiskFull(Exception):
    """The media disk's free space fell under the reserve: ffmpeg was ended."""


def free_bytes(folder: Path) -> int | None:
    """Free space on the disk that holds `folder` (None: it cannot be read)."""
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def time_limit_s(duration_s: float) -> float:
    return max(TIME_FLOOR_S, TIME_FACTOR * duration_s)


def limits(memory_mb: int, limit_s: float) -> list[str]:
    """The programs in front of ffmpeg that set its limits (see the module's docstring). CPU
    seconds: the time limit on every core, a bound even if the watch thread cannot act."""
    cpu_s = math.ceil(limit_s * (os.cpu_count() or 1)) + 60
    return ["setpriv", "--pdeathsig", "KILL", "--",
            "prlimit", f"--as={memory_mb * 1024 * 1024}", f"--cpu={cpu_s}", "--",
            "nice", "-n", str(NICENESS)]


def end_child(child: subprocess.Popen[str]) -> None:
    """SIGTERM, then SIGKILL after TERMINATE_GRACE_S; returns once the child is gone."""
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(TERMINATE_GRACE_S)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


class _Watch:
    """The timer beside a running ffmpeg (see the module's docstring)."""

    def __init__(self, child: subprocess.Popen[str], report: Callable[[float], bool],
                 fraction: Callable[[], float], stop: threading.Event | None,
                 limit_s: float, disk_full: Callable[[], bool],
                 renew_every_s: float | None) -> None:
        self.child, self.report, self.fraction, self.stop = child, report, fraction, stop
        self.disk_full = disk_full
        self.renew_every_s = RENEW_EVERY_S if renew_every_s is None else renew_every_s
        self.report_every_s = min(REPORT_EVERY_S, self.renew_every_s)
        self.deadline = time.monotonic() + limit_s
        self.why: type[Exception] | None = None
        self.done = threading.Event()

    def run(self) -> None:
        reported, last_report, last_renewal = -1.0, 0.0, time.monotonic()
        while not self.done.wait(TICK_S):
            now = time.monotonic()
            if self.stop is not None and self.stop.is_set():
                return self._end(Stopped)
            if now >= self.deadline:
                return self._end(TimedOut)
            if self.disk_full():
                return self._end(DiskFull)
            if now - last_report < self.report_every_s:
                continue
            try:  # nothing may end this thread while ffmpeg runs: it holds the time limit
                current = self.fraction()
                if current == reported and now - last_renewal < self.renew_every_s:
                    continue
                last_report = now
                held = self.report(current)
            except Exception as exc:  # the database busy or away: try again at the next tick
                log.warning("progress not written: %s", type(exc).__name__)
                continue
            if not held:
                return self._end(LeaseLost)
            reported, last_renewal = current, now
        return None

    def _end(self, why: type[Exception]) -> None:
        self.why = why
        if why is DiskFull:  # nothing it could still write is wanted: room is, at once
            self.child.kill()
        end_child(self.child)


def run_ffmpeg(args: list[str], duration_s: float, report: Callable[[float], bool],
               stop: threading.Event | None = None, *,
               fraction: Callable[[], float] = lambda: 0.0, limit_s: float | None = None,
               memory_mb: int = 1536, disk_full: Callable[[], bool] = lambda: False,
               renew_every_s: float | None = None) -> tuple[int, str]:
    """Runs ffmpeg with `args` under its limits; the watch thread calls report(fraction())
    (False: the lease is lost) at least every `renew_every_s` (RENEW_EVERY_S unless given).
    Returns the exit code and the tail of what ffmpeg wrote to standard error; raises Stopped,
    LeaseLost, TimedOut or DiskFull (disk_full() said so) once ffmpeg is ended for that."""
    limit_s = time_limit_s(duration_s) if limit_s is None else limit_s
    # Fewer malloc arenas: less address space reserved per thread under RLIMIT_AS.
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}
    with tempfile.TemporaryFile() as errors:
        child = subprocess.Popen([*limits(memory_mb, limit_s), FFMPEG, *args],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=errors, text=True, start_new_session=True, env=env)
        watch = _Watch(child, report, fraction, stop, limit_s, disk_full, renew_every_s)
        watcher = threading.Thread(target=watch.run, name="kaifang-ffmpeg-watch", daemon=True)
        watcher.start()
        try:
            assert child.stdout is not None
            for _line in child.stdout:  # -progress lines, drained so ffmpeg never blocks
                pass
            code = child.wait()
        except BaseException:
            end_child(child)
            raise
        finally:
            watch.done.set()
            watcher.join()
        if watch.why is not None:
            raise watch.why()
        errors.seek(0)
        tail = errors.read()[-jobs.ERROR_TAIL:].decode("utf-8", "replace").strip()
    return code, tail
