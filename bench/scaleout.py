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
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from harness import (
    BIN,
    HOST,
    REQUEST_TIMEOUT_S,
    free_port,
    fresh_pg_database,
    group_cpu,
    ms,
    server_env,
    start_server,
    stop_server,
    wait_ready,
)
from live_fanout import approve_at_rate, live_room, message_text, signed_in
from registration_burst import published_session, registration_body
from scaleout_results import (
    LAST_PAGE,
    BurstResult,
    JoinResult,
    Saturation,
    Step,
    report,
    uptime,
)
from scaleout_site import (
    Site,
    citizen_address,
    front_burst,
    front_exchange,
    has_project_site,
    start_nginx,
)
from scaleout_viewers import LightCrowd, LightGenerators, LightViewer
from sqlalchemy import create_engine, insert, text, update

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "scaleout.md"
LOGS = Path(tempfile.gettempdir()) / "kaifang-bench-logs"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/kaifang_h_scaleout"
REDIS_URL = "redis://127.0.0.1:6379/7"
ADMIN, HOST_USER, PASSWORD = "bench-admin", "bench-host", "bench-password-42"
DRAIN_S = 30.0


# The cluster: PostgreSQL, Redis, two app processes, a worker, nginx ---------------------------

@dataclass
class Cluster:
    apps: list[subprocess.Popen[bytes]]
    ports: list[int]
    worker: subprocess.Popen[bytes]
    site: Site
    pg_url: str

    def base(self, index: int) -> str:
        return f"http://{HOST}:{self.ports[index]}"

    def pids(self) -> dict[str, int]:
        found = {f"app {i + 1}": p.pid for i, p in enumerate(self.apps)}
        found["worker"] = self.worker.pid
        found["nginx"] = self.site.process.pid
        return found


@contextlib.asynccontextmanager
async def cluster(args: argparse.Namespace, tmp: Path) -> Any:
    fresh_pg_database(args.pg_url)
    env = server_env(args.source, tmp / "data", args.pg_url, PASSWORD)
    env.update(KAIFANG_REDIS_URL=args.redis_url, KAIFANG_EMBEDDED_WORKER="false",
               KAIFANG_SECRET_KEY=secrets.token_urlsafe(48))
    ports, front_port = [free_port() for _ in range(2)], free_port()
    scheme = "https" if has_project_site(args.site_root) and args.project_site else "http"
    env["KAIFANG_PUBLIC_URL"] = f"{scheme}://{HOST}:{front_port}"
    for user, role in ((ADMIN, "admin"), (HOST_USER, "host")):
        subprocess.run([str(BIN / "kaifang"), "create-user", user, "--role", role],
                       cwd=args.source, env=env, check=True, capture_output=True, timeout=120)
    apps: list[subprocess.Popen[bytes]] = []
    worker: subprocess.Popen[bytes] | None = None
    site: Site | None = None
    try:
        for index, port in enumerate(ports):
            apps.append(start_server(args.source, env, port, 1,
                                     LOGS / f"scaleout-app{index + 1}.log"))
        log = LOGS / "scaleout-worker.log"
        with log.open("wb") as out:
            worker = subprocess.Popen([str(BIN / "kaifang"), "worker"], cwd=args.source,
                                      env=env, stdout=out, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        for index, (port, app) in enumerate(zip(ports, apps, strict=True)):
            await wait_ready(f"http://{HOST}:{port}", app,
                             LOGS / f"scaleout-app{index + 1}.log")
        site = start_nginx(args.site_root, front_port, ports, tmp / "nginx",
                           use_project_site=args.project_site)
        status, _ = await front_exchange(site, "GET", "/healthz", None, HOST)
        if status != 200:
            raise RuntimeError(f"GET /healthz through nginx: {status}")
        yield Cluster(apps, ports, worker, site, args.pg_url)
    finally:
        if site is not None:
            site.stop()
        for process in [*apps, *([worker] if worker else [])]:
            stop_server(process)


def process_cpu(pid: int) -> float:
    """CPU seconds of one process (its threads included)."""
    return group_cpu(pid)


async def raw_post(port: int, path: str, body: bytes, headers: dict[str, str]) -> int:
    """A POST on a connection of its own, written by hand (httpx costs the bench ~2 ms of CPU
    a request, taken from the server on two cores)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        head = (f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                + "".join(f"{k}: {v}\r\n" for k, v in headers.items()))
        writer.write(head.encode() + b"\r\n" + body)
        response = await reader.read()
    finally:
        writer.close()
    return int(response.split(b" ", 2)[1])


# (a) Fan-out at saturation -----------------------------------------------------------------

Approve = Callable[[int], Awaitable[float]]


async def one_step(generators: LightGenerators, approve: Approve, ids: list[int], rate: float,
                   pids: dict[str, int]) -> Step:
    await generators.ask("start")
    cpu_before = {name: process_cpu(pid) for name, pid in pids.items()}
    sent = await approve_at_rate(ids, rate, approve)
    answers = await generators.ask("collect", None, sent, time.monotonic() + DRAIN_S)
    cpu = {name: process_cpu(pid) - cpu_before[name] for name, pid in pids.items()}
    latencies = [x for a in answers for x in a["latencies"]]
    problems: dict[str, int] = {}
    for a in answers:
        for what, count in a["problems"].items():
            if count:
                problems[what] = problems.get(what, 0) + count
    last = max((a["last"] for a in answers), default=0.0)
    elapsed = last - min(sent.values())
    return Step(rate, len(ids), latencies, problems, len(latencies),
                len(latencies) / elapsed if elapsed > 0 else 0.0, cpu,
                sum(a["cpu_s"] for a in answers))


async def saturate(result: Saturation, generators: LightGenerators, approve: Approve,
                   ids: list[int], pids: dict[str, int], args: argparse.Namespace
                   ) -> Saturation:
    """Doubles the rate until a step misses p99 < 1 s, then bisects between the last rate
    that met it and the first that did not, until they are within --precision."""
    pool = iter(ids)
    warm = [next(pool) for _ in range(args.warmup)]
    await one_step(generators, approve, warm, max(1.0, args.start_rate / 2), pids)
    rate, low, high = args.start_rate, 0.0, float("inf")
    while len(result.steps) < args.max_steps:
        count = max(args.min_messages, round(rate * args.step_s))
        batch = [next(pool, None) for _ in range(count)]
        if None in batch:
            print("  out of held messages", file=sys.stderr)
            break
        step = await one_step(generators, approve, [i for i in batch if i is not None], rate,
                              pids)
        result.steps.append(step)
        print(f"  {result.name}: {rate:.1f}/s → p99 {ms(step.percentile(99))}, "
              f"{step.delivered_per_s:,.0f} frames/s, {step.cpu_us():.1f} µs/frame, "
              f"{'ok' if step.ok else 'MISSED'} {step.problems or ''}", file=sys.stderr,
              flush=True)
        if step.ok:
            low = rate
        else:
            high = rate
        if high < float("inf") and high / max(low, 1e-9) <= 1 + args.precision:
            break
        if rate >= args.max_rate and step.ok:
            break
        rate = min(args.max_rate, rate * 2) if high == float("inf") \
            else (low + high) / 2 if low else high / 2
        await asyncio.sleep(0.5)
    return result


def held_message_rows(url: str, event_id: int, count: int) -> list[int]:
    """`count` comments held for approval in the room, written straight to the database: the
    setup of (a), not what it measures (one viewer's socket sends them in production)."""
    from streaming.models import LiveMessage, Viewer

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            now = datetime.now(UTC)
            viewer_id = conn.execute(insert(Viewer.__table__).returning(  # type: ignore[attr-defined]
                Viewer.__table__.c.id), {"event_id": event_id, "nickname": "基准发言人",  # type: ignore[attr-defined]
                                          "created_at": now, "address_key": ""}).scalar_one()
            rows = [{"event_id": event_id, "viewer_id": viewer_id, "kind": "comment",
                     "author": "基准发言人", "text": message_text(i + 1), "client_id": f"c{i}",
                     "state": "held", "pinned": False, "created_at": now, "address_key": "",
                     "registered": False} for i in range(count)]
            ids = conn.execute(insert(LiveMessage.__table__).returning(  # type: ignore[attr-defined]
                LiveMessage.__table__.c.id), rows).scalars().all()  # type: ignore[attr-defined]
    finally:
        engine.dispose()
    return sorted(int(i) for i in ids)


async def kaifang_fanout(args: argparse.Namespace, c: Cluster, processes: int) -> Saturation:
    where = ("app 1 (viewers and approvals)" if processes == 1 else
             "app 1 + app 2 (viewers split, approvals on app 1, frames through Redis)")
    result = Saturation(f"kaifang, {processes} process{'es' if processes > 1 else ''}",
                        where, args.viewers)
    async with contextlib.aclosing(await signed_in(c.base(0), ADMIN)) as admin:
        event_id = await live_room(admin)
    ids = held_message_rows(c.pg_url, event_id, args.held)
    urls = [f"ws://{HOST}:{c.ports[i % processes]}/ws/events/{event_id}?after=0&watch=w{i}"
            for i in range(args.viewers)]
    host = await signed_in(c.base(0), HOST_USER)
    headers = {"X-CSRF-Token": str(host.headers["X-CSRF-Token"]),
               "Cookie": "; ".join(f"{k}={v}" for k, v in host.cookies.items())}
    await host.aclose()
    body = json.dumps({"action": "approve"}).encode()

    async def approve(message_id: int) -> float:
        sent = time.monotonic()
        while (status := await raw_post(c.ports[0], f"/api/comments/{message_id}/moderation",
                                        body, headers)) == 503:
            await asyncio.sleep(0.5)
        if status != 200:
            raise RuntimeError(f"approving {message_id}: HTTP {status}")
        return sent

    pids = {f"app {i + 1}": c.apps[i].pid for i in range(processes)}
    return await with_viewers(result, urls, approve, ids, pids, args)


async def with_viewers(result: Saturation, urls: list[str], approve: Approve, ids: list[int],
                       pids: dict[str, int], args: argparse.Namespace) -> Saturation:
    generators = LightGenerators(args.generators)
    try:
        result.connect_failures = {k: v for k, v in (await generators.connect(urls)).items()
                                   if k != "connected"}
        if result.connect_failures:
            print(f"  not connected: {result.connect_failures}", file=sys.stderr)
        await generators.ask("settle", None, 120.0)
        await saturate(result, generators, approve, ids, pids, args)
    finally:
        with contextlib.suppress(Exception):
            await generators.close()
    return result


async def baseline_fanout(args: argparse.Namespace) -> Saturation:
    from websockets.asyncio.client import connect

    result = Saturation("baseline (websockets only)", "bench/broadcast_baseline.py, one process",
                        args.viewers)
    port = free_port()
    log = LOGS / "scaleout-baseline.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, str(ROOT / "bench" / "broadcast_baseline.py"),
                                    str(port)], stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                host = await connect(f"ws://{HOST}:{port}/host", compression=None)
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"the baseline did not start:\n{log.read_text()}") \
                        from None
                await asyncio.sleep(0.1)
        ids = list(range(1, args.held + 1))

        async def approve(message_id: int) -> float:
            frame = json.dumps({"type": "comment", "seq": message_id, "id": message_id,
                                "kind": "comment", "author": "基准发言人",
                                "text": message_text(message_id), "video_time": None,
                                "created_at": datetime.now(UTC).isoformat(), "reply_to": None,
                                "registered": False, "pos": message_id},
                               ensure_ascii=False, separators=(",", ":"))
            sent = time.monotonic()
            await host.send(frame)
            return sent

        urls = [f"ws://{HOST}:{port}/viewers?v={i}" for i in range(args.viewers)]
        try:
            await with_viewers(result, urls, approve, ids, {"baseline": process.pid}, args)
        finally:
            await host.close()
    finally:
        stop_server(process)
    return result


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
    from streaming.models import LiveChange, LiveMessage, LiveRoom, Viewer

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            now = datetime.now(UTC)
            viewer_id = conn.execute(insert(Viewer.__table__).returning(  # type: ignore[attr-defined]
                Viewer.__table__.c.id), {"event_id": event_id, "nickname": "老观众",  # type: ignore[attr-defined]
                                          "created_at": now, "address_key": ""}).scalar_one()
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
