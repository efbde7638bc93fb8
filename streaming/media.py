"""What of a published recording's HLS (`/media/hls/<key>/<name>`) may be fetched, and when.

A key names its session and recording (`{event_id}-{recording_id}-{random}`, streaming.storage).
The public may fetch its files exactly while the session's playback (streaming.playback) is
`premiere` or `vod` with this key: the session is public and not cancelled, the key is the
recording that plays (a replaced recording's key is not, from the moment its successor is
published; its files are deleted after a grace time: streaming.retention), and the premiere
has begun. Staff who may run the session may preview its playing recording in any state
(streaming.api checks them).

During a premiere the end is not public before its time: a rendition's playlist is served as a
live EVENT playlist cut at the server's position plus LEAD_SEGMENTS (the player keeps a little
buffer), and a segment past that cut is 404 until its time. After the premiere, the VOD
playlist as written. What the database says about a key is cached for DECISION_TTL.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

from sqlmodel import Session

from events.models import Event
from streaming import jobs, phase
from streaming.models import Recording
from streaming.playback import playback_of
from streaming.storage import Storage

KEY = re.compile(r"(?P<event>[0-9]{1,10})-(?P<recording>[0-9]{1,10})-[0-9a-f]{8,32}")
# One or two path parts, as the transcoder writes them (`master.m3u8`, `720p/seg_00001.ts`):
# no NUL, no `..`, nothing long enough to trouble the file system.
_PART = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
NAME = re.compile(rf"(?:{_PART}/)?{_PART}")
MAX_ID = 2**31 - 1
# Segments beyond the server's position that a premiere's playlist already lists.
LEAD_SEGMENTS = 2
# How long one process trusts what the database said about a key: a withdrawn session's or a
# replaced recording's media stops being served within this time.
DECISION_TTL = timedelta(seconds=5)
MAX_DECISIONS = 10_000
MEDIA_TYPES = {".m3u8": "application/vnd.apple.mpegurl", ".ts": "video/mp2t",
               ".mp4": "video/mp4", ".m4s": "video/iso.segment", ".vtt": "text/vtt",
               ".jpg": "image/jpeg"}
MASTER = "master.m3u8"
# The seek previews (thumbs.vtt, thumbs-001.jpg…) show the whole video: after the premiere.
PREVIEWS = "thumbs"
SEGMENT_SUFFIXES = (".ts", ".m4s", ".mp4", ".aac", ".m4a")


def parse_key(key: str) -> tuple[int, int] | None:
    """The session and recording a key names, or None if it is not a key."""
    found = KEY.fullmatch(key)
    if found is None:
        return None
    event_id, recording_id = int(found["event"]), int(found["recording"])
    if not (0 < event_id <= MAX_ID and 0 < recording_id <= MAX_ID):
        return None
    return event_id, recording_id


def valid_name(name: str) -> bool:
    return NAME.fullmatch(name) is not None


@dataclass(frozen=True)
class Playing:
    """A key's recording, which plays for its session (copies, detached from the database)."""

    event: Event
    recording: Recording


def playing_of(db: Session, key: str) -> Playing | None:
    """The recording behind a key if it is the one its session plays now; else None (no such
    key, or a replaced recording)."""
    ids = parse_key(key)
    if ids is None:
        return None
    event_id, recording_id = ids
    recording = db.get(Recording, recording_id)
    if recording is None or recording.media_key != key or recording.event_id != event_id:
        return None
    current = jobs.published(db, event_id)
    event = db.get(Event, event_id)
    if current is None or current.id != recording.id or event is None:
        return None
    db.expunge(recording)
    db.expunge(event)
    return Playing(event, recording)


def playback_state(playing: Playing, storage: Storage, now: datetime) -> str:
    """The session's playback state for this recording (streaming.playback)."""
    answer = playback_of(playing.event, playing.recording, storage, now)
    return str(answer["state"]) if answer["hls_url"] else "unavailable"


def public_may_fetch(playing: Playing, state: str) -> bool:
    return phase.public_sees(playing.event, state)


def premiere_position(playing: Playing, now: datetime) -> float:
    """Seconds into the premiere (called while the playback is `premiere`)."""
    position = phase.premiere_position(playing.event, now, playing.recording.duration_s)
    return position if position is not None else 0.0


class MediaGate:
    """What the database said about each key lately (thread-safe; bounded)."""

    def __init__(self, ttl: timedelta = DECISION_TTL, size: int = MAX_DECISIONS) -> None:
        self.ttl = ttl
        self.size = size
        self._known: dict[str, tuple[datetime, Playing | None]] = {}
        self._lock = threading.Lock()

    def recall(self, key: str, now: datetime) -> tuple[bool, Playing | None]:
        """(known, playing): known False when the database must be asked."""
        with self._lock:
            found = self._known.get(key)
        if found is None or found[0] <= now or found[0] > now + self.ttl:
            return False, None
        return True, found[1]

    def remember(self, key: str, playing: Playing | None, now: datetime) -> None:
        with self._lock:
            if len(self._known) >= self.size:
                self._known.clear()
            self._known[key] = (now + self.ttl, playing)


# ---- the premiere's playlist ------------------------------------------------------------------

@dataclass(frozen=True)
class Segment:
    start: float
    duration: float
    uri: str
    lines: tuple[str, ...]  # its tags and its URI


@dataclass(frozen=True)
class MediaPlaylist:
    head: tuple[str, ...]
    segments: tuple[Segment, ...]

    def listed(self, position: float) -> int:
        """How many segments a premiere at `position` seconds lists: those begun, and the lead."""
        begun = sum(1 for segment in self.segments if segment.start <= position)
        return min(len(self.segments), max(begun, 1) + LEAD_SEGMENTS)

    def start_of(self, uri: str) -> float | None:
        return next((s.start for s in self.segments if s.uri == uri), None)

    def index_of(self, uri: str) -> int | None:
        return next((i for i, s in enumerate(self.segments) if s.uri == uri), None)

    def event_text(self, position: float) -> str:
        """The playlist as a premiere's viewer sees it at `position`: EVENT, no end yet."""
        head = [line for line in self.head if not line.startswith("#EXT-X-PLAYLIST-TYPE")]
        head.insert(1 if head[:1] == ["#EXTM3U"] else 0, "#EXT-X-PLAYLIST-TYPE:EVENT")
        lines = head + [line for s in self.segments[:self.listed(position)] for line in s.lines]
        return "\n".join(lines) + "\n"


def parse_playlist(text: str) -> MediaPlaylist:
    """A media playlist's header and segments, each with its start time (the EXTINFs summed)."""
    head: list[str] = []
    segments: list[Segment] = []
    pending: list[str] = []
    start = 0.0
    duration = 0.0
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#EXT-X-ENDLIST"):
            continue
        if line.startswith("#EXTINF:"):
            try:
                duration = max(0.0, float(line[8:].split(",", 1)[0]))
            except ValueError:
                duration = 0.0
            pending.append(line)
        elif line.startswith("#"):
            (pending if pending or segments else head).append(line)
        else:
            segments.append(Segment(start, duration, line, (*pending, line)))
            start += duration
            pending, duration = [], 0.0
    return MediaPlaylist(tuple(head), tuple(segments))


@lru_cache(maxsize=32)  # a few premieres at a time, a few renditions each
def _playlist_at(path: str, size: int, mtime_ns: int) -> MediaPlaylist:
    return parse_playlist(Path(path).read_text(encoding="utf-8", errors="replace"))


def read_playlist(path: Path) -> MediaPlaylist:
    """A published playlist, parsed once (a published folder never changes)."""
    stat = path.stat()
    return _playlist_at(str(path), stat.st_size, stat.st_mtime_ns)


def is_media_playlist(name: str) -> bool:
    return name.endswith(".m3u8") and name.rsplit("/", 1)[-1] != MASTER


def released(folder: Path, name: str, position: float) -> bool:
    """Whether a premiere at `position` has reached the file `name` (a path in `folder`, the
    key's folder): not the seek previews, nor a segment its rendition's playlist lists past
    the cut. A file no playlist beside it lists (an init segment) is released."""
    if name.startswith(PREVIEWS):
        return False
    if not name.endswith(SEGMENT_SUFFIXES):
        return True
    directory, _, file = name.rpartition("/")
    # Its rendition's playlist lists it beside itself (`720p/index.m3u8`: `seg_00001.ts`), or
    # from the key's folder (`720p.m3u8`: `720p/seg_00001.ts`).
    places = [(folder / directory, file), (folder, name)] if directory else [(folder, name)]
    for here, uri in places:
        for candidate in sorted(here.glob("*.m3u8")):
            if candidate.name == MASTER:
                continue
            playlist = read_playlist(candidate)
            index = playlist.index_of(uri)
            if index is not None:
                return index < playlist.listed(position)
    return True
