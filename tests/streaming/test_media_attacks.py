"""Uploads that name other files on the server, or hide pictures larger than they declare: real
files, real ffprobe and ffmpeg. A playlist is refused at upload; even one that reached the
transcoder reads nothing; a 320x240 header cannot make the decoder build 12000x12000 frames."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from streaming.ladder import Source, ffmpeg_args
from streaming.models import TranscodeJob
from tests.streaming.conftest import _ffmpeg
from tests.streaming.test_recordings import _session

SECRET = "seg_00000.ts"  # another session's published segment: what the upload tries to read


@pytest.fixture
def secret(settings: Any, clips: dict[str, Path]) -> Path:
    folder = settings.media_dir / "hls" / "a1b2c3" / "360p"
    folder.mkdir(parents=True)
    segment = folder / SECRET
    _ffmpeg("-i", str(clips["video"]), "-c", "copy", "-f", "mpegts", str(segment))
    return segment


def _hls(target: str) -> bytes:
    return (f"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXTINF:3.0,\n{target}\n"
            "#EXT-X-ENDLIST\n").encode()


def _dash(target: str) -> bytes:
    return f"""<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT3S"
     minBufferTime="PT1S" profiles="urn:mpeg:dash:profile:isoff-on-demand:2011">
 <Period><AdaptationSet mimeType="video/mp2t" contentType="video">
  <Representation id="1" bandwidth="100000" width="640" height="360">
   <BaseURL>{target}</BaseURL>
  </Representation>
 </AdaptationSet></Period>
</MPD>
""".encode()


# Each names the secret as the upload (in media/uploads/) would reach it.
PLAYLISTS: dict[str, Callable[[Path], bytes]] = {
    "hls, absolute path": lambda secret: _hls(str(secret)),
    "hls, ../ from the upload folder": lambda secret: _hls("../hls/a1b2c3/360p/" + SECRET),
    "dash manifest": lambda secret: _dash(str(secret)),
    # The concat demuxer's safe mode allows names below the list's folder only: a neighbour.
    "concat list": lambda secret: b"ffconcat version 1.0\nfile neighbour.ts\nduration 3\n",
    "a playlist's first bytes, then a real mp4": lambda secret: _hls(str(secret)),
}


@pytest.mark.parametrize("kind", list(PLAYLISTS))
def test_an_upload_naming_other_files_is_refused(staff, db, settings, clips, secret, kind):
    neighbour = settings.media_dir / "uploads" / "neighbour.ts"
    neighbour.write_bytes(secret.read_bytes())
    body = PLAYLISTS[kind](secret)
    if kind.endswith("real mp4"):
        body += clips["video"].read_bytes()
    editor, event_id = _session(staff, db)
    answer = editor.post(f"/api/events/{event_id}/recording",
                         files={"file": ("phone.mp4", body, "video/mp4")})
    assert (answer.status_code, answer.json()["error"]) == (422, "not_a_recording"), answer.text
    assert db.exec(select(TranscodeJob)).all() == []
    assert not list((settings.media_dir / "sources").iterdir())


def _run(args: list[str]) -> tuple[int, int]:
    """ffmpeg with `args`: its exit status and its peak memory (MiB). The peak is ffmpeg's own
    (VmHWM of its address space, read until it exits): a child's ru_maxrss would also count the
    test process it was spawned from, hundreds of MiB late in a suite."""
    child = subprocess.Popen(["ffmpeg", *args], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    status = Path(f"/proc/{child.pid}/status")
    peak = 0
    while child.poll() is None:
        with contextlib.suppress(OSError):
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        time.sleep(0.005)
    return child.returncode, peak // 1024


def test_a_playlist_that_reached_the_transcoder_reads_nothing(tmp_path, secret):
    playlist = tmp_path / "7.src"
    playlist.write_bytes(_hls(str(secret)))
    out = tmp_path / "work"
    out.mkdir()
    code, _memory = _run(ffmpeg_args(str(playlist), str(out), Source(3.0, 640, 360, True)))
    assert code != 0
    assert not list(out.rglob("*.ts"))


@pytest.fixture(scope="module")
def giant_frames(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Matroska file whose header says 320x240 (1 s of it), then two 12000x12000 frames."""
    folder = tmp_path_factory.mktemp("giant")
    small, big = folder / "small.mkv", folder / "big.mkv"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=1", "-c:v", "mjpeg",
            "-pix_fmt", "yuvj420p", str(small))
    _ffmpeg("-f", "lavfi", "-i", "color=c=red:size=12000x12000:rate=25:duration=0.08",
            "-c:v", "mjpeg", "-q:v", "31", "-pix_fmt", "yuvj420p", str(big))
    listing = folder / "list.txt"
    listing.write_text(f"file '{small}'\nfile '{big}'\n", encoding="utf-8")
    giant = folder / "giant.mkv"
    _ffmpeg("-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(giant))
    return giant


def _sizes(segment: Path) -> set[tuple[int, int]]:
    found = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "frame=width,height", "-of", "json", str(segment)],
                           capture_output=True, check=True)
    return {(f["width"], f["height"]) for f in json.loads(found.stdout)["frames"]}


def test_frames_larger_than_declared_are_not_decoded(staff, db, settings, giant_frames,
                                                     tmp_path):
    editor, event_id = _session(staff, db)
    answer = editor.post(f"/api/events/{event_id}/recording",
                         files={"file": ("small.mkv", giant_frames.read_bytes(), "video/mp4")})
    assert answer.status_code == 202, answer.text  # the header is all a probe can see
    out = tmp_path / "work"
    out.mkdir()
    code, memory = _run(ffmpeg_args(str(giant_frames), str(out), Source(1.08, 320, 240, False)))
    # One 12000x12000 picture alone is 206 MiB; ffmpeg as it was peaked past 400.
    assert memory < 200, memory
    assert code == 0
    assert _sizes(out / "240p" / "seg_00000.ts") == {(320, 240)}


def test_an_hour_between_two_frames_is_not_filled_frame_by_frame(tmp_path):
    """Two frames 3,600 s apart (a few KB): ffmpeg used to encode 90,000 copies of the first
    (900 segments; at 1080p, minutes with no progress line); now it writes the two."""
    gap = tmp_path / "gap.mkv"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=640x360:rate=1:duration=2", "-vf",
            "setpts=N*3600/TB", "-fps_mode", "passthrough", "-c:v", "libx264", "-preset",
            "ultrafast", str(gap))
    out = tmp_path / "work"
    out.mkdir()
    subprocess.run(["ffmpeg", *ffmpeg_args(str(gap), str(out), Source(3601.0, 640, 360))],
                   check=True, stdout=subprocess.DEVNULL, timeout=30)
    playlist = (out / "360p" / "index.m3u8").read_text()
    assert "#EXTINF:3600.000000," in playlist
