"""Helpers for the RTMP gate's tests: a hub that writes what it is handed to files, the gate
on a free port in a thread of its own, real ffmpeg publishers and ffprobe."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from server.config import Settings
from streaming.rtmp import RtmpServer
from tests.conftest import event_body, publish


class SinkFeed:
    """A feed that keeps the bytes in a file (what the encoder would read)."""

    def __init__(self, path: Path, event_id: int) -> None:
        self.path = path
        self.event_id = event_id
        self.file = path.open("wb")
        self.written = 0
        self.error: str | None = None
        self.closed = threading.Event()

    async def write(self, data: bytes) -> None:
        self.file.write(data)
        self.written += len(data)

    async def close(self, error: str = "") -> None:
        self.error = error
        self.file.close()
        self.closed.set()


class SinkHub:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.feeds: list[SinkFeed] = []

    async def open_feed(self, event_id: int, source: str, container: str) -> SinkFeed:
        assert (source, container) == ("rtmp", "flv")
        feed = SinkFeed(self.folder / f"feed{len(self.feeds)}.flv", event_id)
        self.feeds.append(feed)
        return feed


class Gate:
    """The RTMP gate on a free port of 127.0.0.1, on an event loop in its own thread (as the
    app's lifespan would run it), handing publishers to `hub`."""

    def __init__(self, settings: Settings, hub: Any, **options: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        server = RtmpServer(settings, lambda: hub, **options)
        self.server = self._run(server.start("127.0.0.1", 0))
        self.port = self.server.port

    def _run(self, work: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout=15)

    def url(self, key: str) -> str:
        return f"rtmp://127.0.0.1:{self.port}/live/{key}"

    def close(self) -> None:
        self._run(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def publisher(url: str, seconds: float = 3, size: str = "320x180",
              *options: str) -> subprocess.Popen[bytes]:
    """A real encoder: ffmpeg publishing a test picture and a tone in real time (-re)."""
    argv = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
            "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=15:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
            "-c:v", "libx264", "-preset", "ultrafast", "-g", "15", "-c:a", "aac",
            *options, "-f", "flv", url]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finish(process: subprocess.Popen[bytes], timeout: float = 30) -> tuple[int, str]:
    _, stderr = process.communicate(timeout=timeout)
    return process.returncode, stderr.decode("utf-8", "replace")


def ffprobe(path: Path) -> dict[str, Any]:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries",
         "stream=codec_type,codec_name,width,height:format=duration,format_name",
         "-of", "json", str(path)], capture_output=True, check=True, timeout=30)
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def webcast_session(staff: Any, db: Any) -> tuple[Any, int]:
    """An admin's client and a published online session starting soon."""
    admin = staff("admin")
    now = datetime.now(UTC)
    body = event_body(db, mode="online", venue="", address="",
                      starts_at=(now + timedelta(minutes=10)).isoformat(),
                      ends_at=(now + timedelta(hours=2)).isoformat(),
                      registration_opens_at=(now - timedelta(days=1)).isoformat(),
                      registration_closes_at=(now + timedelta(minutes=5)).isoformat())
    answer = admin.post("/api/events", json=body)
    assert answer.status_code == 201, answer.text
    event_id = int(answer.json()["id"])
    publish(admin, event_id)
    return admin, event_id


def new_key(client: Any, event_id: int) -> str:
    answer = client.post(f"/api/events/{event_id}/ingest")
    assert answer.status_code == 201, answer.text
    key: str = answer.json()["stream_key"]
    return key
