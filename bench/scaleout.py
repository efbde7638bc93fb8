"""Proof of scale: two app processes and a worker on PostgreSQL and Redis behind nginx, on this
machine, beside baselines measured in the same run. See bench/README.md ("scaleout.py").

(a) The live room's fan-out at its saturation point: the largest approvals/s at which every
    viewer still gets each comment with p99 < 1 s, found by stepping the rate (doubling, then
    bisecting) with short steps on the same connected viewers, for one app process, two (viewers
    split across both, approvals on the first, frames crossing Redis) and the websockets-only
    baseline (bench/broadcast_baseline.py); with the CPU each spends per delivered frame.
(b) A registration burst across both processes through nginx: N citizens at once for M seats;
    exactly M confirmed rows in the database afterwards, p99 < 1 s; beside GET /healthz's burst.
(c) Late joiners: viewers joining a room that holds 20,000 messages, spread over a minute, with
    each process's CPU (from /proc) and GET /healthz's p99 meanwhile.

    .venv/bin/python bench/scaleout.py --quick --no-write       # a smoke run, about a minute
    .venv/bin/python bench/scaleout.py                          # the full run, writes results
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from harness import HOST, REQUEST_TIMEOUT_S, ms
from live_fanout import live_room, message_text, signed_in
from registration_burst import published_session, registration_body
from scaleout_cluster import ADMIN, ROOT, Cluster, cluster, insert_viewer, process_cpu
from scaleout_fanout import baseline_fanout, kaifang_fanout
from scaleout_results import LAST_PAGE, BurstResult, JoinResult, Saturation, report, uptime
from scaleout_site import citizen_address, front_burst, front_exchange
from scaleout_viewers import LightCrowd, LightViewer
from sqlalchemy import create_engine, insert, text, update

RESULTS = ROOT / "bench" / "results" / "scaleout.md"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/kaifang_h_scaleout"
REDIS_URL = "redis://127.0.0.1:6379/7"


# (b) The registration burst through nginx ----------------------------------------------------

async def registration_burst(args: argparse.Namespace, c: Cluster) -> list[BurstResult]:
    """The burst twice, on a session each: citizens whose pages were already open (their
    connections too: how a registration opening at 9:00 comes), then citizens who each open
    a connection in the burst (1,000 TLS handshakes inside it)."""
    async with contextlib.aclosing(await signed_in(c.base(0), ADMIN)) as admin:
        warm_up = await published_session(admin, "预热场次", 5)
        sessions = [await published_session(admin, f"规模验证报名场次{n}", args.seats)
                    for n in (1, 2)]
    await front_burst(c.site, 40, "POST", f"/api/events/{warm_up}/registrations",
                      lambda i: registration_body("137", i), 2)
    results = []
    for warm, event_id, phones, prefix in ((True, sessions[0], "138", 4),
                                           (False, sessions[1], "139", 1)):
        healthz = await front_burst(c.site, args.citizens, "GET", "/healthz", None,
                                    prefix + 1, warm)
        pids = c.pids()
        before = {name: process_cpu(pid) for name, pid in pids.items()}
        registrations = await front_burst(
            c.site, args.citizens, "POST", f"/api/events/{event_id}/registrations",
            partial(registration_body, phones), prefix, warm)
        cpu = {name: process_cpu(pid) - before[name] for name, pid in pids.items()}
        counts = registration_rows(c.pg_url, event_id)
        results.append(BurstResult(args.citizens, args.seats, registrations, healthz,
                                   counts.get("confirmed", 0), counts.get("waitlisted", 0), cpu,
                                   warm))
        print(f"  registrations ({'open' if warm else 'new'} connections): "
              f"{registrations.rate:.0f}/s, p99 {ms(registrations.percentile(99))}, "
              f"{dict(registrations.answers)}, rows {counts}", file=sys.stderr, flush=True)
    return results


def registration_rows(pg_url: str, event_id: int) -> dict[str, int]:
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            return {str(status): int(n) for status, n in conn.execute(text(
                "SELECT status, count(*) FROM registration WHERE event_id = :e "
                "GROUP BY status"), {"e": event_id}).all()}
    finally:
        engine.dispose()


# (c) Late joiners -------------------------------------------------------------------------

def fill_room(url: str, event_id: int, count: int) -> None:
    """`count` approved comments in the room with their positions, as `count` approvals would
    have left them, written in bulk (the setup of (c): the room as it is after a long
    session)."""
    from streaming.models import LiveChange, LiveMessage, LiveRoom

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            now = datetime.now(UTC)
            viewer_id = insert_viewer(conn, event_id, "老观众", now)
            ids: list[int] = []
            for start in range(0, count, 5000):
                rows = [{"event_id": event_id, "viewer_id": viewer_id, "kind": "comment",
                         "author": "老观众", "text": message_text(i + 1), "client_id": f"c{i}",
                         "state": "approved", "seq": i + 1, "pos": i + 1, "pinned": False,
                         "created_at": now - timedelta(seconds=count - i), "decided_at": now,
                         "address_key": "", "registered": False}
                        for i in range(start, min(count, start + 5000))]
                ids += conn.execute(insert(LiveMessage.__table__).returning(  # type: ignore[attr-defined]
                    LiveMessage.__table__.c.id), rows).scalars().all()  # type: ignore[attr-defined]
            conn.execute(insert(LiveChange.__table__), [  # type: ignore[attr-defined]
                {"event_id": event_id, "pos": i + 1, "kind": "comment", "message_id": m,
                 "pinned": False} for i, m in enumerate(ids)])
            room = LiveRoom.__table__  # type: ignore[attr-defined]
            if conn.execute(update(room).where(room.c.event_id == event_id).values(
                    last_seq=count, last_pos=count)).rowcount == 0:
                conn.execute(insert(room), {"event_id": event_id, "last_seq": count,
                                            "last_pos": count, "closed": False,
                                            "slow_mode_s": 0})
    finally:
        engine.dispose()


async def late_joiners(args: argparse.Namespace, c: Cluster) -> JoinResult:
    result = JoinResult(args.joiners, args.room_messages, args.join_window_s)
    async with contextlib.aclosing(await signed_in(c.base(0), ADMIN)) as admin:
        event_id = await live_room(admin)
    started = time.monotonic()
    fill_room(c.pg_url, event_id, args.room_messages)
    result.fill_s = time.monotonic() - started
    crowd = LightCrowd()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    front = c.site.port

    async def join(index: int) -> None:
        address = citizen_address(77, index)
        at = time.monotonic()
        try:
            status, raw = await front_exchange(
                c.site, "POST", f"/api/events/{event_id}/viewers",
                json.dumps({"nickname": f"晚到{index:04d}"}).encode(), address)
            if status != 201:
                raise RuntimeError(f"join: HTTP {status}")
            token = json.loads(raw)["viewer_token"]
            result.join_http.append(time.monotonic() - at)
            viewer = LightViewer(f"{c.site.ws_url}/ws/events/{event_id}?token={token}"
                                 f"&after=0&watch=late{index}", crowd, forwarded_for=address)
            await loop.create_connection(lambda: viewer, HOST, front, ssl=c.site.tls,
                                         local_addr=(address, 0))
            await asyncio.wait_for(viewer.hello, REQUEST_TIMEOUT_S)
            result.hello.append(time.monotonic() - at)
            crowd.viewers.append(viewer)
            deadline = time.monotonic() + REQUEST_TIMEOUT_S
            while len(viewer.received) < min(LAST_PAGE, args.room_messages):
                if viewer.closed_with or time.monotonic() > deadline:
                    raise ConnectionError(viewer.closed_with or "page incomplete")
                await asyncio.sleep(0.02)
            result.page.append(time.monotonic() - at)
        except (OSError, ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
            why = str(exc)[:60] or type(exc).__name__
            result.failures[why] = result.failures.get(why, 0) + 1

    async def poll_healthz() -> None:
        while not stop.is_set():
            at = time.monotonic()
            try:
                status, _ = await asyncio.wait_for(
                    front_exchange(c.site, "GET", "/healthz", None, HOST), REQUEST_TIMEOUT_S)
                if status == 200:
                    result.healthz.append(time.monotonic() - at)
                else:
                    result.healthz_failures += 1
            except (OSError, TimeoutError):
                result.healthz_failures += 1
            await asyncio.sleep(max(0.0, 0.05 - (time.monotonic() - at)))

    async def sample_cpu() -> None:
        pids = c.pids()
        last = {name: process_cpu(pid) for name, pid in pids.items()}
        result.cpu_per_s = {name: [] for name in pids}
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
            for name, pid in pids.items():
                now = process_cpu(pid)
                result.cpu_per_s[name].append(now - last[name])
                last[name] = now

    watchers = [asyncio.create_task(poll_healthz()), asyncio.create_task(sample_cpu())]
    await asyncio.sleep(2.0)  # healthz and CPU before the joins
    begin = loop.time()
    tasks = []
    for index in range(args.joiners):
        await asyncio.sleep(max(0.0, begin + index * args.join_window_s / args.joiners
                                - loop.time()))
        tasks.append(asyncio.create_task(join(index)))
    await asyncio.gather(*tasks)
    stop.set()
    await asyncio.gather(*watchers)
    await crowd.close()
    print(f"  late joiners: page p99 {ms(result.pct(result.page, 99))}, healthz p99 "
          f"{ms(result.pct(result.healthz, 99))}, failures {result.failures}",
          file=sys.stderr, flush=True)
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run in about a minute: smaller numbers everywhere")
    parser.add_argument("--parts", default="a,b,c", help="which of a, b, c to run")
    parser.add_argument("--servers", default="baseline,kaifang1,kaifang2",
                        help="(a)'s servers, comma-separated")
    parser.add_argument("--viewers", type=int, help="(a): viewers (3,000; quick 300)")
    parser.add_argument("--generators", type=int, default=2)
    parser.add_argument("--start-rate", type=float, help="(a): the first step's approvals/s")
    parser.add_argument("--step-s", type=float, help="(a): seconds a step lasts")
    parser.add_argument("--precision", type=float, default=0.15)
    parser.add_argument("--citizens", type=int, help="(b): registrations at once (1,000)")
    parser.add_argument("--seats", type=int, help="(b): the session's seats (100)")
    parser.add_argument("--joiners", type=int, help="(c): late joiners (1,000)")
    parser.add_argument("--room-messages", type=int, help="(c): the room's messages (20,000)")
    parser.add_argument("--join-window-s", type=float, help="(c): seconds they join over (60)")
    parser.add_argument("--pg-url", default=PG_URL, help="dropped and re-created")
    parser.add_argument("--redis-url", default=REDIS_URL)
    parser.add_argument("--minimal-site", dest="project_site", action="store_false",
                        help="nginx with the bench's minimal site even when deploy/ has one")
    parser.add_argument("--site-root", type=Path,
                        help="a tree holding deploy/nginx/kaifang.conf and tests/deploy/nginx.py "
                             "(default: --source)")
    parser.add_argument("--source", type=Path, default=ROOT)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    full = {"viewers": 3000, "start_rate": 4.0, "step_s": 4.0, "citizens": 1000, "seats": 100,
            "joiners": 1000, "room_messages": 20000, "join_window_s": 60.0}
    quick = {"viewers": 300, "start_rate": 8.0, "step_s": 2.0, "citizens": 200, "seats": 20,
             "joiners": 100, "room_messages": 2000, "join_window_s": 10.0}
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.warmup, args.min_messages = 5, 10
    args.max_steps, args.max_rate = (6, 200.0) if args.quick else (12, 400.0)
    # Enough held comments for every step of the search at the largest rate.
    args.held = args.warmup + args.max_steps * max(args.min_messages,
                                                   round(args.max_rate * args.step_s))
    args.part_names = {p.strip() for p in args.parts.split(",")}
    args.server_names = [s.strip() for s in args.servers.split(",")]
    args.source = args.source.resolve()
    args.site_root = (args.site_root or args.source).resolve()
    return args


async def run(args: argparse.Namespace) -> tuple[list[Saturation], list[BurstResult],
                                                 JoinResult | None, str]:
    runs: list[Saturation] = []
    burst_result: list[BurstResult] = []
    join_result = None
    if "a" in args.part_names and "baseline" in args.server_names:
        print("(a) baseline", file=sys.stderr, flush=True)
        runs.append(await baseline_fanout(args))
    with tempfile.TemporaryDirectory(prefix="kaifang-scaleout-") as tmp:
        async with cluster(args, Path(tmp)) as c:
            for processes in (1, 2):
                if "a" in args.part_names and f"kaifang{processes}" in args.server_names:
                    print(f"(a) kaifang, {processes} process(es)", file=sys.stderr, flush=True)
                    runs.append(await kaifang_fanout(args, c, processes))
            if "b" in args.part_names:
                print("(b) registration burst", file=sys.stderr, flush=True)
                burst_result = await registration_burst(args, c)
            if "c" in args.part_names:
                print("(c) late joiners", file=sys.stderr, flush=True)
                join_result = await late_joiners(args, c)
            site = c.site.which
    return runs, burst_result, join_result, site


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    before = uptime()
    runs, b, j, site = asyncio.run(run(args))
    text_out = report(args, runs, b, j, site, before)
    print(text_out)
    if not args.no_write:
        RESULTS.write_text(text_out, encoding="utf-8")
        print(f"written to {RESULTS.relative_to(ROOT)}")
    wrong = any(not r.rows_ok or (r.warm and not r.ok) for r in b) or \
        any(r.best is None for r in runs) or (j is not None and bool(j.failures))
    return 2 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
