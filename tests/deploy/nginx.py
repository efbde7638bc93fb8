"""The deployed nginx site (deploy/nginx/) run for real in a temp folder, as the current user.

For the deploy tests and for bench/scaleout.py:

    from tests.deploy.nginx import SITE, make_cert, render_site, start_nginx

    cert, key = make_cert(folder, "kaifang.test")
    site = render_site(SITE.read_text(), upstreams=[8001, 8002], folder=folder,
                       https_port=8443, http_port=8080, cert=cert, key=key,
                       server_name="kaifang.test")
    with start_nginx(folder, site, 8443, 8080) as nginx:  # nginx -t first, then nginx
        ...  # https://127.0.0.1:8443 (nginx.https_url) serves the app processes on 8001, 8002

`render_site` replaces the site's placeholders (the host name, the certificate, the upstream
servers, the ports, the cache and log paths) and fails if one is missing, so a changed site that
the tests no longer cover fails loudly. `render_rtmp` does the same for the RTMP stream proxy,
which `start_nginx(rtmp=...)` includes outside `http {}` as docs/deploy.md says to.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "deploy" / "nginx" / "kaifang.conf"
RTMP = ROOT / "deploy" / "nginx" / "kaifang-rtmp.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")

SERVER_NAME = "kaifang.example.gov.cn"
CERT = "/etc/ssl/kaifang/fullchain.pem"
KEY = "/etc/ssl/kaifang/privkey.pem"
UPSTREAM_LINE = "    server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;\n"


def require_nginx() -> None:
    """Skips the test where nginx is not installed, unless in CI (CI set): there it fails."""
    import pytest

    if Path(NGINX).exists():
        return
    if os.environ.get("CI"):
        pytest.fail("nginx is missing: `make system` installs it (Debian's nginx)")
    pytest.skip("nginx is not installed (`make system` installs it)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _replace(text: str, old: str, new: str) -> str:
    if old not in text:
        raise ValueError(f"the nginx template no longer holds {old!r}: "
                         "update tests/deploy/nginx.py")
    return text.replace(old, new)


def _without_ipv6(text: str) -> str:
    """Tests listen on 127.0.0.1 only (a machine may have no IPv6)."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if not line.strip().startswith("listen [::]"))


def render_site(template: str, upstreams: list[int], folder: Path, https_port: int,
                http_port: int, cert: Path, key: Path, server_name: str = "kaifang.test") -> str:
    """The site with its placeholders replaced: the app processes on 127.0.0.1 at `upstreams`,
    HTTPS on 127.0.0.1:`https_port` (and the redirect from HTTP on `http_port`), the cache and
    the logs under `folder`."""
    site = _without_ipv6(template)
    first, _, rest = site.partition("upstream kaifang {\n")
    servers, _, tail = rest.partition("    keepalive")
    if not servers.strip().startswith("server 127.0.0.1:"):
        raise ValueError("the nginx template's upstream block has changed")
    servers = "".join(UPSTREAM_LINE.format(port=port) for port in upstreams)
    site = f"{first}upstream kaifang {{\n{servers}    keepalive{tail}"
    site = _replace(site, "listen 80;", f"listen 127.0.0.1:{http_port};")
    site = _replace(site, "listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    site = _replace(site, "return 301 https://$host$request_uri;",
                    f"return 301 https://$host:{https_port}$request_uri;")
    site = _replace(site, SERVER_NAME, server_name)
    site = _replace(site, CERT, str(cert))
    site = _replace(site, KEY, str(key))
    site = _replace(site, "/var/cache/nginx/kaifang", str(folder / "cache"))
    site = _replace(site, "/var/log/nginx/kaifang.access.log", str(folder / "access.log"))
    return _replace(site, "/var/log/nginx/kaifang.error.log", str(folder / "error.log"))


def render_rtmp(template: str, app_port: int, rtmp_port: int, rtmps_port: int, cert: Path,
                key: Path) -> str:
    """The RTMP stream proxy: 127.0.0.1:`rtmp_port` (and RTMP over TLS on `rtmps_port`) to the
    app's RTMP listener on 127.0.0.1:`app_port`."""
    conf = _replace(template, "server 127.0.0.1:19350;", f"server 127.0.0.1:{app_port};")
    conf = _replace(conf, "listen 1935;", f"listen 127.0.0.1:{rtmp_port};")
    conf = _replace(conf, "listen 1936 ssl;", f"listen 127.0.0.1:{rtmps_port} ssl;")
    conf = _replace(conf, CERT, str(cert))
    return _replace(conf, KEY, str(key))


def make_cert(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for `name` and 127.0.0.1 (openssl), and its key."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}",
                    "-addext", f"subjectAltName=DNS:{name},IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def main_conf(folder: Path, site: Path, rtmp: Path | None = None) -> str:
    """An nginx.conf as Debian's, shortened: the site inside `http {}`, the RTMP proxy (if any)
    outside it, every path under `folder`."""
    lines = []
    if os.geteuid() == 0:  # workers would otherwise run as nobody, locked out of `folder`
        lines.append("user root;")
    if rtmp is not None:
        lines.append(f"load_module {STREAM_MODULE};")
    lines += ["worker_processes 1;", f"pid {folder / 'nginx.pid'};",
              f"error_log {folder / 'main-error.log'} warn;",
              "events { worker_connections 1024; }",
              "http {",
              "    include /etc/nginx/mime.types;",
              "    default_type application/octet-stream;",
              f"    access_log {folder / 'main-access.log'};"]
    lines += [f"    {kind}_temp_path {folder / 'temp' / kind};"
              for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")]
    lines += [f"    include {site};", "}"]
    if rtmp is not None:
        lines.append(f"include {rtmp};")
    return "\n".join(lines) + "\n"


@dataclass
class Nginx:
    folder: Path
    https_port: int
    http_port: int
    process: subprocess.Popen[bytes]

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def access_log(self) -> str:
        path = self.folder / "access.log"
        return path.read_text() if path.exists() else ""


def check(folder: Path, conf: Path, prefix: bool = True) -> subprocess.CompletedProcess[str]:
    """`nginx -t` on the configuration: its answer (returncode, stderr). With `prefix`, paths
    are relative to `folder`; without, to nginx's own (Debian's conf loads modules by it)."""
    where = ["-p", str(folder)] if prefix else []
    return subprocess.run([NGINX, "-t", "-q", "-e", str(folder / "main-error.log"), *where,
                           "-c", str(conf)], capture_output=True, text=True, timeout=30)


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx stopped with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"nginx did not listen on {port} in {timeout_s} s")


@contextlib.contextmanager
def start_nginx(folder: Path, site: str, https_port: int, http_port: int,
                rtmp: str | None = None) -> Iterator[Nginx]:
    """nginx in the foreground with the rendered site (and RTMP proxy), checked by `nginx -t`
    first (a failed check raises with nginx's message); stopped (SIGQUIT, then killed) when the
    block ends."""
    (folder / "temp").mkdir(parents=True, exist_ok=True)
    site_path = folder / "kaifang.conf"
    site_path.write_text(site)
    rtmp_path = None
    if rtmp is not None:
        rtmp_path = folder / "kaifang-rtmp.conf"
        rtmp_path.write_text(rtmp)
    conf = folder / "nginx.conf"
    conf.write_text(main_conf(folder, site_path, rtmp_path))
    checked = check(folder, conf)
    if checked.returncode != 0:
        raise RuntimeError(f"nginx -t failed: {checked.stderr}")
    process = subprocess.Popen([NGINX, "-e", str(folder / "main-error.log"), "-p", str(folder),
                                "-c", str(conf), "-g", "daemon off;"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(https_port, process, 10)
        yield Nginx(folder, https_port, http_port, process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGQUIT)
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
