"""nginx in front of bench/scaleout.py's app processes: Debian's nginx, run from a temporary
prefix, with the project's site (deploy/nginx/kaifang.conf over HTTPS with a self-signed
certificate, rendered by tests/deploy/nginx.py) when the tree has it, else a minimal equivalent
written here (HTTP; the same proxying: websockets upgraded, long-lived sockets, X-Forwarded-For
set). The main configuration is ours either way: more connections per worker than the tests'
(each proxied socket is two)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness import HOST, Burst, burst

NGINX = "/usr/sbin/nginx"

MINIMAL_SITE = """\
upstream kaifang_app {{
{servers}
    keepalive 64;
}}
map $http_upgrade $connection_upgrade {{
    default upgrade;
    ''      close;
}}
server {{
    listen 127.0.0.1:{port};
    client_max_body_size 2g;
    location /ws/ {{
        proxy_pass http://kaifang_app;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_read_timeout 1h;
        proxy_send_timeout 1h;
        proxy_buffering off;
    }}
    location / {{
        proxy_pass http://kaifang_app;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header X-Forwarded-Proto $scheme;
    }}
}}
"""

MAIN = """\
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
daemon off;
events {{
    worker_connections 20000;
}}
worker_rlimit_nofile 50000;
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
{site}
}}
"""


@dataclass
class Site:
    process: subprocess.Popen[bytes]
    port: int
    which: str  # what the report says of the site
    prefix: Path
    tls: ssl.SSLContext | None  # the client's context when the site serves HTTPS

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://127.0.0.1:{self.port}"

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGQUIT)  # graceful: workers finish, then exit
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def has_project_site(root: Path) -> bool:
    return (root / "deploy" / "nginx" / "kaifang.conf").exists() \
        and (root / "tests" / "deploy" / "nginx.py").exists()


def project_site(root: Path, port: int, upstreams: list[int], prefix: Path
                 ) -> tuple[str, ssl.SSLContext] | None:
    """The project's site (deploy/nginx/kaifang.conf) rendered by its own renderer
    (tests/deploy/nginx.py render_site) for these ports, with a self-signed certificate
    (its make_cert), and a client context trusting that certificate; None when `root` has
    not both."""
    template, renderer = root / "deploy" / "nginx" / "kaifang.conf", \
        root / "tests" / "deploy" / "nginx.py"
    if not has_project_site(root):
        return None
    spec = importlib.util.spec_from_file_location("kaifang_deploy_nginx", renderer)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    cert, key = module.make_cert(prefix, "kaifang.test")
    site = module.render_site(template.read_text(), upstreams=upstreams, folder=prefix,
                              https_port=port, http_port=free_port(), cert=cert, key=key,
                              server_name="kaifang.test")
    return str(site), ssl.create_default_context(cafile=str(cert))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_nginx(root: Path, port: int, upstreams: list[int], prefix: Path,
                workers: int = 1, use_project_site: bool = True) -> Site:
    """nginx in front of `upstreams` on 127.0.0.1:`port`: the project's site from `root` when
    it has one (HTTPS), else MINIMAL_SITE (HTTP); `nginx -t` first."""
    prefix.mkdir(parents=True, exist_ok=True)
    rendered = project_site(root, port, upstreams, prefix) if use_project_site else None
    if rendered is not None:
        site, tls = rendered
        which = (f"the project's site deploy/nginx/kaifang.conf from {root} (HTTPS, rendered by "
                 "tests/deploy/nginx.py)")
    else:
        tls = None
        which = "a minimal equivalent site of its own (bench/scaleout_site.py, HTTP)"
        site = MINIMAL_SITE.format(port=port, servers="\n".join(
            f"    server 127.0.0.1:{p};" for p in upstreams))
    (prefix / "kaifang.conf").write_text(site)
    conf = prefix / "nginx.conf"
    # Root's workers would run as nobody and could not write the prefix: they stay root here.
    conf.write_text(("user root;\n" if os.geteuid() == 0 else "") + MAIN.format(
        workers=workers, prefix=prefix, site=f"    include {prefix / 'kaifang.conf'};"))
    test = subprocess.run([NGINX, "-t", "-q", "-e", str(prefix / "error.log"), "-p", str(prefix),
                           "-c", str(conf)], capture_output=True, text=True)
    if test.returncode != 0:
        raise RuntimeError(f"nginx -t failed:\n{test.stderr}")
    process = subprocess.Popen([NGINX, "-e", str(prefix / "error.log"), "-p", str(prefix), "-c",
                                str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + 10
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited: {(prefix / 'error.log').read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            break
        if time.monotonic() > deadline:
            raise RuntimeError("nginx did not listen within 10 s")
        time.sleep(0.05)
    return Site(process, port, which, prefix, tls)


# A citizen through the site ---------------------------------------------------------------

def citizen_address(prefix: int, index: int) -> str:
    """A loopback address of its own for a citizen (Linux answers all of 127/8): through nginx
    the app sees the peer's address (the site sets X-Forwarded-For to it), as in production,
    so the limits per address count many citizens, not the bench."""
    return f"127.{prefix}.{index // 250 % 250}.{index % 250 + 1}"


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def open_front(site: Site, local: str) -> Connection:
    """A connection to nginx from address `local` (its TLS handshake done, with the project's
    site)."""
    return await asyncio.open_connection(HOST, site.port, ssl=site.tls, local_addr=(local, 0))


async def front_exchange(site: Site, method: str, path: str, body: bytes | None,
                         local: str, opened: Connection | None = None) -> tuple[int, bytes]:
    """One HTTP/1.1 request through nginx (HTTPS with the project's site) from address
    `local`, on a connection of its own (`opened`, or one opened now), read to EOF
    (harness.exchange, with TLS)."""
    reader, writer = opened or await open_front(site, local)
    try:
        head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{site.port}\r\nConnection: close\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        writer.write(head.encode() + b"\r\n" + (body or b""))
        response = await reader.read()
    finally:
        writer.close()
    status_line, _, rest = response.partition(b"\r\n")
    head_and_body = rest.partition(b"\r\n\r\n")
    payload = head_and_body[2]
    if b"transfer-encoding: chunked" in head_and_body[0].lower():
        payload = dechunk(payload)
    return int(status_line.split(b" ", 2)[1]), payload


def dechunk(data: bytes) -> bytes:
    out, at = b"", 0
    while True:
        line_end = data.index(b"\r\n", at)
        size = int(data[at:line_end].split(b";")[0], 16)
        if size == 0:
            return out
        out += data[line_end + 2:line_end + 2 + size]
        at = line_end + 2 + size + 2


async def front_burst(site: Site, count: int, method: str, path: str,
                      body: Callable[[int], bytes] | None, prefix: int,
                      warm: bool = False) -> Burst:
    """`count` requests through nginx released together, each from its own address
    (harness.burst: one task and connection each, latency from the release). `warm`: each
    citizen's connection is open before the release (the session page loaded before 9:00,
    kept alive), so the burst holds the requests, not the TLS handshakes."""
    opened: dict[int, Connection] = {}
    for start in range(0, count if warm else 0, 100):  # 100 at a time: nginx's accept queue
        batch = range(start, min(count, start + 100))
        opened.update(zip(batch, await asyncio.gather(
            *(open_front(site, citizen_address(prefix, i)) for i in batch)), strict=True))

    async def send(index: int, payload: bytes | None) -> tuple[int, bytes]:
        return await front_exchange(site, method, path, payload, citizen_address(prefix, index),
                                    opened.pop(index, None))

    return await burst(0, count, method, path, body, send=send)
