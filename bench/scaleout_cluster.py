"""bench/scaleout.py's cluster: PostgreSQL, Redis, two `kaifang serve` processes, a worker and
nginx with the project's site, started for a run and stopped after it; and the hand-written
POST and the per-process CPU its parts measure with."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from harness import (
    BIN,
    HOST,
    free_port,
    fresh_pg_database,
    group_cpu,
    server_env,
    start_server,
    stop_server,
    wait_ready,
)
from scaleout_site import Site, front_exchange, has_project_site, start_nginx
from sqlalchemy import Connection, insert

ROOT = Path(__file__).resolve().parents[1]
LOGS = Path(tempfile.gettempdir()) / "kaifang-bench-logs"
ADMIN, HOST_USER, PASSWORD = "bench-admin", "bench-host", "bench-password-42"


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


def insert_viewer(conn: Connection, event_id: int, nickname: str, now: datetime) -> int:
    """A viewer of the room, written straight to the database (the setup of a part, the
    author of the messages it writes there)."""
    from streaming.models import Viewer

    table = Viewer.__table__  # type: ignore[attr-defined]
    return int(conn.execute(insert(table).returning(table.c.id), {
        "event_id": event_id, "nickname": nickname, "created_at": now,
        "address_key": ""}).scalar_one())
