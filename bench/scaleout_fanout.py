"""bench/scaleout.py's part (a): the live room's fan-out at its saturation point, for Kaifang's
processes of the cluster and for the websockets-only baseline (bench/broadcast_baseline.py),
with the same viewers' generators (bench/scaleout_viewers.py) and the same stepping of the rate:
doubling until a step misses p99 < 1 s, then bisecting."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from harness import HOST, free_port, ms, stop_server
from live_fanout import approve_at_rate, live_room, message_text, signed_in
from scaleout_cluster import (
    ADMIN,
    HOST_USER,
    LOGS,
    ROOT,
    Cluster,
    insert_viewer,
    process_cpu,
    raw_post,
)
from scaleout_results import Saturation, Step
from scaleout_viewers import LightGenerators
from sqlalchemy import create_engine, insert

DRAIN_S = 30.0

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
    from streaming.models import LiveMessage

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            now = datetime.now(UTC)
            viewer_id = insert_viewer(conn, event_id, "基准发言人", now)
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
