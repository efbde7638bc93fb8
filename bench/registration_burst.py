"""A burst of simultaneous registrations against the real server, beside a trivial baseline.

For each configuration (SQLite and PostgreSQL, one or more worker processes) this starts the
server on a free port of 127.0.0.1 with a fresh data dir and database, signs an admin in,
publishes a session of --capacity seats whose registration is open, then releases --requests
registrations at once (distinct mobile numbers and X-Forwarded-For addresses: many citizens
behind the trusted proxy, counted by the registration limits; one task and one connection
each) and, in the same run against the same server, the same burst at GET /healthz. It prints
a markdown table, checks the counts through the API and the database, writes the report to
bench/results/registration_burst.md and exits 1 on a wrong count or an error, 2 when SQLite
misses the targets (>= 300 registrations/s, p99 < 1 s) in any configuration. See
bench/README.md.

    .venv/bin/python bench/registration_burst.py                     # every configuration
    .venv/bin/python bench/registration_burst.py --configs sqlite:1 --no-write
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from harness import (
    BIN,
    HOST,
    REQUEST_TIMEOUT_S,
    Burst,
    burst,
    describe_code,
    describe_machine,
    free_port,
    fresh_pg_database,
    ms,
    server_env,
    start_server,
    stop_server,
    wait_ready,
)
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "registration_burst.md"
# Server logs outlive the run's temporary data dir, to be read after a failure.
LOGS = Path(tempfile.gettempdir()) / "kaifang-bench-logs"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/kaifang_bench"
ADMIN, PASSWORD = "bench-admin", "bench-password-42"
TARGET_RATE, TARGET_P99_S = 300.0, 1.0
BEIJING = timedelta(hours=8)


@dataclass
class Row:
    database: str
    workers: int
    registrations: Burst
    healthz: Burst
    confirmed: int = 0
    waitlisted: int = 0
    errors: int = 0
    load_average: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def meets_targets(self) -> bool:
        regs = self.registrations
        return regs.rate >= TARGET_RATE and regs.percentile(99) < TARGET_P99_S


# Setting up over the API --------------------------------------------------------------------

async def admin_client(base: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base, timeout=REQUEST_TIMEOUT_S, trust_env=False)
    response = await client.post("/api/session", json={"username": ADMIN, "password": PASSWORD})
    response.raise_for_status()
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return client


def iso(moment: datetime) -> str:
    return (moment + BEIJING).replace(tzinfo=None).isoformat(timespec="seconds") + "+08:00"


async def published_session(admin: httpx.AsyncClient, title: str, capacity: int) -> int:
    """A published session a week ahead whose registration opened a minute ago."""
    units = (await admin.get("/api/units")).json()
    unit_id = next(u["id"] for u in units if u["code"] == "education")
    now = datetime.now(UTC)
    starts = now + timedelta(days=7)
    response = await admin.post("/api/events", json={
        "kind": "open_day", "unit_id": unit_id, "title": title, "summary": "并发报名基准测试。",
        "starts_at": iso(starts), "ends_at": iso(starts + timedelta(hours=2)),
        "mode": "in_person", "venue": "区教委一层报告厅", "address": "西城区示例街1号",
        "capacity": capacity,
        "registration_opens_at": iso(now - timedelta(minutes=1)),
        "registration_closes_at": iso(starts - timedelta(days=1)), "moderation": "pre",
        "premiere_at": None})
    if response.status_code != 201:
        raise RuntimeError(f"creating the session failed: {response.text}")
    event_id = int(response.json()["id"])
    for status in ("pending_review", "published"):
        response = await admin.post(f"/api/events/{event_id}/status", json={"status": status})
        if response.status_code != 200:
            raise RuntimeError(f"moving the session to {status} failed: {response.text}")
    return event_id


def registration_body(prefix: str, index: int) -> bytes:
    return json.dumps({"name": f"市民{index:04d}", "phone": f"{prefix}{index:08d}",
                       "question": "", "consent": True}).encode()


def progress(name: str, result: Burst) -> None:
    print(f"  {name}: {result.rate:.0f}/s, p50 {ms(result.percentile(50))}, "
          f"p99 {ms(result.percentile(99))}, {dict(result.answers)}", file=sys.stderr,
          flush=True)


async def run_configuration(source: Path, database: str, workers: int, requests: int,
                            capacity: int, pg_url: str) -> Row:
    with tempfile.TemporaryDirectory(prefix="kaifang-bench-") as tmp:
        data_dir = Path(tmp)
        if database == "postgresql":
            fresh_pg_database(pg_url)
        url = pg_url if database == "postgresql" else f"sqlite:///{data_dir / 'kaifang.db'}"
        env = server_env(source, data_dir, pg_url if database == "postgresql" else None,
                         PASSWORD)
        # Also migrates the fresh database, before any server process starts.
        subprocess.run([str(BIN / "kaifang"), "create-user", ADMIN, "--role", "admin"],
                       cwd=source, env=env, check=True, capture_output=True, timeout=120)
        port = free_port()
        base = f"http://{HOST}:{port}"
        log = LOGS / f"{database}-{workers}.log"
        process = start_server(source, env, port, workers, log)
        try:
            await wait_ready(base, process, log)
            async with contextlib.aclosing(await admin_client(base)) as admin:
                warm_up = await published_session(admin, "预热场次", 5)
                event_id = await published_session(admin, "并发报名基准场次", capacity)
            # Every server process warms its code paths and pools on another session.
            await burst(port, 40, "POST", f"/api/events/{warm_up}/registrations",
                        lambda i: registration_body("137", i), citizens="10.2")
            healthz = await burst(port, requests, "GET", "/healthz", group=process.pid)
            progress("healthz", healthz)
            registrations = await burst(port, requests, "POST",
                                        f"/api/events/{event_id}/registrations",
                                        lambda i: registration_body("139", i), process.pid,
                                        citizens="10.1")
            progress("registrations", registrations)
            load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
            try:
                async with contextlib.aclosing(await admin_client(base)) as admin:
                    shown = (await admin.get(f"/api/events/{event_id}")).json()
            except httpx.HTTPError as exc:
                shown = {"unreadable": type(exc).__name__}
        finally:
            stop_server(process)
        stored = database_counts(url, event_id)
    row = assess(Row(database, workers, registrations, healthz, load_average=load),
                 requests, capacity, shown, stored)
    if row.problems:
        print(f"  server log: {log}", file=sys.stderr)
    return row


# Checking -----------------------------------------------------------------------------------

def database_counts(url: str, event_id: int) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT status, count(*) FROM registration "
                                     "WHERE event_id = :e GROUP BY status"), {"e": event_id})
            return {str(status): int(number) for status, number in rows}
    finally:
        engine.dispose()


def assess(row: Row, requests: int, capacity: int, shown: dict[str, Any],
           stored: dict[str, int]) -> Row:
    created = [b for b in row.registrations.bodies if isinstance(b, dict) and "code" in b]
    row.confirmed = sum(1 for b in created if b.get("status") == "confirmed")
    row.waitlisted = sum(1 for b in created if b.get("status") == "waitlisted")
    row.errors = requests - row.registrations.answers.get("201", 0)
    waitlist = requests - capacity
    checks: dict[str, tuple[Any, Any]] = {
        "confirmed answers": (row.confirmed, capacity),
        "waitlisted answers": (row.waitlisted, waitlist),
        "API registered_count": (shown.get("registered_count"), capacity),
        "API waitlist_count": (shown.get("waitlist_count"), waitlist),
        "database confirmed rows": (stored.get("confirmed", 0), capacity),
        "database waitlisted rows": (stored.get("waitlisted", 0), waitlist),
        "distinct ticket codes": (len({b["code"] for b in created}), requests),
        "waitlist positions 1..N, each once": (
            sorted(b.get("waitlist_position") or 0 for b in created
                   if b.get("status") == "waitlisted"), list(range(1, waitlist + 1))),
    }
    for name, (got, want) in checks.items():
        if got != want:
            if isinstance(got, list):
                got, want = f"{len(got)} other values", f"{len(want)} values"
            row.problems.append(f"{name}: got {got}, expected {want}")
    if row.errors:
        row.problems.append(f"registration answers: {dict(row.registrations.answers)}")
    if row.healthz.answers.get("200", 0) != requests:
        row.problems.append(f"healthz answers: {dict(row.healthz.answers)}")
    return row


# The report ---------------------------------------------------------------------------------

def results_table(rows: list[Row]) -> str:
    lines = [
        "| database | workers | confirmed | waitlisted | errors | registrations/s | p50 | p99 "
        "| healthz req/s | healthz p50 | healthz p99 | ratio | targets |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| --- |",
    ]
    for row in rows:
        regs, base = row.registrations, row.healthz
        verdict = "PASS" if row.meets_targets else "FAIL"
        lines.append(
            f"| {row.database} | {row.workers} | {row.confirmed} | {row.waitlisted} "
            f"| {row.errors} | {regs.rate:.0f} | {ms(regs.percentile(50))} "
            f"| {ms(regs.percentile(99))} | {base.rate:.0f} | {ms(base.percentile(50))} "
            f"| {ms(base.percentile(99))} | {regs.rate / base.rate:.2f} "
            f"| {verdict if row.database == 'sqlite' else f'({verdict})'} |")
    return "\n".join(lines)


def cpu_table(rows: list[Row]) -> str:
    lines = [
        "| database | workers | server CPU ms per registration: loop + threads "
        "| per healthz: loop + threads | client CPU ms per request | load average after |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        regs, base = row.registrations, row.healthz
        lines.append(
            f"| {row.database} | {row.workers} "
            f"| {regs.per_request_ms(regs.server_loop_cpu_s):.1f} + "
            f"{regs.per_request_ms(regs.server_thread_cpu_s):.1f} "
            f"| {base.per_request_ms(base.server_loop_cpu_s):.1f} + "
            f"{base.per_request_ms(base.server_thread_cpu_s):.1f} "
            f"| {regs.per_request_ms(regs.client_cpu_s):.1f} | {row.load_average} |")
    return "\n".join(lines)


def report(rows: list[Row], args: argparse.Namespace, uses_pg: bool) -> str:
    stamp = datetime.now(UTC).astimezone().isoformat(timespec="seconds")
    lines = [
        "# Registration burst",
        "",
        f"{args.requests} simultaneous registrations (distinct mobile numbers and forwarded "
        f"client addresses, one task and one connection each, HTTP/1.1 to {HOST}) at a "
        f"published session of {args.capacity} seats; beside them, the same burst at "
        "GET /healthz on the same server in the same run. "
        "Latency counts from the moment all requests are released; ratio = registrations/s "
        f"÷ healthz req/s. Targets, for SQLite: >= {TARGET_RATE:.0f} registrations/s and "
        f"p99 < {TARGET_P99_S:.0f} s (PostgreSQL's verdicts in brackets are for information).",
        "",
        f"- date: {stamp}",
        f"- machine: {describe_machine(args.pg_url if uses_pg else None)}",
        f"- code: {describe_code(args.source)}",
        f"- command: `{' '.join(['python bench/registration_burst.py', *sys.argv[1:]])}`",
        "",
        results_table(rows),
        "",
        "Where the CPU went (what bounds the rate; the load average counts the other programs "
        "sharing this machine):",
        "",
        cpu_table(rows),
        "",
    ]
    lines += [f"- WRONG ({row.database}, {row.workers} worker(s)): {'; '.join(row.problems)}"
              for row in rows if row.problems]
    return "\n".join(lines).rstrip() + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--configs", default="sqlite:1,sqlite:2,postgresql:1,postgresql:2",
                        help="database:workers, comma-separated; database is sqlite or "
                             "postgresql (default: %(default)s)")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--capacity", type=int, default=100)
    parser.add_argument("--pg-url", default=PG_URL,
                        help="a database on 127.0.0.1 that is dropped and re-created")
    parser.add_argument("--source", type=Path, default=ROOT,
                        help="the Kaifang tree the server runs from (to compare a patched copy)")
    parser.add_argument("--no-write", action="store_true", help="do not write bench/results/")
    args = parser.parse_args(argv)
    if f"@{HOST}:" not in args.pg_url:
        parser.error(f"the benchmark only talks to {HOST}")
    if not 0 < args.capacity < args.requests:
        parser.error("--capacity must be between 1 and --requests - 1")
    args.source = args.source.resolve()
    args.configurations = []
    for item in args.configs.split(","):
        database, _, workers = item.strip().partition(":")
        if database not in ("sqlite", "postgresql") or not (workers or "1").isdigit():
            parser.error(f"expected sqlite:N or postgresql:N, got {item!r}")
        args.configurations.append((database, int(workers or 1)))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows = []
    for database, workers in args.configurations:
        print(f"{database}, {workers} worker process(es)", file=sys.stderr, flush=True)
        rows.append(asyncio.run(run_configuration(args.source, database, workers, args.requests,
                                                  args.capacity, args.pg_url)))
    text_out = report(rows, args, any(row.database == "postgresql" for row in rows))
    print(text_out)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text_out, encoding="utf-8")
        print(f"written to {RESULTS.relative_to(ROOT)}")
    if any(row.problems for row in rows):
        print("FAIL: wrong counts or errors, see above", file=sys.stderr)
        return 1
    for row in rows:
        if row.database == "sqlite":
            print(f"{'PASS' if row.meets_targets else 'FAIL'} sqlite, {row.workers} worker(s): "
                  f"{row.registrations.rate:.0f} registrations/s (target >= "
                  f"{TARGET_RATE:.0f}), p99 {ms(row.registrations.percentile(99))} "
                  f"(target < {TARGET_P99_S * 1000:.0f} ms)")
    return 0 if all(row.meets_targets for row in rows if row.database == "sqlite") else 2


if __name__ == "__main__":
    sys.exit(main())
