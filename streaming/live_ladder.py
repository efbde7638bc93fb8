"""What one ffmpeg makes of a live publisher's stream: the live ladder. Pure functions, like
streaming.ladder (whose rungs, sizes and audio group it reuses): the argument list is data a
test compares exactly, and nothing here runs a process.

One ffmpeg per publisher connection (a "run"), reading the stream the front hands on from its
standard input (`-f flv|webm -i pipe:0`: one demuxer, the pipe and nothing else). It writes
720p/480p/360p, none above the source, each at a fixed size (a later run of the same stream
keeps the first run's sizes, so a player's levels never change), with keyframes forced every
SEGMENT_S seconds in every rendition (segments line up across the ladder), the sound encoded
once (the audio group), 2 s segments numbered on from the run before, and an EVENT playlist
per rendition and run with each segment's wall-clock time (`#EXT-X-PROGRAM-DATE-TIME`): what
streaming.live_playlists composes the preview, the public playlist from the on-air moment and
the archive from.

Speed: `-tune zerolatency` (no lookahead, no B-frames: a frame leaves the encoder as it comes)
and PRESET, measured on this 2-core machine (bench/live_presets.py, bench/results/
live_presets.md): three renditions of a 720p30 source took 22 % of the two cores at real time
with `veryfast`, 18 % with `superfast`; the better picture is worth the 1.25×.
"""

from __future__ import annotations

from dataclasses import dataclass

from streaming.ladder import (
    AUDIO_BITRATE_K,
    POSTER_SHORT,
    RUNGS,
    THUMB_COLUMNS,
    THUMB_EVERY_S,
    THUMB_H,
    THUMB_ROWS,
    THUMB_W,
    Rendition,
    Source,
    _fit,
    poster_at,
)

SEGMENT_S = 2
PRESET = "veryfast"
LIVE_RUNGS = tuple(rung for rung in RUNGS if rung.short <= 720)
# What a front hands on: RTMP's FLV, the browser's WebM.
DEMUXERS = {"flv": "flv", "webm": "matroska"}
# The largest picture a publisher's decoder may make (1080p and alignment; ingest refuses more).
MAX_PIXELS = 1920 * 1088
AUDIO = "audio"


@dataclass(frozen=True)
class LiveSource:
    """What the probe of a run's first bytes found: the picture's size (0: no video), sound."""

    width: int = 0
    height: int = 0
    has_audio: bool = False

    @property
    def has_video(self) -> bool:
        return self.width > 0 and self.height > 0


@dataclass(frozen=True)
class Layout:
    """A live stream's renditions, fixed by its first run (kept in the live folder)."""

    renditions: tuple[Rendition, ...]  # pictures, highest first; empty: sound only
    has_audio: bool

    @property
    def names(self) -> list[str]:
        """The renditions' folders: the pictures', then the sound's if it has one."""
        return [r.name for r in self.renditions] + ([AUDIO] if self.has_audio else [])

    @property
    def lowest(self) -> str:
        return self.renditions[-1].name if self.renditions else AUDIO

    def to_json(self) -> dict[str, object]:
        return {"renditions": [[r.name, r.width, r.height, r.video_kbps]
                               for r in self.renditions], "has_audio": self.has_audio}

    @staticmethod
    def from_json(data: dict[str, object]) -> Layout:
        rows = data.get("renditions")
        renditions = tuple(Rendition(str(name), int(width), int(height), int(kbps))
                           for name, width, height, kbps in (rows if isinstance(rows, list)
                                                             else []))
        return Layout(renditions, bool(data.get("has_audio")))


def layout_for(source: LiveSource) -> Layout:
    """The renditions for a first run: every live rung the source fills (by its short or long
    side), each fitted to the source's shape; a source below 360p one rendition of its own
    size; none for sound alone."""
    if not source.has_video:
        return Layout((), source.has_audio)
    probe = Source(0, source.width, source.height)
    short, long_side = min(source.width, source.height), max(source.width, source.height)
    rungs = [rung for rung in LIVE_RUNGS if short >= rung.short or long_side >= rung.long]
    if not rungs:
        low = LIVE_RUNGS[-1]
        width, height = _fit(probe, short)
        own = min(width, height)
        return Layout((Rendition(f"{own}p", width, height,
                                 low.video_kbps * own // low.short or 100),), source.has_audio)
    return Layout(tuple(Rendition(f"{rung.short}p", *_fit(probe, rung.short), rung.video_kbps)
                        for rung in rungs), source.has_audio)


def run_playlist(run: int) -> str:
    """A run's playlist in each rendition's folder (`720p/run_003.m3u8`)."""
    return f"run_{run:03d}.m3u8"


def ffmpeg_args(container: str, out_dir: str, layout: Layout, source: LiveSource, run: int,
                start_number: int) -> list[str]:
    """The command after `ffmpeg` for one run: the publisher's bytes on standard input, the
    ladder as HLS segments (from `start_number`) and one EVENT playlist per rendition."""
    args = ["-hide_banner", "-nostdin", "-loglevel", "error", "-nostats",
            "-protocol_whitelist", "pipe", "-format_whitelist", DEMUXERS[container],
            "-max_pixels", str(MAX_PIXELS), "-f", DEMUXERS[container], "-i", "pipe:0"]
    renditions = layout.renditions
    streams: list[str] = []
    if renditions:
        count = len(renditions)
        top = renditions[0]
        labels = "[out0]" + "".join(f"[v{index}]" for index in range(1, count))
        graph = [f"[0:v:0]scale={top.width}:{top.height},format=yuv420p"
                 + (f",split={count}{labels}" if count > 1 else "[out0]")]
        for index, rendition in enumerate(renditions[1:], start=1):
            graph.append(f"[v{index}]scale={rendition.width}:{rendition.height}[out{index}]")
        args += ["-filter_complex", ";".join(graph)]
        for index in range(count):
            args += ["-map", f"[out{index}]"]
    if layout.has_audio:
        args += ["-map", "0:a:0"]  # once: every rendition plays the same sound
    if renditions:
        args += ["-fps_mode", "vfr",
                 "-c:v", "libx264", "-preset", PRESET, "-tune", "zerolatency",
                 "-profile:v", "high", "-sc_threshold", "0",
                 "-force_key_frames", f"expr:gte(t,n_forced*{SEGMENT_S})"]
        for index, rendition in enumerate(renditions):
            args += [f"-b:v:{index}", f"{rendition.video_kbps}k",
                     f"-maxrate:v:{index}", f"{rendition.video_kbps * 107 // 100}k",
                     f"-bufsize:v:{index}", f"{rendition.video_kbps}k"]
    if layout.has_audio:
        args += ["-c:a", "aac", "-b:a", f"{AUDIO_BITRATE_K}k", "-ac", "2", "-ar", "48000"]
        # The sound's rendition in the group `audio`, the default; each picture names it.
        streams.append(f"a:0,agroup:{AUDIO},name:{AUDIO},default:yes")
    group = f",agroup:{AUDIO}" if layout.has_audio else ""
    streams += [f"v:{index}{group},name:{r.name}" for index, r in enumerate(renditions)]
    return args + [
        "-f", "hls", "-hls_time", str(SEGMENT_S), "-hls_playlist_type", "event",
        "-hls_flags", "independent_segments+program_date_time", "-hls_list_size", "0",
        "-start_number", str(start_number), "-hls_segment_type", "mpegts",
        "-hls_segment_filename", f"{out_dir}/%v/seg_%05d.ts",
        "-var_stream_map", " ".join(streams), f"{out_dir}/%v/{run_playlist(run)}"]


def probe_args(container: str) -> list[str]:
    """The command after `ffprobe` that reads a run's first bytes from standard input: the
    streams, as JSON."""
    return ["-hide_banner", "-loglevel", "error", "-protocol_whitelist", "pipe",
            "-format_whitelist", DEMUXERS[container], "-f", DEMUXERS[container],
            "-show_entries", "stream=codec_type,width,height", "-of", "json", "pipe:0"]


def pictures_args(out_dir: str, layout: Layout, duration_s: float) -> list[str]:
    """The command after `ffmpeg` that makes an ended webcast's poster and seek-preview sheets
    (the names and tile sizes of streaming.ladder) from its archive's top rendition, decoding
    keyframes only (one every SEGMENT_S): seconds for an hour. Sound alone: its waveform."""
    args = ["-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-nostats",
            "-protocol_whitelist", "file", "-format_whitelist", "hls,mpegts"]
    if not layout.renditions:
        return args + ["-f", "hls", "-i", f"{out_dir}/{AUDIO}/index.m3u8", "-filter_complex",
                       "[0:a:0]showwavespic=s=1280x720:colors=0x1f6feb[poster]",
                       "-map", "[poster]", "-frames:v", "1", f"{out_dir}/poster.jpg"]
    top = layout.renditions[0]
    poster_w, poster_h = _fit(Source(0, top.width, top.height), POSTER_SHORT)
    graph = ("[0:v:0]split=2[vposter][vthumbs];"
             f"[vposter]trim=start={poster_at(Source(duration_s)):.3f},"
             f"scale={poster_w}:{poster_h},format=yuvj420p[poster];"
             f"[vthumbs]fps=1/{THUMB_EVERY_S},scale={THUMB_W}:{THUMB_H}:"
             f"force_original_aspect_ratio=decrease,pad={THUMB_W}:{THUMB_H}:-1:-1,"
             f"tile={THUMB_COLUMNS}x{THUMB_ROWS},format=yuvj420p[thumbs]")
    return args + ["-skip_frame", "nokey", "-f", "hls", "-i", f"{out_dir}/{top.name}/index.m3u8",
                   "-filter_complex", graph,
                   "-map", "[poster]", "-frames:v", "1", f"{out_dir}/poster.jpg",
                   "-map", "[thumbs]", "-fps_mode", "passthrough", f"{out_dir}/thumbs-%03d.jpg"]
