"""The live ladder's x264 preset on this machine: one 720p30 publisher's stream (testsrc2 and a
sine as FLV, made once) through streaming.live_ladder's argument list at each preset, as fast
as ffmpeg goes; the CPU seconds it takes per second of stream is its share of the two cores at
real time. Prints a table and the ratio against `superfast`.

    .venv/bin/python bench/live_presets.py [seconds] [rounds]
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streaming import live_ladder  # noqa: E402

PRESETS = ("superfast", "veryfast")


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def main() -> None:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "source.flv"
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                        "-i", f"testsrc2=size=1280x720:rate=30:duration={seconds}", "-f", "lavfi",
                        "-i", f"sine=frequency=440:duration={seconds}", "-c:v", "libx264",
                        "-preset", "ultrafast", "-g", "60", "-c:a", "aac", "-f", "flv",
                        str(source)], check=True)
        probe = live_ladder.LiveSource(1280, 720, True)
        layout = live_ladder.layout_for(probe)
        results: dict[str, list[tuple[float, float]]] = {preset: [] for preset in PRESETS}
        for _ in range(rounds):  # alternated: a busy moment of the machine hits both
            for preset in PRESETS:
                out = Path(folder) / preset
                subprocess.run(["rm", "-rf", str(out)], check=True)
                out.mkdir()
                live_ladder.PRESET = preset
                args = live_ladder.ffmpeg_args("flv", str(out), layout, probe, 1, 1)
                started, cpu = time.monotonic(), _cpu()
                with source.open("rb") as stream:
                    subprocess.run(["ffmpeg", *args], stdin=stream, check=True)
                results[preset].append((time.monotonic() - started, _cpu() - cpu))
    print(f"720p30 → {'/'.join(r.name for r in layout.renditions)} + audio, {seconds} s, "
          f"{rounds} rounds, {cores} cores")
    print("| preset | wall s (best) | CPU s (mean) | share of the cores at real time |")
    print("| --- | --- | --- | --- |")
    means = {}
    for preset, runs in results.items():
        means[preset] = sum(cpu for _, cpu in runs) / len(runs)
        share = means[preset] / seconds / cores * 100
        print(f"| {preset} | {min(w for w, _ in runs):.1f} | {means[preset]:.1f} | {share:.0f} % |")
    print(f"veryfast / superfast CPU: {means['veryfast'] / means['superfast']:.2f}×")


if __name__ == "__main__":
    main()
