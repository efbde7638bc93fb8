"""Real parts for the network fault tests: app processes (`kaifang serve`, as production runs
it) on free ports, a private Redis and a private PostgreSQL cluster that a test may stop, kill
and start again without touching the machine's shared ones (other suites use those)."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets
from sqlalchemy import insert, select

from events.timeutil import utcnow
from server.config import Settings
from streaming.models import LiveMessage

HOST = "127.0.0.1"
BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str,
              every_s: float = 0.02) -> Any:
    """Polls `condition` until it is truthy (its value is returned) or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(every_s)


def app_env(settings: Settings, redis_url: str | None = None, **more: str) -> dict[str, str]:
    """An app process's environment: ours without any KAIFANG_ variable, then the test's
    settings (its data dir and database; Redis as given), no registration limits, no RTMP
    listener and no embedded worker (the worker is another helper's fault)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAIFANG_")}
    env.update(KAIFANG_DATA_DIR=str(settings.data_dir),
               KAIFANG_SECRET_KEY=settings.secret_key or "",
               KAIFANG_PUBLIC_URL=settings.public_url,
               KAIFANG_REGISTRATION_LIMIT_PER_ADDRESS="0",
               KAIFANG_REGISTRATION_LIMIT_PER_PHONE="0",
               KAIFANG_RTMP_PORT="0", KAIFANG_EMBEDDED_WORKER="false",
               KAIFANG_TRUSTED_PROXIES=HOST, PYTHONPATH=str(ROOT), NO_PROXY=HOST)
    if settings.database_url:
        env["KAIFANG_DATABASE_URL"] = settings.database_url
    if redis_url:
        env["KAIFANG_REDIS_URL"] = redis_url
    env.update(more)
    return env


class AppProcess:
    """`kaifang serve` on a port of its own, in a process group of its own (so that a signal
    reaches it and nothing else), its output in a log file."""

    def __init__(self, env: dict[str, str], log: Path, port: int | None = None) -> None:
        self.env = env
        self.log = log
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}"

    def start(self) -> AppProcess:
        argv = [str(BIN / "kaifang"), "serve", "--host", HOST, "--port", str(self.port)]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the app process exited:\n{self.output()[-3000:]}")
        try:
            return httpx.get(self.url + "/healthz", timeout=1, trust_env=False).status_code \
                == 200
        except httpx.TransportError:
            return False

    def wait_healthy(self, timeout_s: float = 40) -> AppProcess:
        wait_for(self.healthy, timeout_s, f"{self.url}/healthz", every_s=0.05)
        return self

    def send_signal(self, signum: int) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def stop(self, signum: int = signal.SIGTERM, timeout_s: float = 20) -> int:
        """Sends `signum` and waits for the process to end; its exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.send_signal(signum)
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
            raise AssertionError(f"the app process did not stop within {timeout_s:g} s "
                                 f"of signal {signum}:\n{self.output()[-3000:]}") from None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def cpu_s(self) -> float:
        """CPU seconds the process (every thread) has used so far."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def threads(self) -> list[str]:
        """The names of the process's threads."""
        assert self.process is not None
        return sorted((task / "comm").read_text().strip()
                      for task in Path(f"/proc/{self.process.pid}/task").iterdir())


class PrivateRedis:
    """A redis-server of the test's own on a free port (never the machine's shared one): it
    may be killed and started again on the same port."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> PrivateRedis:
        redis_server = shutil.which("redis-server")
        assert redis_server, "redis-server is missing (Debian's redis-server package)"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [redis_server, "--port", str(self.port), "--bind", HOST, "--dir", str(self.folder),
             "--save", "", "--appendonly", "no", "--logfile", str(self.folder / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for(self.answers, 10, f"redis-server on port {self.port}")
        return self

    def answers(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, signum: int = signal.SIGKILL) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signum)
        self.process.wait(timeout=10)


def postgres_bin() -> Path | None:
    """The newest PostgreSQL server programs installed (Debian's /usr/lib/postgresql/N/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit()
                   else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own (initdb in a temp dir, on a free port, its
    socket in that dir): it may be restarted, fast or immediate, without touching the shared
    one. As root the cluster runs as the `postgres` user (PostgreSQL refuses root)."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.port = free_port()
        # Not under pytest's tmp_path: its folders are private to root, and the server runs
        # as postgres.
        self.folder = Path(tempfile.mkdtemp(prefix="kaifang-pg-"))
        self.data = self.folder / "data"
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@{HOST}:{self.port}/{database}"

    def _run(self, *argv: str) -> None:
        command = [str(self.bin / argv[0]), *argv[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(argv[:2])} failed ({done.returncode}):\n"
                                 f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")

    def start(self) -> PrivatePostgres:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "--encoding=UTF8", "--locale=C", "--no-sync")
        # fsync off: a process that dies loses nothing the kernel has; only a power cut would.
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses={HOST} "
                   "-c fsync=off -c full_page_writes=off -c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data), "-o", options,
                  "-l", str(self.folder / "postgres.log"), "-w", "-t", "30", "start")
        return self

    def restart(self, mode: str = "fast") -> None:
        """`pg_ctl restart -m MODE`; returns once the server takes connections again."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode,
                  "-l", str(self.folder / "postgres.log"), "-w", "-t", "30", "restart")

    def stop(self) -> None:
        with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def log(self) -> str:
        path = self.folder / "postgres.log"
        return path.read_text(errors="replace") if path.exists() else ""


# ---- a live room's host and viewers ----------------------------------------------------------

def held_messages(db: Any, event_id: int, count: int) -> list[int]:
    """`count` messages waiting for a host (as viewers' messages in pre-moderation are)."""
    now = utcnow()
    db.execute(insert(LiveMessage), [  # type: ignore[arg-type]
        {"event_id": event_id, "kind": "comment", "author": f"观众{n}", "text": f"第{n}条",
         "client_id": f"c{n}", "state": "held", "pinned": False, "created_at": now,
         "address_key": ""} for n in range(1, count + 1)])
    db.commit()
    return list(db.scalars(select(LiveMessage.id).where(  # type: ignore[call-overload]
        LiveMessage.event_id == event_id).order_by(LiveMessage.id)))


class Host:
    """A host approving the queue over HTTP, on whichever process answers (a process that
    stopped mid-request may have approved it: a second try finds it `already_handled`)."""

    def __init__(self, staff_client: Any, ids: list[int]) -> None:
        self.headers = {"X-CSRF-Token": staff_client.headers["X-CSRF-Token"],
                        "Cookie": f"kaifang_session={staff_client.cookies.get('kaifang_session')}"}
        self.waiting = list(ids)
        self.approved: list[int] = []
        self.approved_at: list[float] = []  # monotonic, as each approval was answered
        self.statuses: list[int] = []

    async def approve(self, http: httpx.AsyncClient, urls: list[str]) -> None:
        message_id = self.waiting[0]
        for base in random.sample(urls, len(urls)):
            try:
                answer = await http.post(f"{base}/api/comments/{message_id}/moderation",
                                         json={"action": "approve"}, headers=self.headers)
            except httpx.TransportError:
                continue  # that process is down: the other
            self.statuses.append(answer.status_code)
            if answer.status_code in (200, 409):
                self.approved.append(self.waiting.pop(0))
                self.approved_at.append(time.monotonic())
            return

    async def run(self, http: httpx.AsyncClient, urls: Callable[[], list[str]],
                  stop: asyncio.Event, per_s: float) -> None:
        while not stop.is_set() and self.waiting:
            await self.approve(http, urls())
            await asyncio.sleep(1 / per_s)


# ---- viewers of a live room, as live.js is one ------------------------------------------------

# live.js: a room's pages coming back at once (not told a delay) spread 4 ms per viewer.
SPREAD_MS_PER_VIEWER = 4


@dataclass
class Viewer:
    """One page watching a room, doing what live.js does: it applies each change whose `pos`
    is its last + 1, drops one it has, re-reads from its own position (GET …/changes) when one
    is further on, and reconnects from its position after the delay the server named when it
    stopped (1012 `{"retry_ms": N}`), else with backoff and full jitter. Its address (as the
    proxy names it) is its own, as a real audience's is."""

    number: int
    event_id: int
    positions: list[int] = field(default_factory=list)  # applied, in order
    seqs: list[int] = field(default_factory=list)  # the comments among them
    last_pos: int = 0
    last_seq: int = 0
    watchers: int = 0
    attempt: int = 0
    tries: list[float] = field(default_factory=list)  # when each connection was tried
    hellos: list[tuple[float, str, bool]] = field(default_factory=list)  # (when, where, reset)
    closes: list[tuple[float, str, int | None, str]] = field(default_factory=list)
    caught_up: int = 0  # changes read over HTTP (a hole the socket left)
    doubles: int = 0  # frames the socket sent that the page had (through a re-read, or twice)

    @property
    def address(self) -> str:
        return f"10.19.{self.number // 250}.{self.number % 250 + 1}"

    async def watch(self, urls: Callable[[], list[str]], http: httpx.AsyncClient,
                    stop: asyncio.Event) -> None:
        """Until `stop`: connected to one of the processes `urls()` names (the first refusing,
        the next: as the proxy would), reconnecting as the page does."""
        while not stop.is_set():
            code: int | None = None
            reason = ""
            where = ""
            candidates = urls()
            random.shuffle(candidates)
            for base in candidates:
                where = base
                try:
                    code, reason = await self._session(base, http, stop)
                    break
                except (OSError, TimeoutError, websockets.InvalidHandshake):
                    code, reason = None, ""  # refused: the next process
            if stop.is_set():
                return
            self.closes.append((time.monotonic(), where, code, reason))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.delay_s(code, reason))

    async def _session(self, base: str, http: httpx.AsyncClient,
                       stop: asyncio.Event) -> tuple[int | None, str]:
        url = (base.replace("http://", "ws://") + f"/ws/events/{self.event_id}"
               f"?after={self.last_seq}&pos={self.last_pos}")
        self.tries.append(time.monotonic())
        async with websockets.connect(url, open_timeout=15, max_queue=None,
                                      additional_headers={"X-Forwarded-For": self.address}
                                      ) as ws:
            reading = asyncio.ensure_future(self._read(ws, base, http))
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not reading.done():
                reading.cancel()
                return 1000, ""
            reading.result()
        return ws.close_code, ws.close_reason or ""

    async def _read(self, ws: Any, base: str, http: httpx.AsyncClient) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in ws:
                frame = json.loads(raw)
                kind = frame["type"]
                if kind == "hello":
                    self.attempt = 0
                    self.hellos.append((time.monotonic(), base, bool(frame["reset"])))
                    if frame["reset"]:
                        self.last_pos = frame["last_pos"]
                elif kind == "viewers":
                    self.watchers = frame["count"]
                elif kind in ("comment", "removed", "pinned"):
                    await self._change(frame, base, http)

    async def _change(self, frame: dict[str, Any], base: str, http: httpx.AsyncClient) -> None:
        pos = frame["pos"]
        if pos <= self.last_pos:
            self.doubles += 1
        elif pos == self.last_pos + 1:
            self._apply(frame)
        else:  # a change was lost: read from our own position
            await self.catch_up(base, http)

    def _apply(self, frame: dict[str, Any]) -> None:
        self.positions.append(frame["pos"])
        self.last_pos = frame["pos"]
        if frame["type"] == "comment":
            self.seqs.append(frame["seq"])
            self.last_seq = frame["seq"]

    async def catch_up(self, base: str, http: httpx.AsyncClient) -> None:
        while True:
            answer = await http.get(f"{base}/api/events/{self.event_id}/changes",
                                    params={"after": self.last_pos, "limit": 200})
            answer.raise_for_status()
            frames = answer.json()["frames"]
            for frame in frames:
                if frame["pos"] == self.last_pos + 1:
                    self._apply(frame)
                    self.caught_up += 1
            if len(frames) < 200:
                return

    def delay_s(self, code: int | None, reason: str) -> float:
        """live.js's reconnectDelay."""
        self.attempt += 1
        if code == 1012 and self.attempt == 1:
            with contextlib.suppress(ValueError, TypeError, KeyError):
                named = json.loads(reason or "null")["retry_ms"]
                if isinstance(named, int | float) and named >= 0:
                    return float(min(named, 60000)) / 1000
        ceiling_ms = min(30000, max(1000 * 2 ** (self.attempt - 1),
                                    self.watchers * SPREAD_MS_PER_VIEWER))
        return random.random() * ceiling_ms / 1000
