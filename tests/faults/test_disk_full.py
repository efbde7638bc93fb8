"""A media disk that fills up, for real (a small tmpfs as the media dir): a transcode that runs
out of room fails with 磁盘空间不足 for staff to read, publishes nothing and leaves nothing, the
recording already playing plays on, and once space is freed the recording goes through; an
upload the disk fills mid-body is 507 `no_space` with nothing of it kept; /readyz says the
media store failed while the disk is full; and pages answer all the while."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlmodel import Session, select

from server.app import create_app
from server.config import Settings
from server.db import get_engine
from server.worker import start_transcoder
from streaming import transcode
from streaming.models import Recording
from tests.faults.media_procs import clip, fill, free_bytes, media_disk, plays, until
from tests.streaming.jobs_helpers import unit_session

__all__ = ["media_disk"]  # the fixture, used by name below

SECONDS = 6


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 s of 320x240 at 100 kb/s (about 100 KB); its rendition is about 500 KB."""
    return clip(tmp_path_factory.mktemp("diskfull") / "session.mp4", SECONDS, "320x240", 100)


@pytest.fixture
def app(settings: Settings, media_disk: Path) -> FastAPI:
    """The app on the small disk (the disk is mounted before the app makes its folders)."""
    return create_app(settings)


@pytest.fixture
def transcoder(settings: Settings, app: FastAPI) -> Iterator[None]:
    """The worker's transcode lanes, in this process as `kaifang serve` runs them."""
    stop = threading.Event()
    lanes = start_transcoder(settings, stop)
    yield
    stop.set()
    transcode.wake()
    lanes.join(15)


def _upload(editor: Any, event_id: int, path: Path) -> int:
    sent = editor.post(f"/api/events/{event_id}/recording",
                       files={"file": (path.name, path.read_bytes(), "video/mp4")})
    assert sent.status_code == 202, sent.text
    return int(sent.json()["job_id"])


def _ended(editor: Any, job_id: int, serving: Any) -> dict[str, Any]:
    """The job once it ended; the service is asked for a page and /healthz meanwhile."""
    def ended() -> dict[str, Any] | None:
        serving()
        job = editor.get(f"/api/jobs/{job_id}").json()
        return job if job["state"] in ("succeeded", "failed") else None

    return dict(until(ended, 120, 0.1))


def test_a_transcode_that_fills_the_disk_fails_with_a_message_and_publishes_nothing(
        client, staff, db, settings, transcoder, recording):
    editor = staff("editor", "education")
    event = unit_session(staff, db, "education")
    assert event.id is not None
    media = settings.media_dir

    def serving() -> None:
        assert client.get("/healthz").status_code == 200
        assert client.get("/").status_code == 200

    first = _ended(editor, _upload(editor, event.id, recording), serving)
    assert first["state"] == "succeeded", first
    [playing] = [folder.name for folder in (media / "hls").iterdir()]

    # Room for the upload, not for what the transcode writes (660 kb/s of 240p and sound).
    filler = fill(media, recording.stat().st_size + 150 * 1024)
    job_id = _upload(editor, event.id, recording)
    failed = _ended(editor, job_id, serving)
    assert (failed["state"], failed["attempts"]) == ("failed", 1)
    assert failed["error"].startswith("磁盘空间不足"), failed["error"]
    page = editor.get(f"/console/events/{event.id}")
    assert page.status_code == 200 and "磁盘空间不足" in page.text

    # Nothing half-published, nothing left behind; the recording that played plays on.
    assert [folder.name for folder in (media / "hls").iterdir()] == [playing]
    assert list((media / "work").iterdir()) == []
    assert free_bytes(media) > 120 * 1024  # the room it took is given back
    assert abs(plays(client.app, editor, playing) - SECONDS) < 1
    assert client.get("/readyz").json()["checks"]["media"] == "ok"

    # Space freed: the same recording, uploaded again, goes through.
    filler.unlink()
    again = _ended(editor, _upload(editor, event.id, recording), serving)
    assert again["state"] == "succeeded", again
    with Session(get_engine(settings.sqlalchemy_url)) as fresh:
        states = sorted(r.state for r in fresh.exec(
            select(Recording).where(Recording.event_id == event.id)))
    assert states == ["failed", "succeeded", "succeeded"]
    assert len(list((media / "hls").iterdir())) == 2


def _multipart(content: bytes, boundary: str = "kaifangtestboundary") -> tuple[bytes, str]:
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"session.mp4\"\r\nContent-Type: video/mp4\r\n\r\n").encode() \
        + content + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def _chunked(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    """A body sent as it comes (no Content-Length: its size is known only at its end)."""
    for start in range(0, len(body), size):
        yield body[start:start + size]


def test_an_upload_the_disk_fills_is_refused_with_507_and_leaves_nothing(
        client, staff, db, settings, recording):
    editor = staff("editor", "education")
    event = unit_session(staff, db, "education")
    assert event.id is not None
    media = settings.media_dir
    uploads = media / "uploads"

    # The whole upload: the disk fills after the first megabyte of a 2 MB body.
    filler = fill(media, 512 * 1024)
    body, kind = _multipart(b"\x01" * (2 * 1024 * 1024))
    refused = editor.post(f"/api/events/{event.id}/recording", content=_chunked(body),
                          headers={"Content-Type": kind})
    assert refused.status_code == 507, refused.text
    assert refused.json()["error"] == "no_space" and refused.json()["message"]
    assert list(uploads.iterdir()) == []
    assert free_bytes(media) >= 500 * 1024  # what it wrote is given back

    # A resumable upload: the chunk the disk cannot hold is cut off, the offset stays, and the
    # same chunk goes through once there is room.
    filler.unlink()
    content = recording.read_bytes()
    half = len(content) // 2
    opened = editor.post(f"/api/events/{event.id}/uploads", json={"size": len(content)})
    assert opened.status_code == 201, opened.text
    url = opened.json()["url"]
    sent = editor.patch(url, content=content[:half], headers={"Upload-Offset": "0"})
    assert sent.status_code == 204, sent.text
    filler = fill(media, 16 * 1024)
    cut = editor.patch(url, content=content[half:], headers={"Upload-Offset": str(half)})
    assert cut.status_code == 507 and cut.json()["error"] == "no_space", cut.text
    assert editor.get(url).json()["offset"] == half
    [part] = list(uploads.iterdir())
    assert part.stat().st_size == half

    # Full to the last byte: /readyz says the media store failed (a probe of a few bytes
    # cannot be written), while pages and /healthz answer.
    fill(media, 0, "filler-2")
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["media"] == "failed", ready.text
    assert client.get("/healthz").status_code == 200
    assert client.get("/").status_code == 200
    assert editor.get(f"/console/events/{event.id}").status_code == 200

    for path in (filler, media / "filler-2"):
        path.unlink()
    assert client.get("/readyz").json()["checks"]["media"] == "ok"
    resumed = editor.patch(url, content=content[half:], headers={"Upload-Offset": str(half)})
    assert resumed.status_code == 204, resumed.text
    finished = editor.post(f"{url}/recording")
    assert finished.status_code == 202, finished.text
    assert (media / "sources").iterdir()
