"""Captions and chapters of a recording: staff attach WebVTT or SRT (turned into WebVTT here);
the player shows captions as <track> elements and chapters as a menu. Text is checked the way
every stored text is (no control characters), and a file that is not timed text is refused."""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import Session, col, select

from events.errors import Invalid, NotFound
from events.units import clean_text
from streaming.models import RecordingTrack

MAX_TRACK_BYTES = 512 * 1024
KINDS = frozenset({"captions", "subtitles", "chapters"})
LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?")
_TIMING = re.compile(
    r"^\s*((?:\d+:)?\d{1,2}:\d{2}[.,]\d{3})\s*-->\s*((?:\d+:)?\d{1,2}:\d{2}[.,]\d{3})(.*)$")


def _vtt_time(text: str) -> str:
    """An SRT or VTT time as WebVTT writes it: hh:mm:ss.mmm."""
    text = text.replace(",", ".")
    parts = text.split(":")
    if len(parts) == 2:
        parts.insert(0, "00")
    return f"{int(parts[0]):02d}:{int(parts[1]):02d}:{parts[2]}"


def seconds(text: str) -> float:
    hours, minutes, rest = _vtt_time(text).split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(rest)


def to_webvtt(raw: bytes) -> str:
    """WebVTT from a WebVTT or SRT file; Invalid (422 invalid_track) when it holds no cue."""
    if len(raw) > MAX_TRACK_BYTES:
        raise Invalid("too_large", "captions are at most 512 KB", field="file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Invalid("invalid_track", "captions must be UTF-8 text", field="file") from None
    text = clean_text(text.replace("\r\n", "\n").replace("\r", "\n"), "file", multiline=True)
    blocks = [block.strip("\n") for block in re.split(r"\n\s*\n", text) if block.strip()]
    cues: list[str] = []
    for block in blocks:
        lines = block.split("\n")
        if lines[0].startswith(("WEBVTT", "NOTE", "STYLE", "REGION")):
            continue
        at = next((i for i, line in enumerate(lines[:2]) if _TIMING.match(line)), None)
        if at is None:
            continue
        start, end, settings = _TIMING.match(lines[at]).groups()  # type: ignore[union-attr]
        if seconds(end) <= seconds(start):
            continue
        words = [line for line in lines[at + 1:] if line.strip()]
        if not words:
            continue
        setting = settings.strip() if text.startswith("WEBVTT") else ""
        cues.append(f"{_vtt_time(start)} --> {_vtt_time(end)}{' ' + setting if setting else ''}"
                    + "\n" + "\n".join(words))
    if not cues:
        raise Invalid("invalid_track", "the file holds no timed text (WebVTT or SRT)",
                      field="file")
    return "WEBVTT\n\n" + "\n\n".join(cues) + "\n"


def chapter_list(track: RecordingTrack) -> list[dict[str, Any]]:
    """Chapters for the player's menu: [{start (s), time (m:ss), title}]."""
    found = []
    for block in track.body.split("\n\n")[1:]:
        lines = block.strip().split("\n")
        matched = _TIMING.match(lines[0]) if lines else None
        if matched and len(lines) > 1:
            start = seconds(matched.group(1))
            minutes, secs = divmod(int(start), 60)
            hours, minutes = divmod(minutes, 60)
            shown = f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
            found.append({"start": start, "time": shown, "title": " ".join(lines[1:])})
    return found


def attach(db: Session, recording_id: int, kind: str, language: str, label: str,
           raw: bytes) -> RecordingTrack:
    """Adds a track, replacing the recording's track of the same kind and language. Flushes."""
    if kind not in KINDS:
        raise Invalid("invalid", "kind: captions, subtitles or chapters", field="kind")
    if not LANGUAGE.fullmatch(language):
        raise Invalid("invalid", "language: a code such as zh or en", field="language")
    body = to_webvtt(raw)
    label = clean_text(label, "label").strip()[:40]
    for old in db.exec(select(RecordingTrack).where(
            RecordingTrack.recording_id == recording_id, RecordingTrack.kind == kind,
            RecordingTrack.language == language)):
        db.delete(old)
    track = RecordingTrack(recording_id=recording_id, kind=kind, language=language,
                           label=label or language, body=body)
    db.add(track)
    db.flush()
    return track


def of_recording(db: Session, recording_id: int) -> list[RecordingTrack]:
    return list(db.exec(select(RecordingTrack).where(RecordingTrack.recording_id == recording_id)
                        .order_by(col(RecordingTrack.id))))


def get_track(db: Session, track_id: int) -> RecordingTrack:
    track = db.get(RecordingTrack, track_id) if 0 < track_id <= 2**31 - 1 else None
    if track is None:
        raise NotFound("track_not_found", f"no track with id {track_id}")
    return track


def track_url(track: RecordingTrack) -> str:
    return f"/media/tracks/{track.id}.vtt"


def track_public(track: RecordingTrack) -> dict[str, Any]:
    return {"id": track.id, "kind": track.kind, "srclang": track.language,
            "label": track.label, "src": track_url(track),
            "default": track.kind == "captions" and track.language.startswith("zh")}
