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
import multiprocessing
import resource
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

import httpx
from harness import (
    BIN,
    HOST,
    REQUEST_TIMEOUT_S,
    describe_code,
    describe_machine,
    free_port,
    group_cpu,
    server_env,
    start_server,
    stop_server,
    wait_ready,
)
from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "live_fanout.md"
LOGS = Path(tempfile.gettempdir()) / "kaifang-bench-logs"
ADMIN, HOST_USER, PASSWORD = "bench-admin", "bench-host", "bench-password-42"
TARGET_VIEWERS, TARGET_P99_S, TARGET_RATIO = 3000, 1.0, 0.5
CONNECTS_AT_ONCE = 50  # per generator: under the servers' listen backlogs
QUIET_S = 1.0  # no frame for this long: the room has settled after the joins
DRAIN_S = 30.0  # how long after the last approval a missing frame is still awaited
COMMENT = b'{"type":"comment"'
BUSY = "approvals answered 503 busy, then retried"
Approve = Callable[[int], Coroutine[Any, Any, float]]  # a message's id → when it was sent


# The viewers: load-generator processes ---------------------------------------------------------

class Viewer(asyncio.Protocol):
    """One viewer's socket, on the websockets library's Sans-I/O protocol: frames are handled in
    the transport's callback, without a task per connection, so that the generator's CPU (taken
    from the server on two cores) stays small. Records when each comment frame arrives."""

    def __init__(self, url: str, compression: bool, crowd: Crowd) -> None:
        extensions = enable_client_permessage_deflate(None) if compression else None
        self.ws = ClientProtocol(parse_uri(url), extensions=extensions)
        # From an address of its own, as behind the district's proxy (the server trusts
        # 127.0.0.1's X-Forwarded-For): sockets are limited per address.
        spread = zlib.crc32(url.encode())
        self.address = f"10.{200 + spread % 50}.{spread >> 8 & 255}.{(spread >> 16) % 250 + 1}"
        self.crowd = crowd
        self.hello: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.received: list[tuple[int, int, float]] = []  # (id, seq, monotonic time)
        self.closed_with: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        request = self.ws.connect()
        request.headers["X-Forwarded-For"] = self.address
        self.ws.send_request(request)
        self._flush()

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Response):
                if self.ws.handshake_exc is not None:
                    self._fail(f"handshake {event.status_code}")
            elif isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                self.crowd.last_frame = now
                if bytes(event.data).startswith(COMMENT):
                    got = json.loads(bytes(event.data))
                    self.received.append((got["id"], got["seq"], now))
                elif not self.hello.done():
                    self.hello.set_result(None)
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        code = self.ws.close_code
        self._fail(f"closed {code}" if code is not None else "connection lost")

    def _fail(self, why: str) -> None:
        self.closed_with = self.closed_with or why
        if not self.hello.done():
            self.hello.set_exception(ConnectionError(why))

    def _flush(self) -> None:
        assert self.transport is not None
        for chunk in self.ws.data_to_send():
            if chunk:
                self.transport.write(chunk)
            elif self.transport.can_write_eof():
                self.transport.write_eof()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Crowd:
    """A generator process's viewers, driven by the bench's commands over a pipe."""

    def __init__(self, compression: bool) -> None:
        self.compression = compression
        self.viewers: list[Viewer] = []
        self.last_frame = time.monotonic()
        self.cpu_at_start = 0.0

    async def connect(self, urls: list[str]) -> Counter[str]:
        """Opens every socket (a few at a time) and waits for each one's first frame."""
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(CONNECTS_AT_ONCE)
        outcomes: Counter[str] = Counter()

        async def one(url: str) -> None:
            async with gate:
                viewer = Viewer(url, self.compression, self)
                try:
                    uri = parse_uri(url)
                    await loop.create_connection(lambda: viewer, uri.host, uri.port)
                    await asyncio.wait_for(viewer.hello, REQUEST_TIMEOUT_S)
                    self.viewers.append(viewer)
                    outcomes["connected"] += 1
                except (OSError, ConnectionError, TimeoutError) as exc:
                    outcomes[str(exc) or type(exc).__name__] += 1
                    viewer.close()

        await asyncio.gather(*(one(url) for url in urls))
        return outcomes

    async def settle(self, timeout_s: float) -> float:
        """Waits until no frame has come for QUIET_S (the joins' viewer counts are out)."""
        started = time.monotonic()
        while time.monotonic() - self.last_frame < QUIET_S \
                and time.monotonic() - started < timeout_s:
            await asyncio.sleep(0.1)
        return time.monotonic() - started

    async def start(self) -> None:
        for viewer in self.viewers:
            viewer.received.clear()
        self.cpu_at_start = time.process_time()

    async def collect(self, sent: dict[int, float], deadline: float) -> dict[str, Any]:
        """Waits (until `deadline`, monotonic) for every open viewer to have every message,
        then counts: latencies from each message's approval, and what went wrong."""
        expected = len(sent)
        while time.monotonic() < deadline and any(
                len(v.received) < expected and v.closed_with is None for v in self.viewers):
            await asyncio.sleep(0.05)
        latencies: list[float] = []
        problems: Counter[str] = Counter()
        last = 0.0
        for viewer in self.viewers:
            seen: set[int] = set()
            seqs = [seq for _id, seq, _t in viewer.received]
            if seqs != sorted(seqs):
                problems["out of order"] += 1
            for message_id, _seq, at in viewer.received:
                if message_id in seen:
                    problems["duplicate"] += 1
                    continue
                seen.add(message_id)
                if message_id in sent:
                    latencies.append(at - sent[message_id])
                    last = max(last, at)
            problems["missing"] += len(set(sent) - seen)
            if viewer.closed_with is not None:
                problems[viewer.closed_with] += 1
        return {"latencies": latencies, "problems": problems, "last": last,
                "cpu_s": time.process_time() - self.cpu_at_start}

    async def close(self) -> None:
        for viewer in self.viewers:
            viewer.close()
        await asyncio.sleep(0.5)


def generator_main(pipe: Connection, compression: bool) -> None:
    """A load-generator process: runs the bench's commands on its crowd until `close`."""
    async def serve_commands() -> None:
        loop = asyncio.get_running_loop()
        crowd = Crowd(compression)
        while True:
            command, args = await loop.run_in_executor(None, pipe.recv)
            pipe.send(await getattr(crowd, command)(*args))
            if command == "close":
                return

    try:
        import uvloop
    except ImportError:
        asyncio.run(serve_commands())
    else:
        uvloop.run(serve_commands())


class Generators:
    """The load-generator processes, each with its share of the viewers."""

    def __init__(self, count: int, compression: bool) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes = []
        for _ in range(count):
            ours, theirs = context.Pipe()
            process = context.Process(target=generator_main, args=(theirs, compression),
                                      daemon=True)
            process.start()
            self.pipes.append(ours)
            self.processes.append(process)

    async def ask(self, command: str, per_process: list[tuple[Any, ...]] | None = None,
                  *args: Any) -> list[Any]:
        loop = asyncio.get_running_loop()
        for index, pipe in enumerate(self.pipes):
            pipe.send((command, per_process[index] if per_process else args))
        return [await loop.run_in_executor(None, pipe.recv) for pipe in self.pipes]

    async def connect(self, urls: list[str]) -> Counter[str]:
        shares = [(urls[i::len(self.pipes)],) for i in range(len(self.pipes))]
        total: Counter[str] = Counter()
        for outcome in await self.ask("connect", shares):
            total.update(outcome)
        return total

    async def close(self) -> None:
        await self.ask("close")
        for process in self.processes:
            process.join(timeout=10)


# One run: a server, its viewers, the approvals -------------------------------------------------

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


# The report --------------------------------------------------------------------------------------

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
