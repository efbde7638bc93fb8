"""bench/scaleout.py's results and their report: what each part measured, and the tables
written to bench/results/scaleout.md."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime

from harness import Burst, describe_code, describe_machine, ms

TARGET_P99_S = 1.0
LAST_PAGE = 200  # streaming.stream.LAST_PAGE: what a new page opens with
OUT_OF_ORDER = "out of order"  # fanout_viewers.Crowd.collect's name for it


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of `values`; NaN for none."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


@dataclass
class Step:
    rate: float
    messages: int
    latencies: list[float]
    problems: dict[str, int]
    delivered: int
    delivered_per_s: float
    server_cpu_s: dict[str, float]
    generator_cpu_s: float

    def percentile(self, p: float) -> float:
        return percentile(self.latencies, p) if self.latencies else float("inf")

    @property
    def wrong(self) -> dict[str, int]:
        """What must not happen: a frame missing or twice, a viewer cut off. A frame out of
        order is not lost (the page re-reads from its position) and is shown apart."""
        return {what: n for what, n in self.problems.items() if n and what != OUT_OF_ORDER}

    @property
    def ok(self) -> bool:
        return self.percentile(99) < TARGET_P99_S and not self.wrong

    def cpu_us(self, name: str | None = None) -> float:
        used = self.server_cpu_s[name] if name else sum(self.server_cpu_s.values())
        return 1e6 * used / max(1, self.delivered)


@dataclass
class Saturation:
    name: str
    where: str
    viewers: int
    steps: list[Step] = field(default_factory=list)
    connect_failures: dict[str, int] = field(default_factory=dict)

    @property
    def best(self) -> Step | None:
        passed = [s for s in self.steps if s.ok]
        return max(passed, key=lambda s: s.rate) if passed else None

    @property
    def first_failure(self) -> Step | None:
        best = self.best
        failed = [s for s in self.steps if not s.ok and (best is None or s.rate > best.rate)]
        return min(failed, key=lambda s: s.rate) if failed else None


@dataclass
class BurstResult:
    citizens: int
    seats: int
    registrations: Burst
    healthz: Burst
    confirmed_rows: int
    waitlisted_rows: int
    cpu_s: dict[str, float]
    warm: bool = False  # each citizen's connection open before the burst (the page loaded)

    @property
    def rows_ok(self) -> bool:
        """Every citizen answered 201, exactly the seats confirmed, the rest on the list."""
        return (self.confirmed_rows == self.seats
                and self.confirmed_rows + self.waitlisted_rows == self.citizens
                and self.registrations.answers.get("201", 0) == self.citizens)

    @property
    def ok(self) -> bool:
        return self.rows_ok and self.registrations.percentile(99) < TARGET_P99_S

    @property
    def connections(self) -> str:
        return "open before (page loaded)" if self.warm else "opened in the burst (TLS handshake)"

    @property
    def verdict(self) -> str:
        if self.ok:
            return "0 over capacity, p99 < 1 s"
        return "0 over capacity; p99 MISSED" if self.rows_ok else "MISSED"


@dataclass
class JoinResult:
    joiners: int
    messages: int
    window_s: float
    join_http: list[float] = field(default_factory=list)
    hello: list[float] = field(default_factory=list)
    page: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    healthz: list[float] = field(default_factory=list)
    healthz_failures: int = 0
    cpu_per_s: dict[str, list[float]] = field(default_factory=dict)
    fill_s: float = 0.0

    pct = staticmethod(percentile)


# The report ---------------------------------------------------------------------------------

def fanout_tables(runs: list[Saturation], args: argparse.Namespace) -> list[str]:
    baseline = next((r for r in runs if r.name.startswith("baseline")), None)
    base_best = baseline.best if baseline else None
    lines = [
        "| server | where | viewers | saturation: approvals/s with p99 < 1 s | first rate "
        "that missed | frames/s delivered there | p50 / p99 there | server CPU per frame "
        "| ÷ baseline (approvals/s) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in runs:
        best, failed = run.best, run.first_failure
        ratio = f"{best.rate / base_best.rate:.2f}" if best and base_best else "–"
        cpu = ("; ".join(f"{name} {best.cpu_us(name):.1f} µs" for name in best.server_cpu_s)
               + (f" (sum {best.cpu_us():.1f} µs)" if len(best.server_cpu_s) > 1 else "")
               ) if best else "–"
        lines.append(
            f"| {run.name} | {run.where} | {run.viewers:,} "
            f"| {f'{best.rate:.1f}' if best else 'none'} "
            f"| {f'{failed.rate:.1f}' if failed else '–'} "
            f"| {f'{best.delivered_per_s:,.0f}' if best else '–'} "
            f"| {f'{ms(best.percentile(50))} / {ms(best.percentile(99))}' if best else '–'} "
            f"| {cpu} | {ratio} |")
    lines += ["", "Every step (the search: doubling from the start rate, then bisecting):", "",
              "| server | approvals/s | messages | p50 | p99 | delivered/s | server CPU per "
              "frame | generators' CPU per frame | viewers who saw a frame out of order "
              "| verdict |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for run in runs:
        for step in run.steps:
            lines.append(
                f"| {run.name} | {step.rate:.1f} | {step.messages} "
                f"| {ms(step.percentile(50))} | {ms(step.percentile(99))} "
                f"| {step.delivered_per_s:,.0f} | {step.cpu_us():.1f} µs "
                f"| {1e6 * step.generator_cpu_s / max(1, step.delivered):.1f} µs "
                f"| {step.problems.get(OUT_OF_ORDER, 0)} "
                f"| {'p99 < 1 s' if step.ok else 'MISSED ' + json.dumps(step.wrong)} |")
    for run in runs:
        if run.connect_failures:
            lines.append(f"\n- {run.name}: not connected: {run.connect_failures}")
    return lines


def burst_table(bursts: list[BurstResult]) -> list[str]:
    lines = [
        "| burst through nginx | citizens' connections | requests | answers | req/s | p50 | p99 "
        "| confirmed rows | waitlisted rows | verdict |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for b in bursts:
        regs, base = b.registrations, b.healthz
        lines += [
            f"| GET /healthz (baseline) | {b.connections} | {b.citizens} | {dict(base.answers)} "
            f"| {base.rate:.0f} | {ms(base.percentile(50))} | {ms(base.percentile(99))} "
            "| | | |",
            f"| POST registrations, {b.seats} seats | {b.connections} | {b.citizens} "
            f"| {dict(regs.answers)} | {regs.rate:.0f} | {ms(regs.percentile(50))} "
            f"| {ms(regs.percentile(99))} | {b.confirmed_rows} | {b.waitlisted_rows} "
            f"| {b.verdict} |",
        ]
    lines.append("")
    for b in bursts:
        regs, base = b.registrations, b.healthz
        cpu = ", ".join(f"{name} {1000 * s / b.citizens:.2f} ms" for name, s in b.cpu_s.items())
        lines.append(
            f"- Connections {b.connections}: registrations/s ÷ healthz req/s "
            f"{regs.rate / base.rate:.2f}; CPU per registration during the burst: {cpu}; the "
            f"bench's own (HTTP and TLS as a client, on the same cores): "
            f"{1000 * regs.client_cpu_s / b.citizens:.2f} ms.")
    return lines


def join_table(j: JoinResult) -> list[str]:
    lines = [
        "| late joiners | room holds | over | join (POST viewers) p50 / p99 | socket's hello "
        "p50 / p99 | first page (200 comments) p50 / p99 | failed | healthz p50 / p99 / max "
        "(polled every 50 ms) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
        f"| {j.joiners:,} | {j.messages:,} messages | {j.window_s:g} s "
        f"| {ms(j.pct(j.join_http, 50))} / {ms(j.pct(j.join_http, 99))} "
        f"| {ms(j.pct(j.hello, 50))} / {ms(j.pct(j.hello, 99))} "
        f"| {ms(j.pct(j.page, 50))} / {ms(j.pct(j.page, 99))} "
        f"| {sum(j.failures.values())} {j.failures or ''} "
        f"| {ms(j.pct(j.healthz, 50))} / {ms(j.pct(j.healthz, 99))} / "
        f"{ms(max(j.healthz, default=float('nan')))} ({len(j.healthz)} asked, "
        f"{j.healthz_failures} failed) |",
        "",
        "| process | CPU while they joined: mean | max (one second) |",
        "| --- | ---: | ---: |",
    ]
    for name, seconds in j.cpu_per_s.items():
        if seconds:
            lines.append(f"| {name} | {100 * statistics.mean(seconds):.0f} % "
                         f"| {100 * max(seconds):.0f} % |")
    return lines


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def report(args: argparse.Namespace, runs: list[Saturation], b: list[BurstResult],
           j: JoinResult | None, site: str, uptime_before: str) -> str:
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    lines = [
        "# Proof of scale",
        "",
        f"- date: {stamp}",
        f"- machine: {describe_machine(args.pg_url)}; 2 cores shared by everything below",
        f"- code: {describe_code(args.source)}",
        f"- command: `{' '.join(['python bench/scaleout.py', *sys.argv[1:]])}`",
        f"- load before: `{uptime_before}`",
        f"- load after: `{uptime()}`",
        f"- set-up: PostgreSQL ({args.pg_url.rsplit('@', 1)[1]}), Redis ({args.redis_url}), "
        "two `kaifang serve` processes (one uvicorn process each, the embedded worker off), one "
        f"`kaifang worker`, nginx 1 worker process with {site}. Nothing is pinned to a core: "
        "the app processes, the worker, nginx, PostgreSQL, Redis, the load generators and this "
        "script share both cores, as do the other programs running on the machine (load above).",
        "",
    ]
    if runs:
        lines += [
            f"## (a) The live room's fan-out at saturation, {args.viewers:,} viewers",
            "",
            f"{args.viewers:,} websocket viewers (no token: they watch) in a live pre-moderated "
            f"room, opened from {args.generators} load-generator processes "
            "(bench/scaleout_viewers.py: a hand-cut websocket client, about half the CPU per "
            "frame of bench/fanout_viewers.py) "
            "straight to the app processes (not through nginx: the baseline has none either). "
            "A host approves held comments (`POST /api/comments/{id}/moderation`, to app 1) at "
            f"a rate, open loop, for {args.step_s:g} s a step (at least {args.min_messages} "
            "approvals); latency runs from the approval sent to a viewer holding the `comment` "
            "frame, over every viewer and comment. The rate doubles from "
            f"{args.start_rate:g}/s until a step misses p99 < 1 s (or loses a frame), then is "
            f"bisected until the last met and first missed rates are within "
            f"{args.precision:.0%}. Even one app process publishes through Redis (as deployed). "
            "The baseline's host sends the frame on its own socket (no HTTP, no database). "
            "Server CPU per frame = the app processes' CPU during the step (from /proc) ÷ "
            "frames delivered.",
            "",
            *fanout_tables(runs, args),
            "",
        ]
    if b:
        lines += ["## (b) A registration burst across both processes through nginx", "",
                  f"{b[0].citizens} citizens (distinct numbers, each from a loopback address "
                  "of its own, 127.x.y.z: nginx tells the apps the peer's address) "
                  f"register at once for {b[0].seats} seats through nginx (HTTPS, round robin "
                  "over both app processes); the database's rows counted afterwards; the same "
                  "burst at GET /healthz through nginx is the baseline. Twice, on a session "
                  "each: first with each citizen's connection open before the release (the "
                  "session page loaded before registration opens, its connection kept alive: "
                  "how a 9:00 opening comes, and where the target applies), then with each "
                  f"citizen opening a connection in the burst, so that its {b[0].citizens:,} "
                  "TLS handshakes (server and client on the same two cores) are inside it.", "",
                  *burst_table(b), ""]
    if j is not None:
        lines += ["## (c) Late joiners", "",
                  f"A live room holding {j.messages:,} approved comments (written in bulk in "
                  f"{j.fill_s:.1f} s). {j.joiners:,} viewers join over {j.window_s:g} s, evenly "
                  "spread, through nginx: each `POST /api/events/{id}/viewers`, then opens its "
                  "socket (`after=0`: a new page) and waits for `hello` and the room's last page "
                  f"of {LAST_PAGE} comments, then stays. GET /healthz is asked through nginx "
                  "one at a time every 50 ms meanwhile; each process's CPU is read from /proc "
                  "every second (100 % = one core).", "", *join_table(j), ""]
    return "\n".join(lines).rstrip() + "\n"


