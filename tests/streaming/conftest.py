"""Recordings made by ffmpeg for the streaming tests (real files, a few seconds each)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import replace_utcnow


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Test sources made by ffmpeg: a 3 s 640x360 clip with sound, 2 s of sound alone, a
    text file named .mp4, an empty file, a clip cut in half and 12 s at 320x240."""
    folder = tmp_path_factory.mktemp("clips")
    video = folder / "clip.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=3",
            "-f", "lavfi", "-i", "sine=frequency=440:duration=3", "-c:v", "libx264",
            "-preset", "ultrafast", "-c:a", "aac", "-shortest", str(video))
    audio = folder / "talk.m4a"
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:duration=2", "-c:a", "aac", str(audio))
    fake = folder / "fake.mp4"
    fake.write_text("<html>not a video</html>", encoding="utf-8")
    empty = folder / "empty.mp4"
    empty.write_bytes(b"")
    cut = folder / "cut.mp4"
    cut.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    long = folder / "long.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=12",
            "-f", "lavfi", "-i", "sine=frequency=500:duration=12", "-c:v", "libx264",
            "-preset", "ultrafast", "-c:a", "aac", "-shortest", str(long))
    return {"video": video, "audio": audio, "fake": fake, "empty": empty, "cut": cut,
            "long": long}


class Ticking:
    """The app's clock running as time does, `offset` away from this machine's."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def set(self, moment: datetime) -> None:
        """From now on the app's clock says `moment`, and runs on from there."""
        self.offset = moment - datetime.now(UTC)


@pytest.fixture
def ticking(monkeypatch: pytest.MonkeyPatch) -> Iterator[Ticking]:
    """Like tests/conftest.py's `clock`, but running: a premiere's position moves on."""
    clock = Ticking()
    replace_utcnow(monkeypatch, clock)
    yield clock
