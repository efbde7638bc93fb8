"""A webcast's playlists, composed from what its encoder wrote: one EVENT playlist per run and
rendition (`720p/run_002.m3u8`, streaming.live_ladder), each segment with its wall-clock time.
Pure functions over their text (and one reader), so any app process composes the same answer
from the same files.

- The preview (staff): every segment of every run, a discontinuity between runs.
- The public's EVENT playlist: the segments from the on-air moment (the first whose
  `#EXT-X-PROGRAM-DATE-TIME` is not before it) and, once off air, before the off-air moment.
  The cut is a segment number, taken from one rendition and applied to all, so the renditions
  list the same segments and a player switches between them at any point.
- The archive: the public's segments as VOD playlists (ENDLIST), written once at the end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from streaming.ladder import AUDIO_BITRATE_K
from streaming.live_ladder import AUDIO, SEGMENT_S, Layout

RUN_PLAYLIST = re.compile(r"run_(?P<run>[0-9]{3,6})\.m3u8")
SEGMENT = re.compile(r"seg_(?P<number>[0-9]{5,9})\.ts")
# The names players fetch: the public's, the staff preview's, the archive's.
PUBLIC, PREVIEW, VOD = "live.m3u8", "preview.m3u8", "index.m3u8"
MASTER, PREVIEW_MASTER = "master.m3u8", "preview.m3u8"


@dataclass(frozen=True)
class LiveSegment:
    number: int
    uri: str
    duration: float
    at: datetime | None  # its wall-clock start (ffmpeg's program date time)

    @property
    def ends(self) -> datetime | None:
        return None if self.at is None else self.at + timedelta(seconds=self.duration)


Runs = list[list[LiveSegment]]  # one rendition's segments, run by run


def parse_run(text: str) -> list[LiveSegment]:
    """One run's playlist as ffmpeg writes it (EXTINF, PROGRAM-DATE-TIME, the URI)."""
    found: list[LiveSegment] = []
    duration, at = 0.0, None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#EXTINF:"):
            try:
                duration = max(0.0, float(line[8:].split(",", 1)[0]))
            except ValueError:
                duration = 0.0
        elif line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            at = _date_time(line.split(":", 1)[1])
        elif line and not line.startswith("#"):
            matched = SEGMENT.fullmatch(line)
            if matched is not None:
                found.append(LiveSegment(int(matched["number"]), line, duration, at))
            duration, at = 0.0, None
    return found


def _date_time(text: str) -> datetime | None:
    """ffmpeg writes `2026-12-06T19:38:05.650+0000`."""
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        return None


def run_start(run: int) -> str:
    """The file beside the renditions that holds when a run's first byte came."""
    return f"run_{run:03d}.start"


def on_clock(segments: list[LiveSegment], first_byte: datetime | None) -> list[LiveSegment]:
    """A run's segments on the wall clock of their arrival. ffmpeg dates the first segment
    when it starts, after the probe held the first bytes (a second or so): the run's media
    began when its first byte came."""
    start = segments[0].at if segments else None
    if first_byte is None or start is None:
        return segments
    shift = first_byte - start
    return [LiveSegment(s.number, s.uri, s.duration, None if s.at is None else s.at + shift)
            for s in segments]


def read_runs(folder: Path, rendition: str) -> Runs:
    """One rendition's runs, in order, on the clock of their arrival (a missing folder: none
    yet)."""
    here = folder / rendition
    if not here.is_dir():
        return []
    playlists = sorted((int(m["run"]), p) for p in here.iterdir()
                       if (m := RUN_PLAYLIST.fullmatch(p.name)) is not None)
    found = []
    for run, path in playlists:
        try:
            first_byte = _date_time((folder / run_start(run)).read_text(encoding="utf-8"))
        except OSError:
            first_byte = None
        found.append(on_clock(parse_run(path.read_text(encoding="utf-8", errors="replace")),
                              first_byte))
    return found


def first_at_or_after(runs: Runs, moment: datetime) -> int | None:
    """The number of the first segment that starts at `moment` or later (None: none yet)."""
    return next((s.number for run in runs for s in run if s.at is not None and s.at >= moment),
                None)


@dataclass(frozen=True)
class Cut:
    """The public's part of the stream: segment numbers from `first`, before `end` (None: no
    end yet). `first` None: nothing public yet."""

    first: int | None
    end: int | None = None

    def holds(self, number: int) -> bool:
        return self.first is not None and number >= self.first and (
            self.end is None or number < self.end)


def cut_of(reference: Runs, on_air_at: datetime | None, off_air_at: datetime | None) -> Cut:
    """The public part, from one rendition's runs: from the first segment on air, up to the
    first that starts after the off-air moment."""
    if on_air_at is None:
        return Cut(None)
    first = first_at_or_after(reference, on_air_at)
    end = None
    if off_air_at is not None:
        after = first_at_or_after(reference, off_air_at)
        end = after if after is not None else max(
            (s.number + 1 for run in reference for s in run), default=0)
    return Cut(first, end)


def select(runs: Runs, cut: Cut | None) -> Runs:
    """The runs' segments in the cut (None: every segment), empty runs dropped."""
    kept = [[s for s in run if cut is None or cut.holds(s.number)] for run in runs]
    return [run for run in kept if run]


def in_every_rendition(runs: dict[str, Runs]) -> dict[str, Runs]:
    """Each rendition's runs cut to the segments every rendition has written: the playlists
    list the same segments (a rendition a segment ahead waits for the others)."""
    numbers = [{s.number for run in found for s in run} for found in runs.values()]
    common = set.intersection(*numbers) if numbers else set()
    return {name: [kept for run in found if (kept := [s for s in run if s.number in common])]
            for name, found in runs.items()}


def media_playlist(runs: Runs, *, vod: bool = False) -> str:
    """A rendition's playlist of these segments: EVENT while live, VOD with its end after."""
    segments = [s for run in runs for s in run]
    target = max([SEGMENT_S] + [round(s.duration) for s in segments])
    lines = ["#EXTM3U", "#EXT-X-VERSION:6", f"#EXT-X-TARGETDURATION:{target}",
             f"#EXT-X-MEDIA-SEQUENCE:{segments[0].number if segments else 0}",
             f"#EXT-X-PLAYLIST-TYPE:{'VOD' if vod else 'EVENT'}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for index, run in enumerate(runs):
        if index:
            lines.append("#EXT-X-DISCONTINUITY")
        for segment in run:
            lines.append(f"#EXTINF:{segment.duration:.6f},")
            if segment.at is not None:
                lines.append("#EXT-X-PROGRAM-DATE-TIME:"
                             + segment.at.isoformat(timespec="milliseconds"))
            lines.append(segment.uri)
    if vod:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def master_playlist(layout: Layout, playlist: str) -> str:
    """The renditions, each naming its `playlist` (live.m3u8, preview.m3u8, index.m3u8); the
    sound once, in the group every picture names."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:6", "#EXT-X-INDEPENDENT-SEGMENTS"]
    if not layout.renditions:
        return "\n".join(lines + [
            f'#EXT-X-STREAM-INF:BANDWIDTH={AUDIO_BITRATE_K * 1000},CODECS="mp4a.40.2"',
            f"{AUDIO}/{playlist}"]) + "\n"
    group = ""
    if layout.has_audio:
        lines.append(f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="{AUDIO}",NAME="{AUDIO}",DEFAULT=YES,'
                     f'AUTOSELECT=YES,URI="{AUDIO}/{playlist}"')
        group = f',AUDIO="{AUDIO}"'
    for rendition in layout.renditions:
        bandwidth = rendition.bandwidth if layout.has_audio else rendition.video_kbps * 1000
        lines += [f"#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},"
                  f"RESOLUTION={rendition.width}x{rendition.height}{group}",
                  f"{rendition.name}/{playlist}"]
    return "\n".join(lines) + "\n"


def duration_of(runs: Runs) -> float:
    return sum(s.duration for run in runs for s in run)


def next_number(folder: Path, layout: Layout) -> int:
    """Where a new run's segment numbers start: after every segment any rendition lists (a
    file none lists, begun as the input ended, is written over)."""
    numbers = [s.number for name in layout.names for run in read_runs(folder, name) for s in run]
    return max(numbers, default=0) + 1


def edge_s(runs: Runs, since: datetime) -> float:
    """Seconds from `since` to the end of the last segment written (0: none yet)."""
    ends = [s.ends for run in runs for s in run if s.ends is not None]
    return max(0.0, (max(ends) - since).total_seconds()) if ends else 0.0
