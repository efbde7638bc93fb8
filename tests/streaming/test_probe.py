"""What ffprobe finds in real files made by ffmpeg: a phone held upright is a portrait source and
its renditions stay portrait; a 1280x714 export is 720p; a picture is not a recording."""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path

import pytest

from events.errors import Invalid
from streaming.ladder import Source, ffmpeg_args, ladder
from streaming.probe import probe
from tests.streaming.conftest import _ffmpeg

IDENTITY = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
TURNED = struct.pack(">9I", 0, 0x10000, 0, 0xFFFF0000, 0, 0, 0, 0, 0x40000000)  # 90°


def _upright_phone_video(path: Path) -> None:
    """640x360 as the camera wrote it, with the display matrix of a phone held upright (what
    phones write: the picture is turned by the player, not in the file)."""
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=2", "-f", "lavfi",
            "-i", "sine=duration=2", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
            "-shortest", str(path))
    data = bytearray(path.read_bytes())
    at = data.index(IDENTITY, data.index(b"tkhd"))
    data[at:at + len(TURNED)] = TURNED
    path.write_bytes(bytes(data))


def _frame_size(segment: Path) -> tuple[int, int]:
    found = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "stream=width,height", "-of", "json", str(segment)],
                           capture_output=True, check=True)
    stream = json.loads(found.stdout)["streams"][0]
    return stream["width"], stream["height"]


def test_a_phone_held_upright_is_transcoded_portrait(tmp_path):
    phone = tmp_path / "phone.mp4"
    _upright_phone_video(phone)
    source = probe(phone)
    assert source == Source(2.0, 360, 640, True)
    assert [(r.name, r.width, r.height) for r in ladder(source)] == [("360p", 360, 640)]
    out = tmp_path / "work"
    out.mkdir()
    subprocess.run(["ffmpeg", *ffmpeg_args(str(phone), str(out), source)], check=True,
                   stdout=subprocess.DEVNULL)
    assert _frame_size(out / "360p" / "seg_00000.ts") == (360, 640)
    assert "RESOLUTION=360x640" in (out / "master.m3u8").read_text()


def test_a_few_lines_short_of_720_is_still_720p(tmp_path):
    clip = tmp_path / "export.mkv"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=1280x714:rate=25:duration=1", "-c:v",
            "libx264", "-preset", "ultrafast", str(clip))
    assert [r.name for r in ladder(probe(clip))] == ["720p", "480p", "360p"]


def test_a_picture_is_not_a_recording(tmp_path):
    still = tmp_path / "still.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240", "-frames:v", "1", "-f", "image2",
            "-c:v", "png", str(still))
    with pytest.raises(Invalid) as refused:
        probe(still)
    assert refused.value.code == "not_a_recording"
    assert "single audio or video file" in refused.value.message
