"""The deployed site (deploy/nginx/kaifang.conf, kaifang-rtmp.conf) in front of two real
`kaifang serve` processes, as a citizen, a host and the person on call meet it: over HTTPS with
the site's own host name, pages, a registration, both room sockets, HLS with its caching, the
client address the rate limits count, RTMP through the stream proxy, and logs without tokens.

nginx and the two processes start once (most of the time taken), for one test whose steps
each make their own sessions: a module-scoped fixture would start them again on every
pytest-xdist worker that takes one of several tests. On SQLite the processes share the file;
with KAIFANG_TEST_DATABASE_URL and KAIFANG_TEST_REDIS_URL they run on PostgreSQL and Redis as a
district would (the `settings` fixture's)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from server.config import Settings
from server.db import get_engine
from tests.conftest import (
    PASSWORD,
    TEST_SECRET_KEY,
    event_body,
    make_user,
)
from tests.deploy.nginx import (
    RTMP,
    SITE,
    Nginx,
    free_port,
    make_cert,
    render_rtmp,
    render_site,
    require_nginx,
    start_nginx,
)
from tests.deploy.tls_socket import SerialTLS
from tests.streaming.test_media_access import fake_recording

HOST = "kaifang.test"
ALIAS = "www.kaifang.test"  # KAIFANG_ALLOWED_HOSTS: the site under a second name
KAIFANG = Path(sys.executable).parent / "kaifang"
# Seconds for a request or a socket to answer: generous, as the suite runs beside it.
TIMEOUT = 30
PER_ADDRESS = 2


@dataclass
class Deployed:
    nginx: Nginx
    settings: Settings
    cert: Path
    rtmp_port: int
    app_ports: list[int]
    processes: list[subprocess.Popen[bytes]]

    @property
    def public_url(self) -> str:
        return f"https://{HOST}:{self.nginx.https_port}"

    def client(self, source: str = "127.0.0.1") -> httpx.Client:
        """A browser at `source` (a loopback address of its own: another citizen), asking for
        the site by its name."""
        context = ssl.create_default_context(cafile=str(self.cert))
        transport = httpx.HTTPTransport(local_address=source, verify=context)
        return httpx.Client(base_url=self.nginx.https_url, transport=transport,
                            headers={"Host": f"{HOST}:{self.nginx.https_port}"},
                            timeout=TIMEOUT, follow_redirects=False)

    def socket(self, path: str, origin: str | None = None, cookie: str | None = None,
               host: str = HOST) -> ClientConnection:
        """A websocket to `path` through nginx over TLS, as a page of `origin` opens it. The TLS
        is SerialTLS's, not the client's own (`wss://`): that one let the client's two threads
        into one TLS session at once, and about one socket in 200 hung (tls_socket.py)."""
        context = ssl.create_default_context(cafile=str(self.cert))
        context.check_hostname = False  # the certificate names HOST only
        sock = socket.create_connection(("127.0.0.1", self.nginx.https_port), timeout=TIMEOUT)
        return connect(f"ws://{host}:{self.nginx.https_port}{path}",
                       sock=SerialTLS(sock, context, host),  # type: ignore[arg-type]
                       origin=origin,  # type: ignore[arg-type]
                       additional_headers={"Cookie": cookie} if cookie else None,
                       open_timeout=TIMEOUT)

    def staff(self, role: str, unit: str | None = None) -> httpx.Client:
        """A member of staff signed in through the site (the cookie is Secure)."""
        name = f"{role}-{unit or 'x'}-{time.monotonic_ns()}"
        with Session(get_engine(self.settings.sqlalchemy_url)) as db:
            make_user(db, name, role, unit)
        client = self.client()
        signed_in = client.post("/api/session", json={"username": name, "password": PASSWORD})
        assert signed_in.status_code == 200, signed_in.text
        client.headers["X-CSRF-Token"] = signed_in.json()["csrf_token"]
        return client


def _wait_until_up(ports: list[int], processes: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 60
    waiting = set(ports)
    while waiting:
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"an app process stopped with {process.returncode}")
        for port in list(waiting):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    waiting.discard(port)
        if time.monotonic() > deadline:
            raise RuntimeError(f"app processes on {sorted(waiting)} did not start")
        time.sleep(0.05)


@pytest.fixture
def deployed(settings: Settings, tmp_path: Path) -> Iterator[Deployed]:
    """nginx with the site, in front of two `kaifang serve` processes on the test's database
    (and Redis, in the second pass)."""
    require_nginx()
    folder = tmp_path / "site"
    folder.mkdir()
    app_ports = [free_port(), free_port()]
    https_port, http_port, rtmp_port, rtmps_port = (free_port() for _ in range(4))
    app_rtmp_port = free_port()
    env = {**os.environ,
           "KAIFANG_DATA_DIR": str(settings.data_dir),
           "KAIFANG_DATABASE_URL": settings.sqlalchemy_url,
           "KAIFANG_SECRET_KEY": TEST_SECRET_KEY,
           "KAIFANG_PUBLIC_URL": f"https://{HOST}:{https_port}",
           "KAIFANG_TRUSTED_PROXIES": "127.0.0.1",
           "KAIFANG_ALLOWED_HOSTS": ALIAS,
           "KAIFANG_COOKIE_SECURE": "true",
           "KAIFANG_EMBEDDED_WORKER": "false",
           "KAIFANG_REGISTRATION_LIMIT_PER_ADDRESS": str(PER_ADDRESS),
           "KAIFANG_REGISTRATION_LIMIT_PER_PHONE": "0",
           # As deploy/kaifang.env.example: every process the same port, the first takes it.
           "KAIFANG_RTMP_PORT": str(app_rtmp_port),
           "KAIFANG_RTMP_HOST": "127.0.0.1",
           "KAIFANG_RTMP_PUBLIC_URL": f"rtmp://{HOST}:{rtmp_port}/live"}
    env.pop("KAIFANG_REDIS_URL", None)
    if settings.redis_url:
        env["KAIFANG_REDIS_URL"] = settings.redis_url
    processes = []
    logs = []
    try:
        for port in app_ports:
            log = (folder / f"app-{port}.log").open("wb")
            logs.append(log)
            processes.append(subprocess.Popen(
                [str(KAIFANG), "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=env, stdout=log, stderr=subprocess.STDOUT))
        cert, key = make_cert(folder, HOST)
        site = render_site(SITE.read_text(), app_ports, folder / "nginx", https_port, http_port,
                           cert, key, server_name=HOST)
        rtmp = render_rtmp(RTMP.read_text(), app_rtmp_port, rtmp_port, rtmps_port, cert, key)
        with start_nginx(folder / "nginx", site, https_port, http_port, rtmp) as nginx:
            _wait_until_up(app_ports, processes)
            yield Deployed(nginx, settings, cert, rtmp_port, app_ports, processes)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        for log in logs:
            log.close()
        get_engine(settings.sqlalchemy_url).dispose()


def _published(admin: httpx.Client, body: dict[str, Any]) -> int:
    created = admin.post("/api/events", json=body)
    assert created.status_code == 201, created.text
    event_id = int(created.json()["id"])
    for status in ("pending_review", "published"):
        moved = admin.post(f"/api/events/{event_id}/status", json={"status": status})
        assert moved.status_code == 200, moved.text
    return event_id


def _body(deployed: Deployed, **overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    times = {"starts_at": (now + timedelta(days=5)).isoformat(),
             "ends_at": (now + timedelta(days=5, hours=2)).isoformat(),
             "registration_opens_at": (now - timedelta(days=1)).isoformat(),
             "registration_closes_at": (now + timedelta(days=4)).isoformat()}
    with Session(get_engine(deployed.settings.sqlalchemy_url)) as db:
        return event_body(db, **{**times, **overrides})


def _plain_http_is_sent_to_https(deployed: Deployed) -> None:
    answer = httpx.get(f"http://127.0.0.1:{deployed.nginx.http_port}/events?q=1",
                       headers={"Host": HOST})
    assert answer.status_code == 301
    assert answer.headers["location"] == \
        f"https://{HOST}:{deployed.nginx.https_port}/events?q=1"


def _portal_links_to_the_public_address(deployed: Deployed) -> None:
    admin = deployed.staff("admin")
    event_id = _published(admin, _body(deployed))
    with deployed.client() as citizen:
        portal = citizen.get("/")
        assert portal.status_code == 200 and "text/html" in portal.headers["content-type"]
        assert portal.headers["strict-transport-security"]
        calendar = citizen.get(f"/events/{event_id}.ics")
        assert calendar.status_code == 200
        # Links point at the public address, never at an app process's 127.0.0.1:800N.
        assert f"{deployed.public_url}/events/{event_id}" in calendar.text.replace("\r\n ", "")
        assert "127.0.0.1" not in calendar.text
        # The app's own rule on host names holds behind nginx: a name it does not serve is
        # refused, whatever nginx forwarded.
        stranger = citizen.get("/", headers={"Host": "evil.example"})
        assert stranger.status_code == 400 and stranger.json()["error"] == "bad_host"
        # Every request through the site comes from nginx's address, which the metrics'
        # allow list holds: the site itself must not pass them on.
        assert citizen.get("/metrics").status_code == 404


def _each_citizen_has_own_quota_and_cannot_forge_another(deployed: Deployed) -> None:
    """The limit per address counts the citizen nginx saw, whatever X-Forwarded-For the citizen
    sends: two citizens (two addresses) each get PER_ADDRESS registrations, a forged header
    buys no more."""
    admin = deployed.staff("admin")
    event_id = _published(admin, _body(deployed, capacity=50))
    phones = iter(f"1391234{n:04d}" for n in range(100))

    def register(citizen: httpx.Client, forged: str | None = None) -> httpx.Response:
        headers = {"X-Forwarded-For": forged} if forged else {}
        return citizen.post(f"/api/events/{event_id}/registrations", headers=headers,
                            json={"name": "张三", "phone": next(phones), "consent": True})

    with deployed.client("127.0.0.2") as one, deployed.client("127.0.0.3") as two:
        first = [register(one) for _ in range(PER_ADDRESS)]
        assert [answer.status_code for answer in first] == [201] * PER_ADDRESS
        refused = register(one)
        assert refused.status_code == 429 and refused.json()["error"] == "too_many_requests"
        assert register(one, forged="203.0.113.7").status_code == 429
        assert register(one, forged="127.0.0.1").status_code == 429  # nginx's own address
        # The second citizen, forging the first one's address, still counts as itself.
        assert [register(two, forged="127.0.0.2").status_code
                for _ in range(PER_ADDRESS)] == [201] * PER_ADDRESS
        assert register(two).status_code == 429
        ticket = one.get(f"/api/registrations/{first[0].json()['manage_token']}")
        assert ticket.status_code == 200
    log = deployed.nginx.access_log()
    assert f"/api/events/{event_id}/registrations 201" in log
    for secret in [answer.json()["manage_token"] for answer in first] + ["13912340000",
                                                                         "127.0.0.2", "张三"]:
        assert secret not in log


def _bodies_are_small_except_where_recordings_are_uploaded(deployed: Deployed) -> None:
    admin = deployed.staff("admin")
    event_id = _published(admin, _body(deployed))
    large = b"x" * (3 * 1024 * 1024)  # over nginx's 2 MB for JSON, far under the upload limit
    refused = admin.post("/api/events", content=large,
                         headers={"Content-Type": "application/json"})
    assert refused.status_code == 413 and refused.json()["error"] == "too_large"
    # The app's own limit (1 MB) answers between the two, in the same shape.
    app_refused = admin.post("/api/events", content=large[:1_500_000],
                             headers={"Content-Type": "application/json"})
    assert app_refused.status_code == 413 and app_refused.json()["error"] == "too_large"
    # An upload path streams to the app, which reads the file and judges it (not a video).
    upload = admin.post(f"/api/events/{event_id}/recording",
                        files={"file": ("recording.mp4", large, "video/mp4")})
    assert upload.status_code in (202, 422), upload.text
    assert upload.json().get("error") != "too_large"


def _frame(ws: ClientConnection) -> dict[str, Any]:
    while True:
        frame = dict(json.loads(ws.recv(timeout=TIMEOUT)))
        if frame["type"] != "viewers":
            return frame


def _a_viewer_and_a_host_use_the_live_room_through_the_site(deployed: Deployed) -> None:
    admin = deployed.staff("admin")
    now = datetime.now(UTC)
    event_id = _published(admin, _body(
        deployed, mode="online", venue="", address="", moderation="pre",
        starts_at=(now + timedelta(minutes=10)).isoformat(),
        ends_at=(now + timedelta(hours=2)).isoformat(),
        registration_closes_at=(now + timedelta(minutes=5)).isoformat()))
    assert admin.post(f"/api/events/{event_id}/status",
                      json={"status": "live"}).status_code == 200
    with deployed.client() as citizen:
        joined = citizen.post(f"/api/events/{event_id}/viewers", json={"nickname": "居民"})
        assert joined.status_code == 201, joined.text
    token = joined.json()["viewer_token"]
    cookie = "; ".join(f"{name}={value}" for name, value in admin.cookies.items())
    own = deployed.public_url
    with deployed.socket(f"/ws/events/{event_id}/host", origin=own, cookie=cookie) as host, \
            deployed.socket(f"/ws/events/{event_id}?token={token}", origin=own) as viewer:
        assert _frame(host)["type"] == "hello"
        hello = _frame(viewer)
        assert hello["type"] == "hello" and hello["viewer"]["nickname"] == "居民"
        viewer.send(json.dumps({"type": "comment", "text": "路灯坏了", "client_id": "a"}))
        held = _frame(viewer)
        assert held["type"] == "held"
        if deployed.settings.redis_url:  # across processes the room needs Redis
            queued = _frame(host)
            assert queued["type"] == "queued" and queued["message"]["id"] == held["id"]
        approved = admin.post(f"/api/comments/{held['id']}/moderation",
                              json={"action": "approve"})
        assert approved.status_code == 200, approved.text
        if deployed.settings.redis_url:
            comment = _frame(viewer)
            assert comment["type"] == "comment" and comment["text"] == "路灯坏了"
    # A page of the site's second name opens it too: the app knows the page was on HTTPS
    # (X-Forwarded-Proto), though nginx spoke plain HTTP to it.
    alias = f"https://{ALIAS}:{deployed.nginx.https_port}"
    with deployed.socket(f"/ws/events/{event_id}", origin=alias, host=ALIAS) as listener:
        assert _frame(listener)["type"] == "hello"
    # A page of another site may not open the room's socket through the proxy either.
    with deployed.socket(f"/ws/events/{event_id}", origin="https://evil.example") as foreign:
        with pytest.raises(ConnectionClosed):
            foreign.recv(timeout=TIMEOUT)
        assert foreign.close_code == 4403
    assert token not in deployed.nginx.access_log()


def _hls_is_cached_for_the_public_and_never_a_staff_preview(deployed: Deployed) -> None:
    admin = deployed.staff("admin")
    premiere = datetime.now(UTC) - timedelta(hours=2)
    broadcast = _body(deployed, kind="broadcast", mode="online", venue="", address="",
                      starts_at=(premiere - timedelta(minutes=5)).isoformat(),
                      ends_at=(premiere + timedelta(hours=1)).isoformat(),
                      registration_opens_at=(premiere - timedelta(days=2)).isoformat(),
                      registration_closes_at=(premiere - timedelta(hours=1)).isoformat(),
                      premiere_at=premiere.isoformat())
    public_id = _published(admin, broadcast)
    draft = admin.post("/api/events", json=broadcast)
    assert draft.status_code == 201
    with Session(get_engine(deployed.settings.sqlalchemy_url), expire_on_commit=False) as db:
        key = fake_recording(db, deployed.settings, public_id)
        draft_key = fake_recording(db, deployed.settings, int(draft.json()["id"]))

    with deployed.client() as citizen:
        playback = citizen.get(f"/api/events/{public_id}/playback").json()
        assert playback["state"] == "vod"
        playlist_url = playback["hls_url"].replace("master.m3u8", "360p/index.m3u8")
        playlist = citizen.get(playlist_url)
        assert playlist.status_code == 200 and "#EXTM3U" in playlist.text
        assert playlist.headers["cache-control"] in ("public, max-age=10", "public, max-age=1")
        segment_url = f"/media/hls/{key}/360p/seg_00000.ts"
        segment = citizen.get(segment_url)
        assert segment.status_code == 200
        assert segment.headers["cache-control"] == "public, max-age=31536000, immutable"
        # The second citizen's copy comes from nginx's cache, not from an app process.
        assert citizen.get(segment_url).headers["x-cache-status"] == "HIT"
        assert citizen.get(playlist_url).headers["x-cache-status"] in ("HIT", "UPDATING")

        # A draft's recording: its unit previews it, and nginx keeps no copy for the public.
        preview_url = f"/media/hls/{draft_key}/360p/seg_00000.ts"
        preview = admin.get(preview_url)
        assert preview.status_code == 200
        assert preview.headers["cache-control"] == "private, no-store"
        assert preview.headers["x-cache-status"] == "BYPASS"
        assert citizen.get(preview_url).status_code == 404
        assert citizen.get(f"/media/hls/{draft_key}/360p/index.m3u8").status_code == 404
    log = deployed.nginx.access_log()
    assert key not in log and draft_key not in log


def _encoders_reach_the_rtmp_listener_through_the_stream_proxy(deployed: Deployed) -> None:
    """Both processes tell the console the same RTMP address (nginx's), and an encoder's
    handshake through nginx is answered by the app process that holds the port."""
    admin = deployed.staff("admin")
    event_id = _published(admin, _body(deployed, mode="online", venue="", address=""))
    for _ in deployed.app_ports:  # round robin: each process answers once
        issued = admin.post(f"/api/events/{event_id}/ingest")
        assert issued.status_code == 201, issued.text
        assert issued.json()["rtmp_enabled"] is True
        assert issued.json()["rtmp_url"] == f"rtmp://{HOST}:{deployed.rtmp_port}/live"
    with socket.create_connection(("127.0.0.1", deployed.rtmp_port), timeout=TIMEOUT) as rtmp:
        rtmp.sendall(b"\x03" + bytes(1536))  # C0 (version 3) and C1
        answer = b""
        while len(answer) < 1 + 1536:
            chunk = rtmp.recv(4096)
            assert chunk, "the stream proxy closed the connection"
            answer += chunk
    assert answer[0] == 3  # S0: the app's RTMP server answered


def _only_the_proxy_may_say_a_socket_came_over_https(deployed: Deployed) -> None:
    """X-Forwarded-Proto counts from a trusted proxy (KAIFANG_TRUSTED_PROXIES) only: a client
    reaching an app process directly cannot pass a page of https://… off as its own."""
    port = deployed.app_ports[0]
    admin = deployed.staff("admin")
    event_id = _published(admin, _body(deployed, mode="online", venue="", address=""))
    page = f"https://{ALIAS}:{port}"

    def open_from(source: str) -> ClientConnection:
        sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT,
                                        source_address=(source, 0))
        return connect(f"ws://{ALIAS}:{port}/ws/events/{event_id}", sock=sock, origin=page,
                       additional_headers={"X-Forwarded-Proto": "https"},
                       open_timeout=TIMEOUT)

    with open_from("127.0.0.1") as proxied:
        assert _frame(proxied)["type"] == "hello"
    with open_from("127.0.0.2") as direct:
        with pytest.raises(ConnectionClosed):
            direct.recv(timeout=TIMEOUT)
        assert direct.close_code == 4403


def _a_stopped_process_is_skipped_and_none_left_is_said_in_json(deployed: Deployed) -> None:
    """One process stopped (a restart, a crash): citizens do not notice, nginx goes on to the
    other. Every process stopped: the app's error shape, and when to try again."""
    first, second = deployed.processes
    first.terminate()
    first.wait(TIMEOUT)
    with deployed.client() as citizen:
        assert [citizen.get("/api/events").status_code for _ in range(4)] == [200] * 4
        second.terminate()
        second.wait(TIMEOUT)
        down = citizen.get("/api/events")
    assert down.status_code == 503 and down.json()["error"] == "unavailable"
    assert down.headers["retry-after"] == "5"


def test_the_site_serves_citizens_hosts_and_encoders_through_two_processes(deployed):
    """One nginx and two processes for every step (starting them is most of the time); each
    step makes its own sessions, and says what it checks in its docstring."""
    _plain_http_is_sent_to_https(deployed)
    _portal_links_to_the_public_address(deployed)
    _each_citizen_has_own_quota_and_cannot_forge_another(deployed)
    _bodies_are_small_except_where_recordings_are_uploaded(deployed)
    _a_viewer_and_a_host_use_the_live_room_through_the_site(deployed)
    _hls_is_cached_for_the_public_and_never_a_staff_preview(deployed)
    _encoders_reach_the_rtmp_listener_through_the_stream_proxy(deployed)
    _only_the_proxy_may_say_a_socket_came_over_https(deployed)
    _a_stopped_process_is_skipped_and_none_left_is_said_in_json(deployed)
