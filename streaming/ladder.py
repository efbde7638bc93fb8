"""What one ffmpeg process makes of a recording: the ladder, the playlists, the poster, the
seek-preview strip; and how far it has got. Pure functions: the argument list is data a test
compares exactly, and nothing here runs a process.

One process reads the source once and writes every rendition, as Owncast does (one ffmpeg with
`-var_stream_map`; PeerTube runs one per rendition). Decoding once is what keeps the pipeline
near plain ffmpeg's speed on two cores. The sound is encoded once and shared by every rendition
(one AAC rendition in an audio group, `agroup`, as PeerTube does). Keyframes are forced every
SEGMENT_S seconds in every rendition, so segments line up across the ladder and a player
switches quality at any segment boundary.

Rungs are chosen by the picture's short side (a 1080x1920 phone video is 1080p, kept portrait)
and each is a fixed size: whatever size the decoder's frames turn out to have, every
rendition's frames are the size chosen from what the probe found.

What it costs (issue 17 item 7; bench/ladder_cost.py, bench/results/ladder_cost_*.md): the
same 60 s 720p clip through a plain one-pass `veryfast` 720/480/360 ladder (one ffmpeg, split +
scale, AAC per rendition) and through this list, part by part, in CPU seconds, which a shared
machine disturbs far less than wall time (the 1.4-1.8x wall-time gap the issue saw did not
come back as CPU: identical runs differed 2-4x in wall time on the busy machine; the list as it
is now takes 0.78-0.86x the plain ladder's CPU, bench/results/ladder_cost_testsrc2.md and
transcode.md). What stays:

- the sound encoded once (the audio group): cheaper than AAC per rendition, not dearer (three
  AAC encoders cost 7-25 % more CPU on the test clips), and one audio track stored, not three;
- `-maxrate`/`-bufsize`: a few per cent; they hold each rendition near the BANDWIDTH its
  master playlist declares, which a player's quality switching relies on;
- `-force_key_frames` every SEGMENT_S: no dearer than `-g` (measured), and unlike `-g` it keys
  on time, not frame count, so a variable-rate source's segments still line up;
- `-fps_mode vfr`: free, and it keeps a pause in the source from being filled with copies;
- the seek-preview sheets: `fps` drops to one frame in five seconds before anything else
  runs, so they cost nothing measurable.

What went: the poster branch scaled and converted (to full-range JPEG colours) every frame after
the poster's moment, for one frame kept: 2-8 % of the run's CPU (the more, the easier the
picture), now one frame (`select`);
and `-profile:v high`, which x264 picks anyway for 8-bit 4:2:0 at this preset (no cost, no
effect).

ffmpeg reads one file and nothing else (INPUT_DEMUXERS, `-protocol_whitelist file`): no
playlist, manifest or list that names other files is ever followed, and the decoder refuses
pictures larger than the source declared (`-max_pixels`).
"""

from __future__ import annotations

from dataclasses import dataclass

SEGMENT_S = 4
POSTER_AT_S = 5.0
POSTER_SHORT = 720  # the poster's short side at most
# The seek-preview strip: one frame every THUMB_EVERY_S, THUMB_W x THUMB_H, COLUMNS x ROWS a sheet.
THUMB_EVERY_S = 5
THUMB_W, THUMB_H = 160, 90
THUMB_COLUMNS, THUMB_ROWS = 10, 10
AUDIO_BITRATE_K = 128
PRESET = "veryfast"

# What ffmpeg may read a source as: containers of one recording (by ffmpeg's demuxer names).
# Never hls, dash, concat, image2 or any other playlist, list or pattern that names other files.
INPUT_DEMUXERS = ("matroska", "mov", "mpegts", "flv", "avi", "asf", "mpeg", "wav", "mp3", "ogg",
                  "aac", "flac", "amr")
# The largest picture a source may declare (8K UHD), and a side's most.
MAX_SIDE = 8192
MAX_PIXELS = 7680 * 4320
# A source may grow its picture mid-way up to its declared size or this, whichever is larger:
# its decoder refuses anything bigger (a 320x240 header cannot hide 16000x16000 frames).
DECODER_FLOOR_PIXELS = 1920 * 1088


@dataclass(frozen=True)
class Rung:
    short: int  # the picture's short side: 1080 for 1920x1080 and for 1080x1920
    video_kbps: int

    @property
    def long(self) -> int:  # the long side of a 16:9 picture of this class
        return _even(self.short * 16 / 9)


# 1080p, 720p, 480p, 360p: none above the source.
RUNGS = (Rung(1080, 5000), Rung(720, 2800), Rung(480, 1400), Rung(360, 800))


@dataclass(frozen=True)
class Source:
    """What ffprobe found in an upload (streaming.probe): the picture as shown (a phone's
    rotation applied)."""

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
    width: int  # 0: audio only
    height: int
    video_kbps: int

    @property
    def bandwidth(self) -> int:
        return (self.video_kbps + AUDIO_BITRATE_K) * 1000


def _even(value: float) -> int:
    """The nearest even number (halves up, as ffmpeg's `scale=-2`), at least 2: what H.264 in
    4:2:0 takes."""
    return max(2, int(value / 2 + 0.5) * 2)


def _fit(source: Source, short: int) -> tuple[int, int]:
    """The source's picture scaled down (never up) to fit a 16:9 frame of this short side,
    turned as the source is."""
    long_side, short_side = max(source.width, source.height), min(source.width, source.height)
    scale = min(1.0, short / short_side, _even(short * 16 / 9) / long_side)
    return (min(_even(source.width * scale), max(2, source.width // 2 * 2)),
            min(_even(source.height * scale), max(2, source.height // 2 * 2)))


def ladder(source: Source) -> list[Rendition]:
    """The renditions for this source, highest first: every rung the source fills by its short
    side or its long side (1280x714 is 720p). A source below the lowest rung gets one rendition
    at its own size; an audio-only source one audio rendition."""
    if not source.has_video:
        return [Rendition("audio", 0, 0, 0)]
    short, long_side = min(source.width, source.height), max(source.width, source.height)
    rungs = [rung for rung in RUNGS if short >= rung.short or long_side >= rung.long]
    if not rungs:
        low = RUNGS[-1]
        width, height = _fit(source, short)
        own = min(width, height)
        return [Rendition(f"{own}p", width, height, low.video_kbps * own // low.short or 100)]
    return [Rendition(f"{rung.short}p", *_fit(source, rung.short), rung.video_kbps)
            for rung in rungs]


def poster_at(source: Source) -> float:
    return min(POSTER_AT_S, source.duration_s / 2)


def decoder_max_pixels(source: Source) -> int:
    """The largest picture the decoder may make: the declared one (with room for alignment),
    at least DECODER_FLOOR_PIXELS, never above MAX_PIXELS."""
    declared = -(-source.width // 64) * 64 * (-(-source.height // 64) * 64)
    return min(MAX_PIXELS, max(DECODER_FLOOR_PIXELS, declared))


def input_args(source_path: str, max_pixels: int) -> list[str]:
    """How ffmpeg and ffprobe open a source: one local file, read by one of INPUT_DEMUXERS,
    pictures no larger than `max_pixels`."""
    return ["-protocol_whitelist", "file", "-format_whitelist", ",".join(INPUT_DEMUXERS),
            "-max_pixels", str(max_pixels), "-i", f"file:{source_path}"]


def ffmpeg_args(source_path: str, out_dir: str, source: Source) -> list[str]:
    """The whole command after `ffmpeg`: every rendition as HLS (VOD playlists and a master
    playlist), the poster and the seek-preview sheets, with progress on standard output."""
    renditions = ladder(source)
    args = ["-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-nostats",
            "-progress", "pipe:1", *input_args(source_path, decoder_max_pixels(source))]
    if not source.has_video:
        args += ["-filter_complex", "[0:a:0]showwavespic=s=1280x720:colors=0x1f6feb[poster]",
                 "-map", "[poster]", "-frames:v", "1", f"{out_dir}/poster.jpg",
                 "-map", "0:a:0", "-c:a", "aac", "-b:a", f"{AUDIO_BITRATE_K}k", "-ac", "2"]
        return args + _hls(out_dir, "a:0,name:audio")
    count = len(renditions)
    top = renditions[0]
    # The decoder's frames go to the top rendition's fixed size first: every branch after it
    # works on frames of a known size, whatever the file sends.
    labels = "[out0]" + "".join(f"[v{index}]" for index in range(1, count))
    graph = [f"[0:v:0]scale={top.width}:{top.height},format=yuv420p,"
             f"split={count + 2}{labels}[vposter][vthumbs]"]
    for index, rendition in enumerate(renditions[1:], start=1):
        graph.append(f"[v{index}]scale={rendition.width}:{rendition.height}[out{index}]")
    poster_w, poster_h = _fit(Source(0, top.width, top.height), POSTER_SHORT)
    # One frame goes on from the trim: the poster output takes one, but the graph would scale
    # and convert every later frame for it (2-8 % of the whole run's CPU; bench/ladder_cost.py).
    graph.append(f"[vposter]trim=start={poster_at(source):.3f},select='eq(n,0)',"
                 f"scale={poster_w}:{poster_h},format=yuvj420p[poster]")
    graph.append(f"[vthumbs]fps=1/{THUMB_EVERY_S},scale={THUMB_W}:{THUMB_H}:"
                 f"force_original_aspect_ratio=decrease,pad={THUMB_W}:{THUMB_H}:-1:-1,"
                 f"tile={THUMB_COLUMNS}x{THUMB_ROWS},format=yuvj420p[thumbs]")
    args += ["-filter_complex", ";".join(graph),
             "-map", "[poster]", "-frames:v", "1", f"{out_dir}/poster.jpg",
             "-map", "[thumbs]", "-fps_mode", "passthrough", f"{out_dir}/thumbs-%03d.jpg"]
    for index in range(count):
        args += ["-map", f"[out{index}]"]
    if source.has_audio:
        args += ["-map", "0:a:0"]  # once: every rendition plays the same sound
    # Frames keep their own times (`vfr`): a pause in the source's timestamps (an hour between
    # two frames) is not filled with copies of a frame to encode, one per 1/25 s.
    args += ["-fps_mode", "vfr",
             "-c:v", "libx264", "-preset", PRESET, "-sc_threshold", "0",
             "-force_key_frames", f"expr:gte(t,n_forced*{SEGMENT_S})"]
    for index, rendition in enumerate(renditions):
        args += [f"-b:v:{index}", f"{rendition.video_kbps}k",
                 f"-maxrate:v:{index}", f"{rendition.video_kbps * 107 // 100}k",
                 f"-bufsize:v:{index}", f"{rendition.video_kbps * 3 // 2}k"]
    if not source.has_audio:
        return args + _hls(out_dir, " ".join(f"v:{index},name:{r.name}"
                                             for index, r in enumerate(renditions)))
    # One audio rendition in the group `audio`, the default (so it is no variant of its own:
    # a player never picks a picture-less level); each picture rendition names the group.
    streams = " ".join(["a:0,agroup:audio,name:audio,default:yes"] + [
        f"v:{index},agroup:audio,name:{r.name}" for index, r in enumerate(renditions)])
    return args + ["-c:a", "aac", "-b:a", f"{AUDIO_BITRATE_K}k", "-ac", "2"] + \
        _hls(out_dir, streams)


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
