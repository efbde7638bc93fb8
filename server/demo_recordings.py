"""Demo recordings: test pictures and tones made by ffmpeg, uploaded as staff would, for a
broadcast that premiered and is archived, one that premieres later, and a meeting held. The
jobs are queued with the district; `kaifang demo` then transcodes them (streaming.transcode)."""

from __future__ import annotations

import subprocess

from sqlmodel import Session

from events.models import Event, StaffUser
from server.config import Settings
from streaming import jobs, tracks
from streaming.probe import probe
from streaming.storage import LocalStorage

# Plan key → (seconds, picture, tone in Hz): short, so the demo loads in seconds.
CLIPS = {"publicity-preschool-broadcast": (24, "1280x720", 440),
         "publicity-elevator-broadcast": (12, "854x480", 523),
         "hr-jobs-meeting": (8, "640x360", 330)}
CAPTIONS = """WEBVTT

00:00:00.500 --> 00:00:05.000
各位网友，欢迎收看政民互动直播间。

00:00:05.500 --> 00:00:11.000
今天我们请区教委的同志解读学前教育资源扩充。

00:00:11.500 --> 00:00:20.000
新增学前学位将在明年秋季学期投入使用。
"""
CHAPTERS = """WEBVTT

00:00:00.000 --> 00:00:08.000
开场与嘉宾介绍

00:00:08.000 --> 00:00:18.000
新增学前学位

00:00:18.000 --> 00:00:24.000
网友提问
"""


def _make_clip(path: str, seconds: int, size: str, tone: int) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={seconds}",
                    "-f", "lavfi", "-i", f"sine=frequency={tone}:duration={seconds}",
                    "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest",
                    "-f", "mp4", path], check=True)


def add_recordings(db: Session, settings: Settings, staff: dict[str, StaffUser],
                   sessions: dict[str, Event]) -> list[str]:
    """Queues the demo's recordings (with captions and chapters for the archived premiere)."""
    storage = LocalStorage(settings.media_dir)
    queued = []
    for key, (seconds, size, tone) in CLIPS.items():
        event = sessions.get(key)
        if event is None:
            continue
        upload = storage.new_upload()
        _make_clip(str(upload), seconds, size, tone)
        source = probe(upload)
        recording, _job = jobs.enqueue(db, staff["admin"], event, source,
                                       upload.stat().st_size)
        assert recording.id is not None
        storage.keep_source(upload, recording.id)
        if key == "publicity-preschool-broadcast":
            tracks.attach(db, recording.id, "captions", "zh", "中文", CAPTIONS.encode())
            tracks.attach(db, recording.id, "chapters", "zh", "章节", CHAPTERS.encode())
        queued.append(event.title)
    return [f"Demo recordings: {len(queued)} queued for transcoding ({'；'.join(queued)})."]
