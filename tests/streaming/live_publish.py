"""A real ffmpeg publisher for the webcast's tests: testsrc2 and a sine at real time (`-re`),
its bytes written into a Feed of the app's hub (streaming.live_hub), in the app's event loop
(the TestClient's portal), from a thread of its own. Short and small: the machine is shared."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session, select

from events.models import Event
from streaming.live_hub import IngestRefused
from streaming.models import LiveStream

CHUNK = 32 * 1024


def publisher_args(seconds: float, container: str = "flv", *, size: str = "320x180",
                   video: bool = True, audio: bool = True) -> list[str]:
    args = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re"]
    if video:
        args += ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    if video:
        args += ["-c:v", "libx264", "-preset", "ultrafast", "-g", "50"] if container == "flv" \
            else ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8"]
    if audio:
        args += ["-c:a", "aac"] if container == "flv" else ["-c:a", "libopus"]
    # Each packet sent as it is made, as an RTMP encoder does (not 32 KiB at a time).
    return args + ["-flush_packets", "1", "-f", container, "pipe:1"]


class Publisher:
    """Publishes for `seconds`, then closes its feed (or `cut()` closes it earlier)."""

    def __init__(self, client: Any, event_id: int, seconds: float = 6, container: str = "flv",
                 **options: Any) -> None:
        self.event_id, self.container = event_id, container
        self.args = publisher_args(seconds, container, **options)
        self.refused: IngestRefused | None = None
        self.sent = 0
        self._stop = threading.Event()
        hub = client.app.state.live_hub
        # In the app's loop: the TestClient's portal, or the loop a real server runs.
        self.call = client.portal.call if getattr(client, "portal", None) else \
            lambda work, *args: asyncio.run_coroutine_threadsafe(work(*args), hub.loop).result()
        self.feed = self.call(hub.open_feed, event_id, "rtmp", container)
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        process = subprocess.Popen(self.args, stdout=subprocess.PIPE)
        assert process.stdout is not None
        try:
            while not self._stop.is_set() and (chunk := process.stdout.read1(CHUNK)):
                self.call(self.feed.write, chunk)
                self.sent += len(chunk)
        except IngestRefused as refused:
            self.refused = refused
        finally:
            process.kill()
            process.wait()
            self.call(self.feed.close)

    def cut(self) -> None:
        self._stop.set()
        self.join()

    def join(self, timeout: float = 60) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the publisher did not finish"


def wait_for(check: Any, timeout: float = 20, every: float = 0.3) -> Any:
    """Polls `check()` until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {check}")
        time.sleep(every)


def segments_in(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("seg_")]


def webcast_of(admin: Any, event_id: int) -> dict[str, Any]:
    answer = admin.get(f"/api/events/{event_id}/live")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def preview_of(admin: Any, event_id: int, rendition: str = "180p") -> str:
    url = webcast_of(admin, event_id)["preview_url"]
    if not url:
        return ""
    answer = admin.get(url.replace("preview.m3u8", f"{rendition}/preview.m3u8"))
    return answer.text if answer.status_code == 200 else ""


def end_session(admin: Any, db: Session, event_id: int) -> float:
    """Ends the session (it started a minute ago); the moment it ended."""
    event = db.get(Event, event_id)
    assert event is not None
    event.starts_at = datetime.now(UTC) - timedelta(minutes=1)
    db.add(event)
    db.commit()
    answer = admin.post(f"/api/events/{event_id}/status", json={"status": "ended"})
    assert answer.status_code == 200, answer.text
    return time.monotonic()


def stream_row(db: Session, event_id: int) -> LiveStream:
    db.expire_all()
    return db.exec(select(LiveStream).where(LiveStream.event_id == event_id)).one()
