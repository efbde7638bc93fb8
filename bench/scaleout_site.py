"""nginx in front of bench/scaleout.py's app processes: Debian's nginx, run from a temporary
prefix, with the project's site (deploy/nginx/kaifang.conf over HTTPS with a self-signed
certificate, rendered by tests/deploy/nginx.py) when the tree has it, else a minimal equivalent
written here (HTTP; the same proxying: websockets upgraded, long-lived sockets, X-Forwarded-For
set). The main configuration is ours either way: more connections per worker than the tests'
(each proxied socket is two)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

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
