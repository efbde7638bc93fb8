"""What bench/live_fanout.py measures of one run (Run) and the report it prints and writes:
the table, the targets and the verdicts."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from harness import describe_code, describe_machine

TARGET_VIEWERS, TARGET_P99_S, TARGET_RATIO = 3000, 1.0, 0.5
BUSY = "approvals answered 503 busy, then retried"

@dataclass
class Run:
    server: str
    viewers: int
    rate: float
    messages: int
    latencies: list[float] = field(default_factory=list)
    problems: Counter[str] = field(default_factory=Counter)
    delivered_per_s: float = 0.0
    rss_per_connection_kib: float = 0.0
    server_cpu_us: float = 0.0  # per delivered frame
    generator_cpu_us: float = 0.0
    setup: dict[str, float] = field(default_factory=dict)
    connect_failures: Counter[str] = field(default_factory=Counter)
    load_average: str = ""

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]

    @property
    def missing(self) -> int:
        return self.problems.get("missing", 0)

    @property
    def wrong(self) -> list[str]:
        """Everything that must not happen: a frame missing, twice or out of order, a viewer
        cut off or not connected."""
        found = [f"{what}: {count}" for what, count in self.problems.items()
                 if count and what != BUSY]
        found += [f"not connected ({why}): {count}"
                  for why, count in self.connect_failures.items() if why != "connected"]
        return found



def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def results_table(runs: list[Run]) -> str:
    baseline = {r.viewers: r for r in runs if r.server == "baseline"}
    lines = [
        "| server | viewers | approvals/s | messages | p50 | p99 | max | missing "
        "| delivered/s | ÷ baseline | RSS per connection | server CPU per frame "
        "| generator CPU per frame | connect + settle | load average after |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: | --- |",
    ]
    for run in runs:
        base = baseline.get(run.viewers)
        ratio = f"{run.delivered_per_s / base.delivered_per_s:.2f}" \
            if base is not None and base.delivered_per_s else "–"
        lines.append(
            f"| {run.server} | {run.viewers:,} | {run.rate:g} | {run.messages} "
            f"| {ms(run.percentile(50))} | {ms(run.percentile(99))} "
            f"| {ms(max(run.latencies, default=float('nan')))} | {run.missing} "
            f"| {run.delivered_per_s:,.0f} | {ratio} | {run.rss_per_connection_kib:.0f} KiB "
            f"| {run.server_cpu_us:.0f} µs | {run.generator_cpu_us:.0f} µs "
            f"| {run.setup['connect_s']:.1f} s + {run.setup['settle_s']:.1f} s "
            f"| {run.load_average} |")
    return "\n".join(lines)


def verdicts(runs: list[Run]) -> list[tuple[str, bool]]:
    """The issue's targets, at TARGET_VIEWERS viewers (absent from a run with fewer)."""
    kaifang = next((r for r in runs if r.server == "kaifang" and r.viewers == TARGET_VIEWERS),
                   None)
    baseline = next((r for r in runs if r.server == "baseline" and r.viewers == TARGET_VIEWERS),
                    None)
    if kaifang is None:
        return []
    found = [(f"p99 < {TARGET_P99_S:.0f} s at {TARGET_VIEWERS:,} viewers: "
              f"{ms(kaifang.percentile(99))}", kaifang.percentile(99) < TARGET_P99_S),
             (f"no message missing: {kaifang.missing} missing", not kaifang.wrong)]
    if baseline is not None and baseline.delivered_per_s:
        ratio = kaifang.delivered_per_s / baseline.delivered_per_s
        found.append((f"delivered/s >= {TARGET_RATIO} × the baseline's: {ratio:.2f}",
                      ratio >= TARGET_RATIO))
    return found


def report(runs: list[Run], args: argparse.Namespace, load_before: str) -> str:
    stamp = datetime.now(UTC).astimezone().isoformat(timespec="seconds")
    offer = "offer permessage-deflate, as browsers do (both servers decline it)" \
        if args.compression else "do not offer permessage-deflate"
    lines = [
        "# Live room fan-out",
        "",
        f"N websocket viewers in a live, pre-moderated room on one server process; a host "
        f"approves {args.messages} held comments at {args.rate:g} a second (after "
        f"{args.warmup} for warm-up), open loop. Latency runs from the moment the host's "
        "approve request (`POST /api/comments/{id}/moderation`) is sent to the moment a viewer "
        "has the `comment` frame, over every viewer and message. The baseline is "
        "`bench/broadcast_baseline.py` (the websockets library alone, `websockets.broadcast` of "
        "what the host sends on its socket) with the same viewers, rate and messages. "
        f"The viewers ({args.generators} load-generator processes, the websockets library's "
        f"Sans-I/O protocol on uvloop) share the machine's cores with the server and {offer}. "
        "delivered/s = frames received ÷ (last receipt − first approval); RSS per connection = "
        "(the server's VmRSS with every viewer connected − before) ÷ N; CPU per frame = the "
        "process's CPU during the measured approvals ÷ frames delivered. Connect + settle "
        "(opening the sockets, then until no frame came for 1 s) is setup, not counted. "
        f"Targets, at {TARGET_VIEWERS:,} viewers: p99 < {TARGET_P99_S:.0f} s, no message "
        f"missing, delivered/s >= {TARGET_RATIO} × the baseline's.",
        "",
        f"- date: {stamp}",
        f"- machine: {describe_machine(None)}",
        f"- code: {describe_code(args.source)}",
        f"- command: `{' '.join(['python bench/live_fanout.py', *sys.argv[1:]])}`",
        f"- load average before the run: {load_before}",
        "",
        results_table(runs),
        "",
    ]
    found = verdicts(runs)
    if found:
        lines += ["Targets: " + "; ".join(f"{what} ({'met' if ok else 'MISSED'})"
                                          for what, ok in found) + ".", ""]
    lines += [f"- WRONG ({run.server}, {run.viewers:,} viewers): {'; '.join(run.wrong)}"
              for run in runs if run.wrong]
    lines += [f"- {run.server}, {run.viewers:,} viewers: {run.problems[BUSY]} {BUSY}"
              for run in runs if run.problems.get(BUSY)]
    return "\n".join(lines).rstrip() + "\n"
