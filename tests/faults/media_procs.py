"""Real parts for the media fault tests: `kaifang worker` and `kaifang serve` as processes of
their own on the test's database, clips made by ffmpeg, a small tmpfs as the media disk, and
waits on a condition instead of sleeps."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from server.config import Settings
from tests.conftest import TEST_SECRET_KEY

KAIFANG = str(Path(sys.executable).parent / "kaifang")


def until(what: Callable[[], Any], within_s: float, step_s: float = 0.05) -> Any:
    """What `what` returns once it is true; AssertionError when it is not within `within_s`."""
    deadline = time.monotonic() + within_s
    while True:
        found = what()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within_s} s")
        time.sleep(step_s)


def clip(path: Path, seconds: float, size: str = "640x360", video_kbps: int = 150) -> Path:
    """A recording with picture and sound, at a low bitrate (small to upload, while its
    transcode writes 800 kb/s of 360p and more)."""
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={seconds}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
                    "-c:v", "libx264", "-preset", "veryfast", "-b:v", f"{video_kbps}k",
                    "-c:a", "aac", "-b:a", "48k", "-shortest", str(path)], check=True)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def kaifang_env(settings: Settings, **more: str) -> dict[str, str]:
    """The environment of a `kaifang` process on the test's database (SQLite in its data dir,
    or the PostgreSQL pass's) and Redis."""
    env = {**os.environ, "KAIFANG_DATA_DIR": str(settings.data_dir),
           "KAIFANG_SECRET_KEY": TEST_SECRET_KEY, "KAIFANG_PUBLIC_URL": settings.public_url,
           "KAIFANG_RTMP_PORT": "0"}
    for name in ("KAIFANG_DATABASE_URL", "KAIFANG_REDIS_URL"):
        env.pop(name, None)
    if settings.database_url:
        env["KAIFANG_DATABASE_URL"] = settings.database_url
    if settings.redis_url:
        env["KAIFANG_REDIS_URL"] = settings.redis_url
    env.update(more)
    return env


class Process:
    """A `kaifang` command running on its own; what it printed is in `log` (for a failure)."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.popen = subprocess.Popen([KAIFANG, *args], env=env, stdout=out, stderr=out,
                                          stdin=subprocess.DEVNULL)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def kill(self) -> None:
        """SIGKILL: the process ends at once, with no chance to tidy up."""
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def said(self) -> str:
        """Everything it printed (a worker's first line soon scrolls past a short tail)."""
        return self.log.read_text(errors="replace")


def worker(settings: Settings, log: Path, **env: str) -> Process:
    return Process(["worker", "--interval", "1"], kaifang_env(settings, **env), log)


def serve(settings: Settings, log: Path, **env: str) -> tuple[Process, str]:
    """`kaifang serve` starting on a free port of 127.0.0.1 (see `ready`), and its address."""
    port = free_port()
    process = Process(["serve", "--host", "127.0.0.1", "--port", str(port)],
                      kaifang_env(settings, **env), log)
    return process, f"http://127.0.0.1:{port}"


def ready(process: Process, url: str, within_s: float = 120) -> None:
    """Once the server answers /healthz."""
    import httpx

    def answers() -> bool:
        if process.popen.poll() is not None:
            raise AssertionError(f"kaifang serve ended: {process.said()[-4000:]}")
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    until(answers, within_s, 0.1)


# ---- a small disk -------------------------------------------------------------------------

@contextlib.contextmanager
def tmpfs(folder: Path, size_bytes: int) -> Iterator[Path]:
    """A tmpfs of `size_bytes` mounted on `folder` until the block ends (root only: skipped
    where mount is refused, except in CI, where that fails the test)."""
    folder.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        _cannot("there is no mount command")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes // 1024}k,mode=700",
                              "tmpfs", str(folder)], capture_output=True, text=True)
    if mounted.returncode != 0:
        _cannot(f"mount -t tmpfs was refused: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], check=True)  # a file still open


def _cannot(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"the disk-full tests need a tmpfs in CI: {why}")
    pytest.skip(f"the disk-full tests need a tmpfs (run as root): {why}")


def free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def fill(folder: Path, leave_bytes: int, name: str = "filler") -> Path:
    """A file that takes the disk's free space down to about `leave_bytes` (0: until a write
    fails for want of space)."""
    path = folder / name
    block = b"\0" * 65536
    with path.open("ab", buffering=0) as out:
        try:
            while True:
                room = free_bytes(folder) - leave_bytes
                if room <= 0:
                    break
                out.write(block[:min(len(block), room)])
        except OSError:
            pass  # full
    return path


MEDIA_DISK_BYTES = 4 * 1024 * 1024


@pytest.fixture
def media_disk(settings: Settings) -> Iterator[Path]:
    """The media dir on a 4 MiB tmpfs of its own (mounted before the app makes its folders),
    with no upload margin and no transcode reserve: the disk is full when it is full."""
    settings.upload_disk_margin_bytes = 0
    settings.media_reserve_bytes = 0
    with tmpfs(settings.media_dir, MEDIA_DISK_BYTES) as folder:
        yield folder


def plays(app: Any, staff_client: Any, key: str) -> float:
    """A published recording played as a player plays it: ffmpeg reads its master playlist,
    every rendition and segment through the app over HTTP (the staff preview's cookie), and
    decodes all of it; returns its duration. AssertionError on any error."""
    from server.deps import SESSION_COOKIE
    from tests.conftest import serve as serve_app

    with serve_app(app) as url:
        played = subprocess.run(
            ["ffmpeg", "-hide_banner", "-v", "error", "-headers",
             f"Cookie: {SESSION_COOKIE}={staff_client.cookies.get(SESSION_COOKIE)}\r\n",
             "-i", f"{url}/media/hls/{key}/master.m3u8", "-map", "0", "-f", "null", "-"],
            capture_output=True, text=True, timeout=60)
    assert played.returncode == 0 and played.stderr == "", played.stderr
    probed = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration",
                             "-of", "csv=p=0", f"{app.state.settings.media_dir}/hls/{key}/"
                             "master.m3u8"], capture_output=True, text=True, check=True)
    return float(probed.stdout)
