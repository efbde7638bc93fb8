"""What a benchmark of the real server needs: start it, fire a burst of HTTP/1.1 requests
released together, and measure latencies and where the CPU went. See bench/README.md."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
REQUEST_TIMEOUT_S = 60.0


@dataclass
class Burst:
    """One burst: latencies in seconds from the common release, answers, CPU spent."""

    latencies: list[float]
    answers: Counter[str]
    bodies: list[Any]
    server_loop_cpu_s: float = 0.0  # the event-loop (main) thread of each server process
    server_thread_cpu_s: float = 0.0  # every other thread: the thread pool running endpoints
    client_cpu_s: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / max(self.latencies)

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]

    def per_request_ms(self, seconds: float) -> float:
        return 1000 * seconds / len(self.latencies)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def fresh_pg_database(url: str) -> None:
    base, name = url.rsplit("/", 1)
    admin = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()


def server_env(source: Path, data_dir: Path, database_url: str | None,
               password: str) -> dict[str, str]:
    """The server's environment: ours without any KAIFANG_ setting, then the run's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAIFANG_")}
    env.update(KAIFANG_DATA_DIR=str(data_dir), KAIFANG_PASSWORD=password, PYTHONPATH=str(source),
               NO_PROXY=HOST)
    if database_url:
        env["KAIFANG_DATABASE_URL"] = database_url
    return env


def start_server(source: Path, env: dict[str, str], port: int, workers: int, log: Path
                 ) -> subprocess.Popen[bytes]:
    """`kaifang serve`, as in production: with --workers, uvicorn's process manager."""
    argv = [str(BIN / "kaifang"), "serve", "--host", HOST, "--port", str(port),
            "--workers", str(workers)]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        # A session of its own: the whole group (uvicorn's workers too) is ended together.
        return subprocess.Popen(argv, cwd=source, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop_server(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


async def wait_ready(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=base, timeout=2, trust_env=False) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited:\n{log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError("the server did not answer /healthz within 60 s")


def server_cpu(group: int) -> tuple[float, float]:
    """CPU seconds used so far by the server's process group: (event loops, other threads).
    Unlike wall time, CPU time hardly depends on what else the machine is running."""
    tick = os.sysconf("SC_CLK_TCK")
    loop = other = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):  # it ended meanwhile
            if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[2]) != group:
                continue
            for task in (proc / "task").iterdir():
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                used = (int(fields[11]) + int(fields[12])) / tick
                if task.name == proc.name:
                    loop += used
                else:
                    other += used
    return loop, other


def group_cpu(group: int) -> float:
    """CPU seconds used so far by the server's process group, threads that ended included
    (a process's own stat counts them; server_cpu's per-thread sum loses them)."""
    tick = os.sysconf("SC_CLK_TCK")
    used = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):  # it ended meanwhile
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == group:
                used += (int(fields[11]) + int(fields[12])) / tick
    return used


# The burst ----------------------------------------------------------------------------------

async def exchange(port: int, method: str, path: str, body: bytes | None,
                   forwarded_for: str | None = None) -> tuple[int, bytes]:
    """One HTTP/1.1 request on a connection of its own. Deliberately minimal: httpx spends
    ~1.4 ms of CPU per request here, as much as the server's whole /healthz, and on two
    cores the client's CPU is taken from the server (see bench/README.md)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n"
        if forwarded_for is not None:  # as nginx on this machine would say it
            head += f"X-Forwarded-For: {forwarded_for}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        writer.write(head.encode() + b"\r\n" + (body or b""))
        response = await reader.read()  # to EOF: the server closes after its answer
    finally:
        writer.close()
    status_line, _, rest = response.partition(b"\r\n")
    return int(status_line.split(b" ", 2)[1]), rest.partition(b"\r\n\r\n")[2]


async def burst(port: int, count: int, method: str, path: str,
                body: Callable[[int], bytes] | None = None, group: int | None = None,
                citizens: str | None = None,
                send: Callable[[int, bytes | None], Awaitable[tuple[int, bytes]]] | None = None,
                ) -> Burst:
    """`count` requests released together behind one event, one task and connection each.
    With `citizens` (an address prefix such as "10.1"), each request comes from an address of
    its own through the trusted proxy 127.0.0.1: many citizens, not one client. `send` makes
    request `index` with its body some other way (bench/scaleout.py: through nginx)."""
    payloads = [body(i) if body else None for i in range(count)]
    addresses = [f"{citizens}.{i // 256 % 256}.{i % 256}" if citizens else None
                 for i in range(count)]
    go = asyncio.Event()
    latencies = [0.0] * count
    answers: Counter[str] = Counter()
    bodies: list[Any] = []
    released = 0.0

    async def one(index: int) -> None:
        await go.wait()
        try:
            status, raw = await asyncio.wait_for(
                send(index, payloads[index]) if send is not None
                else exchange(port, method, path, payloads[index], addresses[index]),
                REQUEST_TIMEOUT_S)
            answer: Any = json.loads(raw) if raw else None
            outcome = str(status)
            if status >= 400 and isinstance(answer, dict):
                outcome += f" {answer.get('error', '')}".rstrip()
            bodies.append(answer)
        except (OSError, ValueError, IndexError, TimeoutError) as exc:
            outcome = type(exc).__name__
        latencies[index] = time.perf_counter() - released
        answers[outcome] += 1

    tasks = [asyncio.create_task(one(i)) for i in range(count)]
    await asyncio.sleep(0.2)  # every task is parked on the event
    server_before = server_cpu(group) if group else (0.0, 0.0)
    client_before = time.process_time()
    released = time.perf_counter()
    go.set()
    await asyncio.gather(*tasks)
    client_cpu = time.process_time() - client_before
    server_after = server_cpu(group) if group else (0.0, 0.0)
    return Burst(latencies, answers, bodies, server_after[0] - server_before[0],
                 server_after[1] - server_before[1], client_cpu)


# The report ---------------------------------------------------------------------------------

def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def describe_machine(pg_url: str | None) -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine())
    out = (f"nproc {os.cpu_count()} ({cpu}), Python {platform.python_version()}, "
           f"SQLite {sqlite3.sqlite_version}")
    if pg_url:
        engine = create_engine(pg_url.rsplit("/", 1)[0] + "/postgres")
        try:
            with engine.connect() as conn:
                out += f", PostgreSQL {conn.execute(text('SHOW server_version')).scalar()}"
        finally:
            engine.dispose()
    return out


def describe_code(source: Path) -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=source,
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=source, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return str(source)
    return f"{commit}" + (" with uncommitted changes" if dirty else "")
