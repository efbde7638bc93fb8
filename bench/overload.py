"""More requests than one process can serve: how long citizens wait, and where the queue
forms. With the wait for a request thread bounded (KAIFANG_THREAD_WAIT_S, server/threads.py)
and, as the baseline in the same run, without a bound worth the name (600 s).

One `kaifang serve` process on a fresh SQLite data dir. First its capacity for the portal's
front page (GET /, the session list every citizen opens; it renders in a request thread),
closed-loop with --concurrency requests at a time. Then, for each setting, an open-loop load
of --overload × that capacity for --seconds: requests sent on a fixed schedule whatever the
answers (as citizens do at 9:00), each on a connection of its own, while /metrics is read
every 2 s (request threads busy and waiting). It prints a markdown table and writes it to
bench/results/overload.md. See bench/README.md.

    .venv/bin/python bench/overload.py
    .venv/bin/python bench/overload.py --seconds 5 --no-write
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from harness import (
    BIN,
    HOST,
    describe_code,
    describe_machine,
    exchange,
    free_port,
    ms,
    server_env,
    start_server,
    stop_server,
    wait_ready,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "overload.md"
LOGS = Path(tempfile.gettempdir()) / "kaifang-bench-logs"
PATH = "/"
UNBOUNDED_S = 600.0


@dataclass
class Threads:
    """What /metrics said during a run: the most request threads busy and waiting, the
    refusals, and the slowest /metrics answer (it waits in the same queue as the pages)."""

    busy: float = 0.0
    waiting: float = 0.0
    refused: float = 0.0
    slowest_s: float = 0.0


@dataclass
class Run:
    wait_s: float
    rate: float
    sent: int
    answers: Counter[str]
    latencies: list[float]  # of every answer, in seconds
    ok_latencies: list[float]  # of the 200s
    drained_s: float  # from the last request sent to the last answer
    threads: Threads | None = None

    @staticmethod
    def percentile(values: list[float], p: float) -> float:
        if not values:
            return 0.0
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


async def _one(port: int) -> tuple[str, float]:
    started = time.perf_counter()
    try:
        status, raw = await asyncio.wait_for(exchange(port, "GET", PATH, None), 120)
        outcome = str(status) + (" busy" if status == 503 and b'"busy"' in raw else "")
    except (OSError, ValueError, IndexError, TimeoutError) as exc:
        outcome = type(exc).__name__
    return outcome, time.perf_counter() - started


async def capacity(port: int, concurrency: int, seconds: float) -> float:
    """Answers a second with `concurrency` requests always in flight."""
    outcomes: Counter[str] = Counter()
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        while time.monotonic() < deadline:
            outcome, _ = await _one(port)
            outcomes[outcome] += 1

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    if set(outcomes) != {"200"}:
        raise RuntimeError(f"GET {PATH} did not answer 200 alone: {dict(outcomes)}")
    return outcomes["200"] / (time.monotonic() - started)


async def open_loop(port: int, rate: float, seconds: float, wait_s: float) -> Run:
    count = int(rate * seconds)
    start = time.perf_counter()
    tasks = []
    for index in range(count):
        due = start + index / rate
        pause = due - time.perf_counter()
        if pause > 0:
            await asyncio.sleep(pause)
        tasks.append(asyncio.create_task(_one(port)))
    last_sent = time.perf_counter()
    results = await asyncio.gather(*tasks)
    drained = time.perf_counter() - last_sent
    answers = Counter(outcome for outcome, _ in results)
    return Run(wait_s, rate, count, answers, [took for _, took in results],
               [took for outcome, took in results if outcome == "200"], drained)


async def watch_threads(port: int, stop: asyncio.Event) -> Threads:
    seen = Threads()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 2)
        started = time.perf_counter()
        try:
            _status, raw = await asyncio.wait_for(exchange(port, "GET", "/metrics", None), 60)
        except (OSError, ValueError, IndexError, TimeoutError):
            continue
        seen.slowest_s = max(seen.slowest_s, time.perf_counter() - started)
        for line in raw.decode().splitlines():
            name, _, value = line.partition(" ")
            if name == "kaifang_request_threads_busy":
                seen.busy = max(seen.busy, float(value))
            elif name == "kaifang_request_threads_waiting":
                seen.waiting = max(seen.waiting, float(value))
            elif name == "kaifang_thread_wait_refusals_total":
                seen.refused = max(seen.refused, float(value))
    return seen


async def measure(source: Path, args: argparse.Namespace) -> tuple[float, list[Run]]:
    runs = []
    measured_capacity = 0.0
    for wait_s in (UNBOUNDED_S, args.wait_s):
        with tempfile.TemporaryDirectory(prefix="kaifang-overload-") as folder:
            env = server_env(source, Path(folder), None, "bench-password-42")
            env["KAIFANG_THREAD_WAIT_S"] = str(wait_s)
            subprocess.run([str(BIN / "kaifang"), "migrate"], env=env, check=True,
                           capture_output=True)
            port = free_port()
            log = LOGS / f"overload-{wait_s:g}.log"
            server = start_server(source, env, port, 1, log)
            try:
                await wait_ready(f"http://{HOST}:{port}", server, log)
                if not measured_capacity:
                    await capacity(port, args.concurrency, 2)  # warm
                    measured_capacity = await capacity(port, args.concurrency, args.probe_s)
                    print(f"capacity: {measured_capacity:.0f} answers/s", flush=True)
                stop = asyncio.Event()
                watching = asyncio.create_task(watch_threads(port, stop))
                run = await open_loop(port, args.overload * measured_capacity, args.seconds,
                                      wait_s)
                stop.set()
                run.threads = await watching
                print(f"wait {wait_s:g} s: {dict(run.answers)}, "
                      f"p99 {ms(Run.percentile(run.latencies, 99))}", flush=True)
                runs.append(run)
            finally:
                stop_server(server)
    return measured_capacity, runs


def table(runs: list[Run]) -> str:
    lines = ["| KAIFANG_THREAD_WAIT_S | sent | answers | answered p50 | p99 | max | 200s' p99 "
             "| last answer after the last request | threads busy (of 32), most | threads "
             "waited for, most | refused for want of a thread | slowest /metrics |",
             "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
             "| ---: |"]
    for run in runs:
        threads = run.threads or Threads()
        name = f"{run.wait_s:g} s" + (" (no bound: the baseline)" if run.wait_s == UNBOUNDED_S
                                       else "")
        lines.append(
            f"| {name} | {run.sent} | {dict(sorted(run.answers.items()))} "
            f"| {ms(Run.percentile(run.latencies, 50))} | {ms(Run.percentile(run.latencies, 99))} "
            f"| {ms(max(run.latencies))} | {ms(Run.percentile(run.ok_latencies, 99))} "
            f"| {run.drained_s:.1f} s | {threads.busy:.0f} | {threads.waiting:.0f} "
            f"| {threads.refused:.0f} | {threads.slowest_s:.1f} s |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="the overload's length")
    parser.add_argument("--overload", type=float, default=2.0,
                        help="the open-loop rate, in multiples of the measured capacity")
    parser.add_argument("--wait-s", type=float, default=3.0,
                        help="the bounded run's KAIFANG_THREAD_WAIT_S (10 s in service; "
                             "shorter here so that a short run passes it)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--probe-s", type=float, default=5.0)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # thousands in flight
    source = ROOT
    measured, runs = asyncio.run(measure(source, args))
    bounded = runs[-1]
    text = "\n".join([
        "# More requests than one process can serve", "",
        f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- machine: {describe_machine(None)}; 2 cores shared by the server and the client",
        f"- code: {describe_code(source)}",
        f"- command: `{' '.join(['python', 'bench/overload.py', *(argv or sys.argv[1:])])}`",
        f"- one `kaifang serve` process (SQLite, 32 request threads); `GET {PATH}` (the "
        f"portal's session list, rendered in a request thread); its capacity closed-loop with "
        f"{args.concurrency} in flight: **{measured:.0f} answers/s**; then "
        f"{args.overload:g} × that, open-loop, for {args.seconds:g} s, a connection per "
        "request", "",
        table(runs), "",
        f"- The bound: {bounded.answers.get('503 busy', 0)} requests answered 503 busy; the "
        f"slowest answer {ms(max(bounded.latencies))} against {ms(max(runs[0].latencies))} "
        "without it.",
        f"- Where the queue is: with thousands of requests in flight, at most "
        f"{max((r.threads or Threads()).waiting for r in runs):.0f} waited for a request thread "
        "at any moment. A process short of CPU makes its requests wait before the app sees "
        "them (the kernel's accept queue, the event loop's), where no deadline of the app's "
        "can count them: the bound is for threads held by slow work (a lock, a slow "
        "database), and past a process's CPU the answer is another process (docs/deploy.md, "
        "Capacity); nginx's proxy_read_timeout (60 s) is what bounds a citizen's wait there.",
        ""])
    print(text)
    if not args.no_write:
        RESULTS.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
