"""What one ffmpeg process makes of a recording: the ladder, the playlists, the poster, the
seek-preview strip; and how far it has got. Pure functions: the argument list is data a test
compares exactly, and nothing here runs a process.

One process reads the source once and writes every rendition (PeerTube and Owncast run one per
rendition; decoding once is what keeps the pipeline near plain ffmpeg's speed on two cores).
Keyframes are forced every SEGMENT_S seconds in every rendition, so segments line up across the
ladder and a player switches quality at any segment boundary.
"""

from __future__ import annotations

from dataclasses import dataclass

SEGMENT_S = 4
POSTER_AT_S = 5.0
# The seek-preview strip: one frame every THUMB_EVERY_S, THUMB_W x THUMB_H, COLUMNS x ROWS a sheet.
THUMB_EVERY_S = 5
THUMB_W, THUMB_H = 160, 90
THUMB_COLUMNS, THUMB_ROWS = 10, 10
AUDIO_BITRATE_K = 128
PRESET = "veryfast"


@dataclass(frozen=True)
class Rung:
    height: int
    video_kbps: int


# 1080p, 720p, 480p, 360p: none above the source's height.
RUNGS = (Rung(1080, 5000), Rung(720, 2800), Rung(480, 1400), Rung(360, 800))


@dataclass(frozen=True)
class Source:
    """What ffprobe found in an upload (streaming.probe)."""

    duration_s: float
    width: int = 0  # 0: no video
    height: int = 0
    has_audio: bool = False

    @property
    def has_video(self) -> bool:
        return self.width > 0 and self.height > 0


@dataclass(frozen=True)
class Rendition:
    name: str  # also its folder: 720p, audio
    height: int  # 0: audio only
    video_kbps: int

    @property
    def bandwidth(self) -> int:
        return (self.video_kbps + AUDIO_BITRATE_K) * 1000


def _even(value: float) -> int:
    return max(2, int(value) // 2 * 2)


def ladder(source: Source) -> list[Rendition]:
    """The renditions for this source, highest first. A source below the lowest rung gets one
    rendition at its own height; an audio-only source one audio rendition."""
    if not source.has_video:
        return [Rendition("audio", 0, 0)]
    rungs = [rung for rung in RUNGS if rung.height <= source.height]
    if not rungs:
        low = RUNGS[-1]
        height = _even(source.height)
        return [Rendition(f"{height}p", height, low.video_kbps * height // low.height or 100)]
    return [Rendition(f"{rung.height}p", rung.height, rung.video_kbps) for rung in rungs]


def poster_at(source: Source) -> float:
    return min(POSTER_AT_S, source.duration_s / 2)


def ffmpeg_args(source_path: str, out_dir: str, source: Source) -> list[str]:
    """The whole command after `ffmpeg`: every rendition as HLS (VOD playlists and a master
    playlist), the poster and the seek-preview sheets, with progress on standard output."""
    renditions = ladder(source)
    args = ["-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-nostats",
            "-progress", "pipe:1", "-i", source_path]
    if not source.has_video:
        args += ["-filter_complex", "[0:a:0]showwavespic=s=1280x720:colors=0x1f6feb[poster]",
                 "-map", "[poster]", "-frames:v", "1", f"{out_dir}/poster.jpg",
                 "-map", "0:a:0", "-c:a", "aac", "-b:a", f"{AUDIO_BITRATE_K}k", "-ac", "2"]
        return args + _hls(out_dir, "a:0,name:audio")
    count = len(renditions)
    labels = "".join(f"[v{index}]" for index in range(count))
    graph = [f"[0:v:0]split={count + 2}{labels}[vposter][vthumbs]"]
    for index, rendition in enumerate(renditions):
        graph.append(f"[v{index}]scale=-2:{rendition.height},format=yuv420p[out{index}]")
    graph.append(f"[vposter]trim=start={poster_at(source):.3f},scale=-2:"
                 f"{min(renditions[0].height, 720)},format=yuvj420p[poster]")
    graph.append(f"[vthumbs]fps=1/{THUMB_EVERY_S},scale={THUMB_W}:{THUMB_H}:"
                 f"force_original_aspect_ratio=decrease,pad={THUMB_W}:{THUMB_H}:-1:-1,"
                 f"tile={THUMB_COLUMNS}x{THUMB_ROWS},format=yuvj420p[thumbs]")
    args += ["-filter_complex", ";".join(graph),
             "-map", "[poster]", "-frames:v", "1", f"{out_dir}/poster.jpg",
             "-map", "[thumbs]", "-fps_mode", "passthrough", f"{out_dir}/thumbs-%03d.jpg"]
    for index in range(count):
        args += ["-map", f"[out{index}]"]
        if source.has_audio:
            args += ["-map", "0:a:0"]
    args += ["-c:v", "libx264", "-preset", PRESET, "-profile:v", "high", "-sc_threshold", "0",
             "-force_key_frames", f"expr:gte(t,n_forced*{SEGMENT_S})"]
    for index, rendition in enumerate(renditions):
        args += [f"-b:v:{index}", f"{rendition.video_kbps}k",
                 f"-maxrate:v:{index}", f"{rendition.video_kbps * 107 // 100}k",
                 f"-bufsize:v:{index}", f"{rendition.video_kbps * 3 // 2}k"]
    if source.has_audio:
        args += ["-c:a", "aac", "-b:a", f"{AUDIO_BITRATE_K}k", "-ac", "2"]
    streams = " ".join(
        f"v:{index},a:{index},name:{r.name}" if source.has_audio else f"v:{index},name:{r.name}"
        for index, r in enumerate(renditions))
    return args + _hls(out_dir, streams)


def _hls(out_dir: str, var_stream_map: str) -> list[str]:
    return ["-f", "hls", "-hls_time", str(SEGMENT_S), "-hls_playlist_type", "vod",
            "-hls_flags", "independent_segments", "-hls_segment_type", "mpegts",
            "-hls_segment_filename", f"{out_dir}/%v/seg_%05d.ts",
            "-master_pl_name", "master.m3u8", "-var_stream_map", var_stream_map,
            f"{out_dir}/%v/index.m3u8"]


def thumbnails_vtt(source: Source, sheet_url: str = "thumbs-{:03d}.jpg") -> str:
    """The WebVTT that maps each moment to its tile in the sheets (a player's seek preview)."""
    if not source.has_video:
        return "WEBVTT\n"
    per_sheet = THUMB_COLUMNS * THUMB_ROWS
    lines = ["WEBVTT", ""]
    start = 0.0
    index = 0
    while start < source.duration_s:
        end = min(start + THUMB_EVERY_S, source.duration_s)
        sheet, tile = divmod(index, per_sheet)
        row, column = divmod(tile, THUMB_COLUMNS)
        lines += [f"{_vtt_time(start)} --> {_vtt_time(end)}",
                  f"{sheet_url.format(sheet + 1)}#xywh={column * THUMB_W},{row * THUMB_H},"
                  f"{THUMB_W},{THUMB_H}", ""]
        start += THUMB_EVERY_S
        index += 1
    return "\n".join(lines)


def _vtt_time(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


class Progress:
    """Reads ffmpeg's `-progress` lines (key=value, a block ending in `progress=`): the share
    of the source written, rising, never above 1 until ffmpeg says `progress=end`."""

    def __init__(self, duration_s: float) -> None:
        self.duration_us = max(duration_s, 0.001) * 1_000_000
        self.fraction = 0.0
        self.ended = False

    def feed(self, line: str) -> bool:
        """Takes one line; True when a block ended (time to report the fraction)."""
        key, _, value = line.strip().partition("=")
        if key == "out_time_us" and value.lstrip("-").isdigit():
            done = min(int(value) / self.duration_us, 0.99)
            self.fraction = max(self.fraction, round(done, 3))
        elif key == "progress":
            if value == "end":
                self.ended, self.fraction = True, 1.0
            return True
        return False
