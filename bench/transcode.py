"""The recording pipeline end to end against plain ffmpeg, and the service's answers meanwhile.

It makes a --seconds (60) 720p test clip (testsrc2 + sine), starts the real server
(`kaifang serve`, whose embedded worker runs the transcoder) in a fresh data dir, and in the same
run:

1. plain ffmpeg: the same argument list the pipeline uses (streaming.ladder.ffmpeg_args: the
   720p/480p/360p ladder, poster and seek-preview sheets), run directly: the baseline;
   and a plain one-pass `veryfast` 720/480/360 ladder as one would first write it (one ffmpeg,
   split + scale, AAC per rendition, no poster or sheets: bench/ladder_cost.py's `plain`), the
   second baseline, which shows what the argument list itself costs (issue 17 item 7);
2. the pipeline: upload through the API (POST /api/events/{id}/recording), the job claimed by
   the worker, ffmpeg at its lower priority, the folder published; timed from the upload's
   first byte to the job's `succeeded`; checked with ffprobe (the master playlist plays to the
   clip's duration);
3. while the pipeline transcodes, GET /healthz and GET /events/{id} (a session page) every
   50 ms, one at a time; the same probes on the idle server give the baseline.

It prints a markdown report (writes bench/results/transcode.md unless --no-write) and exits 2
when a target is missed: pipeline / plain ffmpeg <= 1.10, the pipeline at >= 1.5x real time,
both pages p99 < 100 ms during the transcode.

    .venv/bin/python bench/transcode.py
    .venv/bin/python bench/transcode.py --seconds 20 --no-write
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from harness import (
    BIN,
    HOST,
    free_port,
    server_env,
    start_server,
    stop_server,
    wait_ready,
)
from ladder_cost import plain_args

from streaming.ladder import Source, ffmpeg_args

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "transcode.md"
ADMIN, PASSWORD = "bench-admin", "bench-password-42"
TARGET_RATIO, TARGET_SPEED, TARGET_P99_S = 1.10, 1.5, 0.100
PROBE_EVERY_S = 0.05


@dataclass
class Probes:
    healthz: list[float] = field(default_factory=list)
    page: list[float] = field(default_factory=list)

    @staticmethod
    def percentile(values: list[float], p: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def make_clip(path: Path, seconds: int) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=25:duration={seconds}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
                    "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", "-c:a", "aac",
                    "-shortest", str(path)], check=True)


def duration_of(path: Path) -> float:
    found = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of",
                            "json", str(path)], capture_output=True, check=True)
    return float(json.loads(found.stdout)["format"]["duration"])


def plain_ffmpeg(clip: Path, out: Path, seconds: float, ladder_only: bool = False,
                 cpu: list[float] | None = None) -> float:
    """Seconds for plain ffmpeg with the pipeline's argument list, or (`ladder_only`) with a
    plain veryfast ladder; its CPU seconds (user + system) go to `cpu`."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    source = Source(seconds, 1280, 720, True)
    args = plain_args(str(clip), str(out), source) if ladder_only else \
        ffmpeg_args(str(clip), str(out), source)
    started = time.perf_counter()
    process = subprocess.Popen(["ffmpeg", *args], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({process.returncode})")
    if cpu is not None:
        cpu.append(usage.ru_utime + usage.ru_stime)
    return time.perf_counter() - started


def server_tree_cpu(group: int) -> float:
    """CPU seconds of the server's process group, with its children that ended (their time is
    in their parent's cutime/cstime once reaped): the pipeline's Python and its ffmpeg."""
    tick = os.sysconf("SC_CLK_TCK")
    used = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == group:
                used += sum(int(value) for value in fields[11:15]) / tick
    return used


async def probe_pages(base: str, event_id: int, probes: Probes, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=10, trust_env=False) as client:
        while not stop.is_set():
            for path, into in (("/healthz", probes.healthz), (f"/events/{event_id}", probes.page)):
                started = time.perf_counter()
                answer = await client.get(path)
                assert answer.status_code == 200, (path, answer.status_code)
                into.append(time.perf_counter() - started)
            await asyncio.sleep(PROBE_EVERY_S)


async def _signed_in(base: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base, timeout=600, trust_env=False)
    signed = await client.post("/api/session", json={"username": ADMIN, "password": PASSWORD})
    client.headers["X-CSRF-Token"] = signed.json()["csrf_token"]
    return client


async def new_broadcast(client: httpx.AsyncClient) -> int:
    now = datetime.now(UTC)
    body = {"kind": "broadcast", "unit_id": (await client.get("/api/units")).json()[0]["id"],
            "title": "转码基准：政民互动直播间", "summary": "基准测试用的录播节目。",
            "starts_at": (now + timedelta(days=1)).isoformat(),
            "ends_at": (now + timedelta(days=1, hours=1)).isoformat(), "mode": "online",
            "venue": "", "address": "", "capacity": 0,
            "registration_opens_at": now.isoformat(),
            "registration_closes_at": (now + timedelta(hours=20)).isoformat(),
            "moderation": "pre", "premiere_at": (now + timedelta(days=1)).isoformat()}
    event_id = int((await client.post("/api/events", json=body)).json()["id"])
    for status in ("pending_review", "published"):
        await client.post(f"/api/events/{event_id}/status", json={"status": status})
    return event_id


async def through_pipeline(client: httpx.AsyncClient, event_id: int, clip: Path
                           ) -> tuple[float, float]:
    """Upload → job → published: (seconds in all, seconds until the upload was accepted)."""
    started = time.perf_counter()
    with clip.open("rb") as handle:
        answer = await client.post(f"/api/events/{event_id}/recording",
                                   files={"file": ("clip.mp4", handle, "video/mp4")})
    assert answer.status_code == 202, answer.text
    uploaded = time.perf_counter() - started
    job_id = answer.json()["job_id"]
    while True:
        job = (await client.get(f"/api/jobs/{job_id}")).json()
        if job["state"] in ("succeeded", "failed"):
            break
        await asyncio.sleep(0.25)
    assert job["state"] == "succeeded", job["error"]
    return time.perf_counter() - started, uploaded


async def probed(base: str, clip: Path) -> tuple[Probes, Probes]:
    """The pages' answers on the idle server, then all through one more transcode."""
    client = await _signed_in(base)
    try:
        event_id = await new_broadcast(client)
        idle, during = Probes(), Probes()
        stop = asyncio.Event()
        prober = asyncio.create_task(probe_pages(base, event_id, idle, stop))
        await asyncio.sleep(3)
        stop.set()
        await prober
        stop = asyncio.Event()
        prober = asyncio.create_task(probe_pages(base, event_id, during, stop))
        await through_pipeline(client, event_id, clip)
        stop.set()
        await prober
        return idle, during
    finally:
        await client.aclose()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def report(seconds: int, plain: list[float], ladder: list[float], pipeline: list[float],
           upload_s: float, idle: Probes, during: Probes, played_s: float, command: str,
           cpu: dict[str, list[float]]) -> tuple[str, bool]:
    plain_s, pipeline_s, ladder_s = min(plain), min(pipeline), min(ladder)
    ratio = pipeline_s / plain_s
    speed_plain, speed_pipeline = seconds / plain_s, seconds / pipeline_s
    p99 = {name: Probes.percentile(getattr(during, name), 99) for name in ("healthz", "page")}
    ok = ratio <= TARGET_RATIO and speed_pipeline >= TARGET_SPEED and \
        all(value < TARGET_P99_S for value in p99.values())
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    ffmpeg = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True
                            ).stdout.split("\n")[0]
    rounds = len(plain)
    lines = [
        "# Transcode", "",
        f"A {seconds} s 1280x720 test clip (testsrc2 + sine, H.264 + AAC) through the whole "
        "pipeline (upload API → job claimed by the embedded worker → one ffmpeg at nice 10 → "
        "published HLS: 720p/480p/360p, poster, seek-preview sheets), against the same ffmpeg "
        "argument list run directly, and against a plain one-pass `veryfast` 720/480/360 ladder "
        "(one ffmpeg, split + scale, AAC per rendition, no poster or sheets), alternated "
        f"{rounds} times in the same run (the best of each counts). Then one more transcode "
        "while GET /healthz and a session page are asked one at a time every "
        f"{PROBE_EVERY_S * 1000:.0f} ms. Targets: pipeline / "
        f"plain <= {TARGET_RATIO:.2f}, the pipeline at >= {TARGET_SPEED}x real time, both pages "
        f"p99 < {TARGET_P99_S * 1000:.0f} ms while it transcodes.", "",
        f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- machine: nproc {os.cpu_count()}, Python {platform.python_version()}, {ffmpeg}; "
        f"load average {os.getloadavg()[0]:.1f} at the end (the machine is shared)",
        f"- code: {commit}", f"- command: `{command}`", "",
        "| run | wall time (each round) | best | × real time | ratio to plain ffmpeg | "
        "ratio to a plain veryfast ladder |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
        f"| plain veryfast ladder (second baseline) | {', '.join(f'{t:.1f} s' for t in ladder)} "
        f"| {ladder_s:.1f} s | {seconds / ladder_s:.2f}× | {ladder_s / plain_s:.3f} | 1.00 |",
        f"| plain ffmpeg, the pipeline's arguments (baseline) | "
        f"{', '.join(f'{t:.1f} s' for t in plain)} | "
        f"{plain_s:.1f} s | {speed_plain:.2f}× | 1.00 | {plain_s / ladder_s:.3f} |",
        f"| pipeline (upload and probe {upload_s:.1f} s) | "
        f"{', '.join(f'{t:.1f} s' for t in pipeline)} | {pipeline_s:.1f} s | "
        f"{speed_pipeline:.2f}× | {ratio:.3f} | {pipeline_s / ladder_s:.3f} |", "",
        "CPU seconds (user + system; the pipeline's: the server's process group with its "
        "ffmpeg, so its Python too), each round, and the median's ratio to the plain ladder's: "
        "on a shared machine these say more than wall times.", "",
        "| run | CPU (each round) | ratio to a plain veryfast ladder |", "| --- | --- | ---: |",
        *[f"| {name} | {', '.join(f'{c:.1f} s' for c in cpu[key])} | "
          f"{statistics.median(cpu[key]) / statistics.median(cpu['ladder']):.3f} |"
          for key, name in (("ladder", "plain veryfast ladder"),
                            ("plain", "plain ffmpeg, the pipeline's arguments"),
                            ("pipeline", "pipeline"))], "",
        f"The published master playlist plays {played_s:.2f} s (ffprobe).", "",
        "| page | idle p50 | idle p99 | transcoding p50 | transcoding p99 | transcoding max | "
        "requests while transcoding |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, label in (("healthz", "GET /healthz"), ("page", "GET /events/{id}")):
        values, base = getattr(during, name), getattr(idle, name)
        lines.append(f"| {label} | {ms(Probes.percentile(base, 50))} | "
                     f"{ms(Probes.percentile(base, 99))} | {ms(Probes.percentile(values, 50))} | "
                     f"{ms(Probes.percentile(values, 99))} | {ms(max(values))} | {len(values)} |")
    lines += ["", f"Targets: {'met' if ok else 'MISSED'}."]
    return "\n".join(lines) + "\n", ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    command = "python bench/transcode.py" + "".join(f" {a}" for a in sys.argv[1:])
    with tempfile.TemporaryDirectory(prefix="kaifang-transcode-") as tmp:
        folder = Path(tmp)
        clip = folder / "clip.mp4"
        make_clip(clip, args.seconds)
        data_dir = folder / "var"
        env = server_env(ROOT, data_dir, None, PASSWORD)
        subprocess.run([str(BIN / "kaifang"), "create-user", ADMIN, "--role", "admin"],
                       env=env, cwd=ROOT, check=True, capture_output=True)
        port = free_port()
        log = folder / "server.log"
        process = start_server(ROOT, env, port, 1, log)
        plain: list[float] = []
        ladder: list[float] = []
        runs: list[tuple[float, float]] = []
        cpu: dict[str, list[float]] = {"ladder": [], "plain": [], "pipeline": []}
        try:
            base = f"http://{HOST}:{port}"
            asyncio.run(wait_ready(base, process, log))

            async def rounds() -> None:
                client = await _signed_in(base)
                try:
                    for _ in range(args.rounds):  # alternated, so drift hits all alike
                        ladder.append(plain_ffmpeg(clip, folder / "ladder", float(args.seconds),
                                                   ladder_only=True, cpu=cpu["ladder"]))
                        plain.append(plain_ffmpeg(clip, folder / "plain", float(args.seconds),
                                                  cpu=cpu["plain"]))
                        event_id = await new_broadcast(client)
                        before = server_tree_cpu(process.pid)
                        runs.append(await through_pipeline(client, event_id, clip))
                        await asyncio.sleep(1)  # the worker reaps its ffmpeg
                        cpu["pipeline"].append(server_tree_cpu(process.pid) - before)
                finally:
                    await client.aclose()

            asyncio.run(rounds())
            idle, during = asyncio.run(probed(base, clip))
        finally:
            stop_server(process)
        masters = sorted((data_dir / "media" / "hls").glob("*/master.m3u8"))
        played = duration_of(masters[0])
    best = min(runs)
    text, ok = report(args.seconds, plain, ladder, [run for run, _ in runs], best[1], idle,
                      during, played, command, cpu)
    print(text)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text, encoding="utf-8")
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
