"""What an upload really is, by ffprobe: neither its name nor its declared type is trusted.
Anything ffprobe cannot read as one recording (audio or video with a duration, in one of the
containers streaming.ladder.INPUT_DEMUXERS names) is refused here, before a job is queued: a
playlist, manifest or list naming other files is not a recording, whatever it is called.

And what a live publisher's first bytes hold (probe_live, for streaming.live_hub): read from a
pipe as the one container its front sends.
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
from pathlib import Path
from typing import Any

from events.errors import Invalid
from streaming.ladder import INPUT_DEMUXERS, MAX_PIXELS, MAX_SIDE, Source, input_args
from streaming.live_ladder import LiveSource, probe_args

FFPROBE = "ffprobe"
# Longer than any session the district holds: a duration beyond it is a forged header.
MAX_DURATION_S = 24 * 3600
PROBE_TIMEOUT_S = 60


def not_a_recording(why: str) -> Invalid:
    return Invalid("not_a_recording", f"the file is not a playable recording: {why}",
                   field="file")


def ffprobe_args(path: str) -> list[str]:
    """The whole ffprobe command: the file opened as ffmpeg will open it (streaming.ladder)."""
    return [FFPROBE, "-v", "error", "-show_format", "-show_streams", "-of", "json",
            *input_args(path, MAX_PIXELS)]


def probe(path: Path) -> Source:
    """The source's duration, picture size and audio; Invalid (422 not_a_recording) otherwise."""
    try:
        ran = subprocess.run(ffprobe_args(str(path)), stdin=subprocess.DEVNULL,
                             capture_output=True, timeout=PROBE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise not_a_recording("ffprobe took too long to read it") from None
    if ran.returncode != 0:
        if b"not on whitelist" in ran.stderr:  # a playlist, a manifest, a list, an image
            raise not_a_recording("it is not a single audio or video file")
        raise not_a_recording("ffprobe cannot read it")
    try:
        found = json.loads(ran.stdout)
    except ValueError:  # not JSON: ffprobe printed something else
        raise not_a_recording("ffprobe cannot read it") from None
    if not isinstance(found, dict):
        raise not_a_recording("ffprobe cannot read it")
    return source_of(found)


def _rotation(stream: dict[str, Any]) -> int:
    """The turn a player applies to the picture (a phone held upright), in degrees."""
    for side in stream.get("side_data_list") or []:
        if isinstance(side, dict) and "rotation" in side:
            try:
                return int(float(side["rotation"]))
            except (TypeError, ValueError):
                return 0
    rotate = str((stream.get("tags") or {}).get("rotate") or "0")
    return int(rotate) if rotate.lstrip("-").isdigit() else 0


def source_of(found: dict[str, Any]) -> Source:
    """ffprobe's JSON as a Source (pure: tests feed it what ffprobe printed)."""
    container = str((found.get("format") or {}).get("format_name") or "").split(",")[0]
    if container not in INPUT_DEMUXERS:
        raise not_a_recording("it is not a single audio or video file")
    streams = found.get("streams") or []
    video = next((s for s in streams if s.get("codec_type") == "video"
                  and not (s.get("disposition") or {}).get("attached_pic")), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    if video is None and audio is None:
        raise not_a_recording("it holds neither video nor audio")
    try:
        duration = float((found.get("format") or {}).get("duration") or 0)
    except ValueError:
        duration = 0.0
    if not math.isfinite(duration) or duration <= 0:
        raise not_a_recording("it has no duration (truncated or not a video)")
    if duration > MAX_DURATION_S:
        raise not_a_recording("its duration is not believable")
    width = int(video.get("width") or 0) if video else 0
    height = int(video.get("height") or 0) if video else 0
    if video is not None and (width <= 0 or height <= 0 or width > MAX_SIDE
                              or height > MAX_SIDE or width * height > MAX_PIXELS):
        raise not_a_recording("its picture size is not believable")
    if video is not None and _rotation(video) % 180 != 0:  # shown upright: a portrait picture
        width, height = height, width
    return Source(duration_s=round(duration, 3), width=width, height=height,
                  has_audio=audio is not None)


async def probe_live(container: str, head: bytes, timeout_s: float) -> LiveSource | None:
    """The picture's size and whether there is sound in a publisher's first bytes; None when
    they show no stream (yet: more bytes may)."""
    probe = await asyncio.create_subprocess_exec(
        FFPROBE, *probe_args(container), stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        out, _ = await asyncio.wait_for(probe.communicate(head), timeout_s)
    except TimeoutError:
        probe.kill()
        await probe.wait()
        return None
    try:
        streams = json.loads(out or b"{}").get("streams", [])
    except ValueError:
        return None
    video = next((s for s in streams if s.get("codec_type") == "video"
                  and int(s.get("width") or 0) > 0), None)
    audio = any(s.get("codec_type") == "audio" for s in streams)
    if video is None and not audio:
        return None
    return LiveSource(int(video["width"]) if video else 0,
                      int(video["height"]) if video else 0, audio)
