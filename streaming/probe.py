"""What an upload really is, by ffprobe (through ffmpeg-python): neither its name nor its
declared type is trusted. Anything ffprobe cannot read as audio or video with a duration is
refused here, before a job is queued."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import ffmpeg

from events.errors import Invalid
from streaming.ladder import Source

# Longer than any session the district holds: a duration beyond it is a forged header.
MAX_DURATION_S = 24 * 3600


def not_a_recording(why: str) -> Invalid:
    return Invalid("not_a_recording", f"the file is not a playable recording: {why}",
                   field="file")


def probe(path: Path) -> Source:
    """The source's duration, picture size and audio; Invalid (422 not_a_recording) otherwise."""
    try:
        found: dict[str, Any] = ffmpeg.probe(str(path))
    except ffmpeg.Error:
        raise not_a_recording("ffprobe cannot read it") from None
    except ValueError:  # not JSON: ffprobe printed something else
        raise not_a_recording("ffprobe cannot read it") from None
    return source_of(found)


def source_of(found: dict[str, Any]) -> Source:
    """ffprobe's JSON as a Source (pure: tests feed it what ffprobe printed)."""
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
    if video is not None and (width <= 0 or height <= 0 or width > 8192 or height > 8192):
        raise not_a_recording("its picture size is not believable")
    return Source(duration_s=round(duration, 3), width=width, height=height,
                  has_audio=audio is not None)
