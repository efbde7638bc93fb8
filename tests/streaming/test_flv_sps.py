"""The picture size read from an H.264 sequence header (what the gate checks when onMetaData
is absent or lies), against what x264 wrote: cropped sizes, every chroma format, interlaced."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from streaming import flv


def _first_video_body(path: Path) -> bytes:
    data = path.read_bytes()
    offset = 13  # the header and PreviousTagSize0
    while offset + 11 <= len(data):
        kind, size = data[offset], int.from_bytes(data[offset + 1:offset + 4], "big")
        if kind == flv.VIDEO_TAG:
            return data[offset + 11:offset + 11 + size]
        offset += 11 + size + 4
    raise AssertionError("no video tag")


@pytest.mark.parametrize(("size", "options"), [
    ("320x180", ["-profile:v", "baseline"]),
    ("1920x1080", ["-profile:v", "main"]),
    ("642x362", ["-profile:v", "high"]),
    ("640x360", ["-pix_fmt", "yuv422p"]),  # High 4:2:2
    ("336x190", ["-pix_fmt", "yuv444p"]),  # High 4:4:4, cropped both ways
    ("720x576", ["-flags", "+ildct", "-x264opts", "interlaced=1"]),  # field coding
])
def test_the_sps_says_the_picture_size(tmp_path: Path, size: str, options: list[str]) -> None:
    path = tmp_path / "one.flv"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    f"testsrc2=size={size}:rate=25:duration=0.2", "-c:v", "libx264",
                    "-preset", "ultrafast", *options, "-f", "flv", str(path)],
                   check=True, timeout=60)
    width, height = (int(n) for n in size.split("x"))
    assert flv.avc_size(_first_video_body(path)) == (width, height)


def test_what_is_not_a_sequence_header_has_no_size() -> None:
    assert flv.avc_size(b"\x17\x01\x00\x00\x00" + bytes(20)) is None  # a frame
    assert flv.avc_size(b"\x12\x00" + bytes(20)) is None  # another codec
    assert flv.avc_size(b"\x17\x00\x00\x00\x00\x01\x64\x00\x1f\xff\xe1\x00\x04\x67\x64") is None


# The gate and the socket are protocol code: their database part runs on PostgreSQL in
# test_ingest_api.py and the hub's tests (tests/conftest.py).
pytestmark = pytest.mark.sqlite_pass_only
