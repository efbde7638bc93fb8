"""The deployment files (deploy/) hold together with the app they deploy: nginx accepts the
site, systemd the units, the env example names every setting, and nginx's upload locations are
the app's upload paths."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from server.app import UPLOAD_PATHS
from server.config import Settings
from tests.deploy.nginx import (
    ROOT,
    RTMP,
    SITE,
    check,
    free_port,
    main_conf,
    make_cert,
    render_rtmp,
    render_site,
    require_nginx,
)

SYSTEMD = ROOT / "deploy" / "systemd"
ENV_EXAMPLE = ROOT / "deploy" / "kaifang.env.example"
# Settings an operator never sets in the env file: the units set the first, the demo the other.
NOT_FOR_OPERATORS = {"embedded_worker", "demo_recordings"}


def test_nginx_accepts_the_site_and_the_rtmp_proxy(tmp_path):
    require_nginx()
    cert, key = make_cert(tmp_path, "kaifang.test")
    site = tmp_path / "kaifang.conf"
    site.write_text(render_site(SITE.read_text(), [free_port(), free_port()], tmp_path,
                                free_port(), free_port(), cert, key))
    rtmp = tmp_path / "kaifang-rtmp.conf"
    rtmp.write_text(render_rtmp(RTMP.read_text(), free_port(), free_port(), free_port(), cert,
                                key))
    (tmp_path / "temp").mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(main_conf(tmp_path, site, rtmp))
    checked = check(tmp_path, conf)
    assert checked.returncode == 0, checked.stderr
    # The check is a real one: a broken site fails it.
    site.write_text(site.read_text().replace("proxy_pass http://kaifang;", "proxy_pass;", 1))
    assert check(tmp_path, conf).returncode != 0


def _upload_locations() -> list[re.Pattern[str]]:
    found = re.findall(r"location ~ (\^\S+\$) \{([^}]*)\}", SITE.read_text())
    return [re.compile(pattern) for pattern, block in found if "client_max_body_size" in block]


@pytest.mark.parametrize("path", [
    "/api/events/12/recording", "/api/uploads/Ab_9-x", "/api/plan/items/3/files",
    "/console/plan/import", "/console/plan/items/7/files",
    "/api/events", "/api/events/12", "/api/uploads", "/api/uploads/abc/recording",
    "/api/plan/import", "/console/plan", "/api/events/12/recording/x",
])
def test_nginx_lets_large_bodies_through_exactly_where_the_app_reads_them(path):
    """Where the app streams an upload to disk under its own limit, nginx allows 8 GiB and
    streams it; everywhere else the small limit holds."""
    in_nginx = any(pattern.match(path) for pattern in _upload_locations())
    assert in_nginx == bool(UPLOAD_PATHS.match(path)), path


def test_the_upload_limit_is_at_least_the_apps():
    sizes = re.findall(r"client_max_body_size (\d+)g;", SITE.read_text())
    assert sizes and all(int(size) * 1024**3 >= Settings().max_upload_bytes for size in sizes)


def test_the_env_example_names_every_setting_an_operator_may_set():
    text = ENV_EXAMPLE.read_text()
    named = set(re.findall(r"^#?(KAIFANG_[A-Z0-9_]+)=", text, re.MULTILINE))
    wanted = {f"KAIFANG_{name.upper()}" for name in Settings.model_fields} - \
        {f"KAIFANG_{name.upper()}" for name in NOT_FOR_OPERATORS}
    assert wanted - named == set(), "settings missing from deploy/kaifang.env.example"
    assert named - wanted - {"KAIFANG_EMBEDDED_WORKER"} == set(), "names no setting has"
    # What must be set is set, not commented out.
    for name in ("KAIFANG_PUBLIC_URL", "KAIFANG_SECRET_KEY", "KAIFANG_DATABASE_URL",
                 "KAIFANG_REDIS_URL", "KAIFANG_TRUSTED_PROXIES", "KAIFANG_DATA_DIR"):
        assert re.search(rf"^{name}=\S", text, re.MULTILINE), name


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None,
                                       dict_type=_MultiDict)  # type: ignore[arg-type]
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(SYSTEMD / name)
    return parser


class _MultiDict(dict):  # type: ignore[type-arg]
    """systemd repeats keys (EnvironmentFile=): keep every value, joined by newlines."""

    def __setitem__(self, key: str, value: object) -> None:
        if isinstance(value, list) and key in self:
            self[key].extend(value)
        else:
            super().__setitem__(key, value)


def test_the_units_run_the_app_as_the_deployment_says():
    web = _unit("kaifang-web@.service")["Service"]
    assert web["ExecStart"] == "/opt/kaifang/.venv/bin/kaifang serve --host 127.0.0.1 --port %i"
    assert web["Environment"] == "KAIFANG_EMBEDDED_WORKER=false"
    assert web["EnvironmentFile"].split("\n") == ["/etc/kaifang/kaifang.env",
                                                  "-/etc/kaifang/web-%i.env"]
    worker = _unit("kaifang-worker.service")["Service"]
    assert worker["ExecStart"] == "/opt/kaifang/.venv/bin/kaifang worker"
    assert int(worker["Nice"]) > 0  # ffmpeg yields to the web processes
    for service in (web, worker):
        assert service["Restart"] == "on-failure"
        assert service["MemoryMax"].endswith("G")
        assert service["User"] == "kaifang"
        assert service["ProtectSystem"] == "strict"
        # Hardened, yet the data dir (KAIFANG_DATA_DIR in the env example) stays writable.
        assert service["ReadWritePaths"] == "/var/lib/kaifang"
    assert "KAIFANG_DATA_DIR=/var/lib/kaifang" in ENV_EXAMPLE.read_text()
    migrate = _unit("kaifang-migrate.service")
    assert migrate["Service"]["Type"] == "oneshot"
    assert migrate["Service"]["ExecStart"].endswith("kaifang migrate")
    for name in ("kaifang-web@.service", "kaifang-worker.service"):
        unit = _unit(name)["Unit"]
        assert "kaifang-migrate.service" in unit["Requires"]
        assert "kaifang-migrate.service" in unit["After"]


def test_systemd_accepts_the_units(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (the units' keys are checked above)")
    # As installed: the checkout at /opt/kaifang is this one (verify wants the binary there).
    for unit in SYSTEMD.glob("*.service"):
        (tmp_path / unit.name).write_text(unit.read_text().replace("/opt/kaifang", str(ROOT)))
    verified = subprocess.run(
        [analyze, "verify", "--man=no", *(str(tmp_path / name) for name in (
            "kaifang-web@8001.service", "kaifang-worker.service", "kaifang-migrate.service"))],
        capture_output=True, text=True, cwd=tmp_path, timeout=60)
    # systemd-analyze exits 0 on a key it ignores; what it says is the finding.
    assert (verified.returncode, verified.stderr.strip()) == (0, ""), verified.stderr


def test_the_deploy_page_names_only_files_and_settings_that_exist():
    """docs/deploy.md is followed by someone who never read the code: every file it copies
    from the release and every setting it names must be there."""
    page = (ROOT / "docs" / "deploy.md").read_text()
    for section in ("## Watching it", "## Backups", "## Capacity", "## 11. Upgrades"):
        assert section in page
    copied = set(re.findall(r"/opt/kaifang/(deploy/[\w./@-]+[\w@])", page))
    assert "deploy/nginx/kaifang.conf" in copied
    for path in copied:
        matches = list(ROOT.glob(path))
        assert matches, f"docs/deploy.md copies {path}, which the release does not have"
    known = {f"KAIFANG_{name.upper()}" for name in Settings.model_fields}
    named = set(re.findall(r"KAIFANG_[A-Z0-9_]+", page))
    assert named - known == set(), "docs/deploy.md names settings that do not exist"


def test_the_site_and_the_rtmp_proxy_fit_debians_own_nginx_conf(tmp_path):
    """As docs/deploy.md step 9 installs them: the site where sites-enabled/ is included
    (inside `http {}`), the RTMP proxy included at the end of Debian's nginx.conf (outside it),
    the stream module loaded by Debian's modules-enabled/."""
    require_nginx()
    debian = Path("/etc/nginx/nginx.conf")
    if os.geteuid() != 0 or not debian.exists():
        pytest.skip("Debian's nginx.conf names root's files (/var/log/nginx, /run)")
    cert, key = make_cert(tmp_path, "kaifang.test")
    site = tmp_path / "kaifang.conf"
    site.write_text(render_site(SITE.read_text(), [8001, 8002], tmp_path, 8443, 8080, cert, key))
    rtmp = tmp_path / "kaifang-rtmp.conf"
    rtmp.write_text(render_rtmp(RTMP.read_text(), 19350, 1935, 1936, cert, key))
    text = debian.read_text()
    assert "include /etc/nginx/sites-enabled/*;" in text
    conf = tmp_path / "nginx.conf"
    conf.write_text(text.replace("include /etc/nginx/sites-enabled/*;", f"include {site};")
                    + f"include {rtmp};\n")
    checked = check(tmp_path, conf, prefix=False)
    assert checked.returncode == 0, checked.stderr
