"""Structured logs (KAIFANG_LOG_FORMAT=json): every line one JSON object, and still no token
and no personal data in any of them."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from server import cli
from server.cli import serve_log_config
from server.config import Settings
from server.logs import JsonFormatter
from tests.conftest import TEST_SECRET_KEY
from tests.helpers import open_session

PHONE, NAME = "13912345678", "欧阳晓明"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("kaifang.test", logging.WARNING, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    return record


def test_a_line_is_one_json_object_with_time_level_logger_message_and_extras() -> None:
    line = JsonFormatter().format(_record("message %s failed, attempt %s", 7, 2, job="sms"))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "message 7 failed, attempt 2"
    assert (entry["level"], entry["logger"], entry["job"]) == ("WARNING", "kaifang.test", "sms")
    assert entry["time"].endswith("Z") and entry["time"][10] == "T"


def test_an_exception_is_its_type_and_frames_never_its_text() -> None:
    try:
        raise ValueError(f"INSERT INTO registration VALUES ('{NAME}', '{PHONE}')")
    except ValueError:
        record = _record("registration failed")
        record.exc_info = sys.exc_info()
    entry = json.loads(JsonFormatter().format(record))
    assert entry["exception"] == "ValueError"
    assert "test_an_exception_is_its_type_and_frames_never_its_text" in entry["traceback"]
    assert PHONE not in json.dumps(entry) and NAME not in json.dumps(entry, ensure_ascii=False)


def test_the_json_config_keeps_the_filters_that_mask_capabilities() -> None:
    config = serve_log_config("json")
    assert config["loggers"]["uvicorn.error"]["filters"] == ["no_capabilities"]
    assert {f["()"] for f in config["formatters"].values()} == {"server.logs.JsonFormatter"}
    assert serve_log_config()["formatters"]["default"]["()"] != "server.logs.JsonFormatter"


def test_kaifang_serve_writes_json_lines_without_tokens_or_phone_numbers(
        settings: Settings, staff, db, tmp_path: Path) -> None:
    event_id = open_session(staff, db, capacity=10)
    port = _free_port()
    env = {**os.environ, "KAIFANG_DATA_DIR": str(settings.data_dir),
           "KAIFANG_SECRET_KEY": TEST_SECRET_KEY, "KAIFANG_LOG_FORMAT": "json",
           "KAIFANG_RTMP_PORT": "0", "KAIFANG_WORKER_INTERVAL_S": "0.5"}
    if settings.database_url:
        env["KAIFANG_DATABASE_URL"] = settings.database_url
    if settings.redis_url:
        env["KAIFANG_REDIS_URL"] = settings.redis_url
    err_path, out_path = tmp_path / "stderr", tmp_path / "stdout"
    with err_path.open("wb") as err, out_path.open("wb") as out:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "kaifang"), "serve", "--port", str(port)],
            env=env, stdout=out, stderr=err)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=10) as client:
            deadline = time.monotonic() + 30
            while True:
                assert server.poll() is None, err_path.read_text()
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "kaifang serve did not start"
                time.sleep(0.1)
            person = {"name": NAME, "phone": PHONE, "consent": True}
            registered = client.post(f"/api/events/{event_id}/registrations", json=person)
            assert registered.status_code == 201, registered.text
            token = registered.json()["manage_token"]
            assert client.get(f"/api/registrations/{token}").status_code == 200
            client.get(f"/tickets/{token}", params={"phone": PHONE})
            client.get(f"/api/registrations/{token}x")  # a 4xx with the token in its path
            refused = client.post(f"/api/events/{event_id}/registrations",
                                  json={**person, "consent": "不同意"})
            assert refused.status_code == 422
            # A socket with a token in its query (refused: not a viewer's), as a page opens.
            with connect(f"ws://127.0.0.1:{port}/ws/events/{event_id}?token={token}",
                         open_timeout=5) as ws, contextlib.suppress(ConnectionClosed):
                ws.recv(timeout=5)
            # The same real server, as nginx on the loopback would reach it: /metrics answers
            # the loopback, and nobody whose request a proxy forwarded.
            scraped = client.get("/metrics")
            assert scraped.status_code == 200
            assert 'route="/api/registrations/{token}"' in scraped.text
            assert token not in scraped.text
            forwarded = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
            assert forwarded.status_code == 404
            time.sleep(0.6)  # the embedded worker's round sends the confirmation meanwhile
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    written = err_path.read_text(encoding="utf-8")
    lines = [line for line in written.splitlines() if line.strip()]
    entries = []
    for line in lines:
        entry = json.loads(line)  # every line: one JSON object
        assert {"time", "level", "logger", "message"} <= set(entry), line
        entries.append(entry)
    access = [e["message"] for e in entries if e["logger"] == "kaifang.access"]
    assert any(m.startswith("POST /api/events/") and " 201 " in m for m in access), access
    assert any("/api/registrations/…" in m for m in access), access
    assert any("WebSocket" in e["message"] for e in entries), "uvicorn's socket line is kept"
    everything = written + out_path.read_text(encoding="utf-8")
    for secret in (token, PHONE, NAME, "不同意"):
        assert secret not in everything, secret
    # Pretty printed with ensure_ascii, the name would hide as \\u escapes: it is not there
    # either way.
    assert json.dumps(NAME)[1:-1] not in everything


def test_kaifang_worker_writes_json_lines(settings: Settings, monkeypatch, capsys) -> None:
    from server import worker
    from server.config import get_settings

    real_run_worker = worker.run_worker

    def one_round(settings: Settings, stop: threading.Event, interval_s: float) -> None:
        stop.set()  # as SIGTERM would, at once
        real_run_worker(settings, stop, interval_s, jobs=[])

    finished = threading.Thread(target=lambda: None)
    finished.start()
    monkeypatch.setattr(worker, "run_worker", one_round)
    monkeypatch.setattr(worker, "start_transcoder", lambda settings, stop: finished)
    monkeypatch.setattr(signal, "signal", lambda *args: None)
    monkeypatch.setenv("KAIFANG_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("KAIFANG_SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv("KAIFANG_LOG_FORMAT", "json")
    if settings.database_url:
        monkeypatch.setenv("KAIFANG_DATABASE_URL", settings.database_url)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    get_settings.cache_clear()
    try:
        assert cli.main(["worker"]) == 0
    finally:
        get_settings.cache_clear()
        root.handlers[:], root.level = handlers, level
        logging.captureWarnings(False)
    out, err = capsys.readouterr()
    assert "worker running" in out
    entries = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert [e["message"] for e in entries if e["logger"] == "kaifang.worker"] == [
        "worker started: ", "worker stopped"], err
