"""The live room's fan-out: N real websocket viewers in a pre-moderated room, a host approving
M messages a second, beside a minimal broadcast server as the baseline. See bench/README.md.

For each number of viewers in --viewers (1,000 and 3,000) this, in the same run:

1. starts the real server (`kaifang serve`, one process) in a fresh data dir, makes a live
   online session with pre-moderation, assigns a host account to it and signs the host in;
   --messages (+ --warmup) viewers each send one comment over their socket and get `held`;
2. creates N viewers (POST /api/events/{id}/viewers) and opens their sockets from --generators
   load-generator processes on the same machine; setup is timed apart and not counted;
3. has the host approve the held messages at --rate a second (POST /api/comments/{id}/
   moderation, open loop: each on its schedule, whatever the answers do), and records when
   every viewer receives each `comment` frame: latency counts from the moment the approve
   request is sent, so it includes the host's HTTP request;
4. does the same with bench/broadcast_baseline.py (the websockets library alone: what the host
   sends on its socket is broadcast to every viewer), with the same viewers and the same rate.

Delivered/s is every frame received divided by the time from the first approval to the last
receipt; memory per connection is the server's VmRSS with the viewers connected minus before,
divided by N. Viewers offer permessage-deflate, as browsers do; both servers decline it. It
prints a markdown report, writes bench/results/live_fanout.md (unless --no-write) and exits 1
when a frame is missing, duplicated or out of order, 2 when a target is missed: at 3,000
viewers p99 < 1 s and delivered/s >= half the baseline's.

    .venv/bin/python bench/live_fanout.py                          # ~5 minutes, writes results
    .venv/bin/python bench/live_fanout.py --viewers 200 --messages 20 --no-write
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fanout_report import BUSY, Run, ms, report, verdicts
from fanout_viewers import Generators
from harness import (
    BIN,
    HOST,
    REQUEST_TIMEOUT_S,
    free_port,
    group_cpu,
    server_env,
    start_server,
    stop_server,
    wait_ready,
)
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "live_fanout.md"
LOGS = Path(tempfile.gettempdir()) / "kaifang-bench-logs"
ADMIN, HOST_USER, PASSWORD = "bench-admin", "bench-host", "bench-password-42"
DRAIN_S = 30.0  # how long after the last approval a missing frame is still awaited
Approve = Callable[[int], Coroutine[Any, Any, float]]  # a message's id → when it was sent


# One run: a server, its viewers, the approvals -------------------------------------------------

def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def message_text(index: int) -> str:
    return f"第{index}条：请问老旧小区加装电梯的补贴什么时候发放？申请材料交到街道还是区住建委？"


async def measure(run: Run, server_pid: int, generators: Generators, urls: list[str],
                  approve: Approve, warm_up: list[int],
                  measured: list[int]) -> Run:
    """Connects the viewers, approves the warm-up messages, then the measured ones at the
    rate, and fills `run` in."""
    rss_before = rss_kib(server_pid)
    started = time.monotonic()
    run.connect_failures = await generators.connect(urls)
    run.setup["connect_s"] = time.monotonic() - started
    run.setup["settle_s"] = max(await generators.ask("settle", None, 600.0))
    run.rss_per_connection_kib = (rss_kib(server_pid) - rss_before) / max(1, len(urls))
    for ids, counted in ((warm_up, False), (measured, True)):
        await generators.ask("start")
        cpu_before = group_cpu(server_pid)
        sent = await approve_at_rate(ids, run.rate, approve)
        deadline = time.monotonic() + DRAIN_S
        answers = await generators.ask("collect", None, sent, deadline)
        if not counted:
            continue
        deliveries = sum(len(a["latencies"]) for a in answers)
        run.latencies = [x for a in answers for x in a["latencies"]]
        for a in answers:
            run.problems.update(a["problems"])
        elapsed = max(a["last"] for a in answers) - min(sent.values())
        run.delivered_per_s = deliveries / elapsed if deliveries and elapsed > 0 else 0.0
        run.server_cpu_us = 1e6 * (group_cpu(server_pid) - cpu_before) / max(1, deliveries)
        run.generator_cpu_us = 1e6 * sum(a["cpu_s"] for a in answers) / max(1, deliveries)
    run.load_average = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return run


async def approve_at_rate(ids: list[int], rate: float, approve: Approve
                          ) -> dict[int, float]:
    """Approves each message on its own schedule (open loop): the k-th at start + k / rate,
    whether or not the earlier ones have been answered. Returns when each was sent."""
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.1
    tasks: list[asyncio.Task[float]] = []
    for k, message_id in enumerate(ids):
        await asyncio.sleep(max(0.0, start + k / rate - loop.time()))
        tasks.append(asyncio.create_task(approve(message_id)))
    return dict(zip(ids, await asyncio.gather(*tasks), strict=True))


# Kaifang -----------------------------------------------------------------------------------------

async def signed_in(base: str, username: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base, timeout=REQUEST_TIMEOUT_S, trust_env=False)
    response = await client.post("/api/session", json={"username": username,
                                                        "password": PASSWORD})
    response.raise_for_status()
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return client


def checked(response: httpx.Response, status: int = 200) -> Any:
    if response.status_code != status:
        raise RuntimeError(f"{response.request.method} {response.request.url.path}: expected "
                           f"{status}, got {response.status_code} {response.text[:300]}")
    return response.json()


async def live_room(admin: httpx.AsyncClient) -> int:
    """An online session with pre-moderation, live now, run by the bench's host account."""
    unit_id = next(u["id"] for u in checked(await admin.get("/api/units"))
                   if u["code"] == "education")
    now = datetime.now(UTC)
    event = checked(await admin.post("/api/events", json={
        "kind": "open_day", "unit_id": unit_id, "title": "直播间扇出基准场次",
        "summary": "直播间评论扇出的基准测试。",
        "starts_at": (now + timedelta(minutes=10)).isoformat(),
        "ends_at": (now + timedelta(hours=2)).isoformat(), "mode": "online", "venue": "",
        "address": "", "capacity": 0,
        "registration_opens_at": (now - timedelta(days=1)).isoformat(),
        "registration_closes_at": (now + timedelta(minutes=5)).isoformat(),
        "moderation": "pre", "premiere_at": None}), 201)
    event_id = int(event["id"])
    for status in ("pending_review", "published", "live"):
        checked(await admin.post(f"/api/events/{event_id}/status", json={"status": status}))
    host_id = next(h["id"] for h in checked(await admin.get("/api/hosts"))
                   if h["username"] == HOST_USER)
    checked(await admin.post(f"/api/events/{event_id}/hosts", json={"user_id": host_id}), 201)
    return event_id


async def viewer_tokens(base: str, event_id: int, count: int, prefix: str) -> list[str]:
    gate = asyncio.Semaphore(8)
    async with httpx.AsyncClient(base_url=base, timeout=REQUEST_TIMEOUT_S,
                                 trust_env=False) as client:
        async def one(index: int) -> str:
            # Each viewer from an address of its own, as behind the district's proxy (the
            # server trusts 127.0.0.1's X-Forwarded-For): joins are limited per address.
            address = f"10.{ord(prefix[0]) % 200}.{index // 250}.{index % 250 + 1}"
            async with gate:
                joined = checked(await client.post(f"/api/events/{event_id}/viewers",
                                                   json={"nickname": f"{prefix}{index:04d}"},
                                                   headers={"X-Forwarded-For": address}), 201)
                return str(joined["viewer_token"])

        return list(await asyncio.gather(*(one(i) for i in range(count))))


async def held_messages(ws_base: str, event_id: int, tokens: list[str]) -> list[int]:
    """Each token's viewer sends one comment; the ids the room answers `held` with, in order."""
    ids = []
    for index, token in enumerate(tokens):
        # From addresses of their own, as the viewers' joins (messages are limited per address).
        address = {"X-Forwarded-For": f"10.250.{index // 250}.{index % 250 + 1}"}
        async with connect(f"{ws_base}/ws/events/{event_id}?token={token}",
                           additional_headers=address) as ws:
            await ws.send(json.dumps({"type": "comment", "text": message_text(index + 1),
                                      "client_id": f"c{index}"}))
            while (frame := json.loads(await ws.recv()))["type"] != "held":
                if frame["type"] == "error":
                    raise RuntimeError(f"the room refused a comment: {frame}")
            ids.append(int(frame["id"]))
    return ids


async def kaifang_run(args: argparse.Namespace, viewers: int) -> Run:
    run = Run("kaifang", viewers, args.rate, args.messages)
    with tempfile.TemporaryDirectory(prefix="kaifang-bench-") as tmp:
        env = server_env(args.source, Path(tmp), None, PASSWORD)
        for user, role in ((ADMIN, "admin"), (HOST_USER, "host")):
            subprocess.run([str(BIN / "kaifang"), "create-user", user, "--role", role],
                           cwd=args.source, env=env, check=True, capture_output=True,
                           timeout=120)
        port = free_port()
        base, ws_base = f"http://{HOST}:{port}", f"ws://{HOST}:{port}"
        log = LOGS / f"live-fanout-{viewers}.log"
        process = start_server(args.source, env, port, 1, log)
        generators = Generators(args.generators, args.compression)
        try:
            await wait_ready(base, process, log)
            started = time.monotonic()
            async with contextlib.aclosing(await signed_in(base, ADMIN)) as admin:
                event_id = await live_room(admin)
            posters = await viewer_tokens(base, event_id, args.warmup + args.messages, "发言")
            ids = await held_messages(ws_base, event_id, posters)
            tokens = await viewer_tokens(base, event_id, viewers, "观众")
            run.setup["tokens_s"] = time.monotonic() - started
            urls = [f"{ws_base}/ws/events/{event_id}?token={t}&after=0" for t in tokens]
            async with contextlib.aclosing(await signed_in(base, HOST_USER)) as host:
                async def approve(message_id: int) -> float:
                    """As a host's page would: on 503 busy (the session's lock timed out), again
                    after Retry-After. Latency still counts from the first attempt."""
                    sent = time.monotonic()
                    while (answer := await host.post(f"/api/comments/{message_id}/moderation",
                                                     json={"action": "approve"})
                           ).status_code == 503:
                        run.problems[BUSY] += 1
                        await asyncio.sleep(float(answer.headers.get("Retry-After", "1")))
                    checked(answer)
                    return sent

                await measure(run, process.pid, generators, urls, approve,
                              ids[:args.warmup], ids[args.warmup:])
        finally:
            with contextlib.suppress(Exception):
                await generators.close()
            stop_server(process)
    return run


# The baseline ------------------------------------------------------------------------------------

async def baseline_run(args: argparse.Namespace, viewers: int) -> Run:
    run = Run("baseline", viewers, args.rate, args.messages)
    port = free_port()
    log = LOGS / f"live-fanout-baseline-{viewers}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, str(ROOT / "bench" / "broadcast_baseline.py"),
                                    str(port)], stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    generators = Generators(args.generators, args.compression)
    try:
        ws_base = f"ws://{HOST}:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                host = await connect(f"{ws_base}/host", compression=None)
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"the baseline did not start:\n{log.read_text()}") from None
                await asyncio.sleep(0.1)
        ids = list(range(1, args.warmup + args.messages + 1))
        seqs = {message_id: seq for seq, message_id in enumerate(ids, 1)}

        async def approve(message_id: int) -> float:
            frame = json.dumps({"type": "comment", "seq": seqs[message_id], "id": message_id,
                                "kind": "comment", "author": f"发言{message_id:04d}",
                                "text": message_text(message_id), "video_time": None,
                                "created_at": datetime.now(UTC).isoformat()},
                               ensure_ascii=False, separators=(",", ":"))
            sent = time.monotonic()
            await host.send(frame)
            return sent

        urls = [f"{ws_base}/viewers" for _ in range(viewers)]
        try:
            await measure(run, process.pid, generators, urls, approve, ids[:args.warmup],
                          ids[args.warmup:])
        finally:
            await host.close()
    finally:
        with contextlib.suppress(Exception):
            await generators.close()
        stop_server(process)
    return run


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--viewers", default="1000,3000",
                        help="numbers of viewers, comma-separated (default: %(default)s)")
    parser.add_argument("--rate", type=float, default=10.0, help="approvals a second")
    parser.add_argument("--messages", type=int, default=100, help="approvals measured")
    parser.add_argument("--warmup", type=int, default=5, help="approvals before, not counted")
    parser.add_argument("--generators", type=int, default=2,
                        help="load-generator processes sharing the viewers")
    parser.add_argument("--servers", default="baseline,kaifang",
                        help="which to run, comma-separated: baseline, kaifang")
    parser.add_argument("--no-compression", dest="compression", action="store_false",
                        help="viewers do not offer permessage-deflate")
    parser.add_argument("--source", type=Path, default=ROOT,
                        help="the Kaifang tree the server runs from (to compare a patched copy)")
    parser.add_argument("--no-write", action="store_true", help="do not write bench/results/")
    args = parser.parse_args(argv)
    try:
        args.viewer_counts = [int(n) for n in args.viewers.split(",")]
    except ValueError:
        parser.error(f"--viewers: expected numbers, got {args.viewers!r}")
    args.server_names = [s.strip() for s in args.servers.split(",")]
    if not set(args.server_names) <= {"baseline", "kaifang"}:
        parser.error(f"--servers: expected baseline and/or kaifang, got {args.servers!r}")
    if args.rate <= 0 or args.messages < 1 or args.warmup < 0 or args.generators < 1:
        parser.error("--rate, --messages and --generators must be positive")
    args.source = args.source.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Every socket is a file: the limit the server and generators inherit must hold them all.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < max(args.viewer_counts) + 1000:
        print(f"warning: at most {hard} open files per process", file=sys.stderr)
    load_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    runs = []
    for viewers in args.viewer_counts:
        for server in args.server_names:
            print(f"{server}, {viewers} viewers", file=sys.stderr, flush=True)
            run = asyncio.run((kaifang_run if server == "kaifang" else baseline_run)(args, viewers))
            print(f"  p50 {ms(run.percentile(50))}, p99 {ms(run.percentile(99))}, "
                  f"{run.delivered_per_s:,.0f} delivered/s, {dict(run.problems)}, "
                  f"setup {', '.join(f'{k} {v:.1f}' for k, v in run.setup.items())}",
                  file=sys.stderr, flush=True)
            runs.append(run)
    text_out = report(runs, args, load_before)
    print(text_out)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text_out, encoding="utf-8")
        print(f"written to {RESULTS.relative_to(ROOT)}")
    if any(run.wrong for run in runs):
        print("FAIL: frames missing, twice, out of order or not connected, see above",
              file=sys.stderr)
        return 1
    return 0 if all(ok for _what, ok in verdicts(runs)) else 2


if __name__ == "__main__":
    sys.exit(main())
