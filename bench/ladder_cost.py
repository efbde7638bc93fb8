"""Where the VOD argument list's time goes, against a plain one-pass `veryfast` ladder.

Issue 17 item 7: the recordings' ffmpeg argument list took 1.4-1.8x the time of a plain
720/480/360 ladder. This script makes one --seconds (60) 1280x720 clip and runs, as plain ffmpeg
(no server), alternated round by round in a rotating order:

- `plain`: one ffmpeg, split + scale, libx264 veryfast at the rungs' bitrates, AAC encoded for
  each rendition (as a naive ladder does), `-g` one segment with `-sc_threshold 0`, HLS;
- `before`: the argument list as it stood before this issue (rebuilt here from its parts, so the
  variants differ from it by exactly one thing);
- one variant per part taken out (or, for audio, put back per rendition);
- `now`: `streaming.ladder.ffmpeg_args` as it is in this tree.

It prints a markdown table: the median wall time and the median CPU time (user + system of the
ffmpeg process) of each, and their ratios to `plain` of the same run. CPU time is the fairer
measure on a shared machine; wall time is what a user waits.

    .venv/bin/python bench/ladder_cost.py    # writes bench/results/ladder_cost_grain.md
    .venv/bin/python bench/ladder_cost.py --picture testsrc2 --rounds 2
    .venv/bin/python bench/ladder_cost.py --seconds 20 --rounds 1 --no-write
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from streaming.ladder import (
    AUDIO_BITRATE_K,
    POSTER_SHORT,
    SEGMENT_S,
    THUMB_COLUMNS,
    THUMB_EVERY_S,
    THUMB_H,
    THUMB_ROWS,
    THUMB_W,
    Source,
    _fit,
    ffmpeg_args,
    input_args,
    ladder,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "ladder_cost_grain.md"
FPS = 25


@dataclass(frozen=True)
class Parts:
    """The argument list before issue 17, part by part: each flag one thing it did."""

    audio_once: bool = True
    rate_control: bool = True  # -maxrate/-bufsize per rendition
    profile_high: bool = True
    poster: bool = True  # the poster branch as it was: trim, then scale + format on every frame
    poster_one_frame: bool = False  # the poster branch cut to its one frame before scale+format
    sheets: bool = True  # the seek-preview branch: fps, scale, pad, tile
    vfr: bool = True  # -fps_mode vfr
    force_key_frames: bool = True  # False: -g one segment instead


def plain_args(clip: str, out: str, source: Source) -> list[str]:
    """A plain ladder as one would write it first: audio encoded for each rendition."""
    renditions = ladder(source)
    count = len(renditions)
    graph = [f"[0:v:0]split={count}" + "".join(f"[s{i}]" for i in range(count))]
    graph += [f"[s{i}]scale={r.width}:{r.height}[out{i}]" for i, r in enumerate(renditions)]
    args = ["-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-i", clip,
            "-filter_complex", ";".join(graph)]
    for index in range(count):
        args += ["-map", f"[out{index}]", "-map", "0:a:0"]
    args += ["-c:v", "libx264", "-preset", "veryfast", "-g", str(SEGMENT_S * FPS),
             "-sc_threshold", "0"]
    for index, rendition in enumerate(renditions):
        args += [f"-b:v:{index}", f"{rendition.video_kbps}k"]
    args += ["-c:a", "aac", "-b:a", f"{AUDIO_BITRATE_K}k", "-ac", "2",
             "-f", "hls", "-hls_time", str(SEGMENT_S), "-hls_playlist_type", "vod",
             "-hls_segment_filename", f"{out}/%v/seg_%05d.ts", "-master_pl_name", "master.m3u8",
             "-var_stream_map", " ".join(f"v:{i},a:{i}" for i in range(count)),
             f"{out}/%v/index.m3u8"]
    return args


def before_args(clip: str, out: str, source: Source, parts: Parts) -> list[str]:
    """streaming.ladder.ffmpeg_args as it stood before issue 17, with `parts` taken out."""
    renditions = ladder(source)
    count = len(renditions)
    top = renditions[0]
    branches = [f"[v{i}]" for i in range(1, count)] + \
        (["[vposter]"] if parts.poster else []) + (["[vthumbs]"] if parts.sheets else [])
    graph = [f"[0:v:0]scale={top.width}:{top.height},format=yuv420p,"
             f"split={1 + len(branches)}[out0]{''.join(branches)}"]
    graph += [f"[v{i}]scale={r.width}:{r.height}[out{i}]"
              for i, r in enumerate(renditions[1:], start=1)]
    args = ["-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-nostats",
            *input_args(clip, 1920 * 1088)]
    outputs: list[str] = []
    if parts.poster:
        width, height = _fit(Source(0, top.width, top.height), POSTER_SHORT)
        one = ",select='eq(n,0)'" if parts.poster_one_frame else ""
        graph.append(f"[vposter]trim=start=5.000{one},scale={width}:{height},"
                     "format=yuvj420p[poster]")
        outputs += ["-map", "[poster]", "-frames:v", "1", f"{out}/poster.jpg"]
    if parts.sheets:
        graph.append(f"[vthumbs]fps=1/{THUMB_EVERY_S},scale={THUMB_W}:{THUMB_H}:"
                     f"force_original_aspect_ratio=decrease,pad={THUMB_W}:{THUMB_H}:-1:-1,"
                     f"tile={THUMB_COLUMNS}x{THUMB_ROWS},format=yuvj420p[thumbs]")
        outputs += ["-map", "[thumbs]", "-fps_mode", "passthrough", f"{out}/thumbs-%03d.jpg"]
    args += ["-filter_complex", ";".join(graph), *outputs]
    for index in range(count):
        args += ["-map", f"[out{index}]"]
    args += ["-map", "0:a:0"] * (1 if parts.audio_once else count)
    if parts.vfr:
        args += ["-fps_mode", "vfr"]
    args += ["-c:v", "libx264", "-preset", "veryfast"]
    if parts.profile_high:
        args += ["-profile:v", "high"]
    args += ["-sc_threshold", "0"]
    args += ["-force_key_frames", f"expr:gte(t,n_forced*{SEGMENT_S})"] \
        if parts.force_key_frames else ["-g", str(SEGMENT_S * FPS)]
    for index, rendition in enumerate(renditions):
        args += [f"-b:v:{index}", f"{rendition.video_kbps}k"]
        if parts.rate_control:
            args += [f"-maxrate:v:{index}", f"{rendition.video_kbps * 107 // 100}k",
                     f"-bufsize:v:{index}", f"{rendition.video_kbps * 3 // 2}k"]
    if parts.audio_once:
        streams = " ".join(["a:0,agroup:audio,name:audio,default:yes"] + [
            f"v:{i},agroup:audio,name:{r.name}" for i, r in enumerate(renditions)])
    else:
        streams = " ".join(f"v:{i},a:{i},name:{r.name}" for i, r in enumerate(renditions))
    return args + ["-c:a", "aac", "-b:a", f"{AUDIO_BITRATE_K}k", "-ac", "2",
                   "-f", "hls", "-hls_time", str(SEGMENT_S), "-hls_playlist_type", "vod",
                   "-hls_flags", "independent_segments", "-hls_segment_type", "mpegts",
                   "-hls_segment_filename", f"{out}/%v/seg_%05d.ts",
                   "-master_pl_name", "master.m3u8", "-var_stream_map", streams,
                   f"{out}/%v/index.m3u8"]


VARIANTS: dict[str, Parts] = {
    "before (all of it)": Parts(),
    "audio per rendition": Parts(audio_once=False),
    "no -maxrate/-bufsize": Parts(rate_control=False),
    "no -profile:v high": Parts(profile_high=False),
    "no poster branch": Parts(poster=False),
    "poster: one frame through scale": Parts(poster_one_frame=True),
    "no seek-sheet branch": Parts(sheets=False),
    "no -fps_mode vfr": Parts(vfr=False),
    "-g instead of -force_key_frames": Parts(force_key_frames=False),
    "no poster, no sheets": Parts(poster=False, sheets=False),
}


@dataclass
class Runs:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def run(args: list[str], out: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the ffmpeg process) of one run into a fresh folder."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    started = time.perf_counter()
    process = subprocess.Popen(["ffmpeg", *args], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(process.stderr.read().decode() if process.stderr else "ffmpeg failed")
    return wall, usage.ru_utime + usage.ru_stime


def make_clip(path: Path, seconds: int, grain: bool) -> None:
    """A 1280x720 25 fps test pattern and a tone; with `grain`, temporal noise on the picture
    (a camera's noise is what an encoder spends its time on: testsrc2 alone is unnaturally
    easy, which makes everything around the encoder look bigger)."""
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate={FPS}:duration={seconds}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
                    "-vf", "noise=alls=12:allf=t" if grain else "null",
                    "-c:v", "libx264", "-preset", "ultrafast",
                    "-crf", "18", "-c:a", "aac", "-shortest", str(path)], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated names, e.g. plain,now")
    parser.add_argument("--picture", choices=("grain", "testsrc2"), default="grain")
    parser.add_argument("--from-log", default="",
                        help="the table of a run cut short, from its progress lines (stderr)")
    parser.add_argument("--note", default="", help="a line for the report's header")
    parser.add_argument("--no-write", action="store_true")
    options = parser.parse_args()
    command = "python bench/ladder_cost.py" + "".join(f" {a}" for a in sys.argv[1:])
    load_before = os.getloadavg()
    if options.from_log:
        return write(options, from_log(Path(options.from_log)), command, load_before)
    with tempfile.TemporaryDirectory(prefix="kaifang-ladder-") as tmp:
        folder = Path(tmp)
        clip = folder / "clip.mp4"
        make_clip(clip, options.seconds, options.picture == "grain")
        source = Source(float(options.seconds), 1280, 720, True)
        out = str(folder / "out")
        configs: dict[str, list[str]] = {"plain": plain_args(str(clip), out, source)}
        configs |= {name: before_args(str(clip), out, source, parts)
                    for name, parts in VARIANTS.items()}
        now = ffmpeg_args(str(clip), out, source)
        configs["now (streaming.ladder)"] = [a for a in now if a not in ("-progress", "pipe:1")]
        if options.only:
            wanted = options.only.split(",")
            configs = {k: v for k, v in configs.items()
                       if any(k.startswith(w) for w in wanted) or k == "plain"}
        runs = {name: Runs() for name in configs}
        names = list(configs)
        for round_index in range(options.rounds):
            shift = round_index % len(names)  # each round starts elsewhere: drift hits all alike
            for name in names[shift:] + names[:shift]:
                wall, cpu = run(configs[name], Path(out))
                runs[name].wall.append(wall)
                runs[name].cpu.append(cpu)
                print(f"round {round_index + 1} {name}: {wall:.1f} s wall, {cpu:.1f} s CPU",
                      file=sys.stderr, flush=True)
    return write(options, runs, command, load_before)


def write(options: argparse.Namespace, runs: dict[str, Runs], command: str,
          load_before: tuple[float, float, float]) -> int:
    text = report(options.seconds, options.picture, runs, command, load_before,
                  os.getloadavg())
    if options.note:
        text = text.replace("\n| run |", f"\n{options.note}\n\n| run |", 1)
    print(text)
    if not options.no_write:
        results = RESULTS.with_name(f"ladder_cost_{options.picture}.md")
        results.write_text(text, encoding="utf-8")
    return 0


def from_log(path: Path) -> dict[str, Runs]:
    """`round N NAME: W s wall, C s CPU` lines: the rounds that finished whole."""
    runs: dict[str, Runs] = {}
    rounds: dict[int, dict[str, tuple[float, float]]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        head, _, rest = line.partition(": ")
        if not head.startswith("round ") or " s wall, " not in rest:
            continue
        number, name = head[6:].split(" ", 1)
        wall, cpu = rest.split(" s wall, ")
        rounds.setdefault(int(number), {})[name] = (float(wall), float(cpu.split(" ")[0]))
    names = rounds[1]
    for measured in rounds.values():
        if set(measured) != set(names):
            continue  # a round cut short
        for name, (wall, cpu) in measured.items():
            runs.setdefault(name, Runs()).wall.append(wall)
            runs[name].cpu.append(cpu)
    return {name: runs[name] for name in names}


def report(seconds: int, picture: str, runs: dict[str, Runs], command: str,
           load_before: tuple[float, float, float],
           load_after: tuple[float, float, float]) -> str:
    plain_wall = statistics.median(runs["plain"].wall)
    plain_cpu = statistics.median(runs["plain"].cpu)
    ffmpeg = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True
                            ).stdout.split("\n")[0]
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    rounds = len(runs["plain"].wall)
    lines = [
        "# The VOD ladder's cost, part by part", "",
        f"One {seconds} s 1280x720 25 fps clip ("
        f"{'testsrc2 with temporal noise' if picture == 'grain' else 'testsrc2 alone'}, "
        "a 440 Hz tone), "
        "720p/480p/360p. Each row is one ffmpeg run directly (no server), alternated "
        f"{rounds} times in a rotating order; medians. `plain` is one ffmpeg with split + "
        "scale, libx264 veryfast at the same bitrates, AAC per rendition, `-g` one segment. "
        "`before` is the argument list before issue 17; each row below it takes out one "
        "thing; `now` is streaming.ladder.ffmpeg_args in this tree.", "",
        f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- machine: nproc {os.cpu_count()}, Python {platform.python_version()}, {ffmpeg}; "
        "shared with three other helpers' ffmpeg runs and tests (load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after): wall times are noisy, "
        "CPU times less so",
        f"- code: {commit}", f"- command: `{command}`", "",
        "| run | wall (each round) | median wall | ratio to plain | median CPU | CPU ratio |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for name, measured in runs.items():
        wall, cpu = statistics.median(measured.wall), statistics.median(measured.cpu)
        lines.append(f"| {name} | {', '.join(f'{t:.1f}' for t in measured.wall)} | "
                     f"{wall:.1f} s | {wall / plain_wall:.2f} | {cpu:.1f} s | "
                     f"{cpu / plain_cpu:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
